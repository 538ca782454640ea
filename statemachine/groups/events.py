"""`EventLog`: the part's events, numbered 1, 2, 3... without gaps, the last N retained.

`add` numbers an event (its class takes the revision as first field), keeps it, and
hands it to the command's `emit`. `page` answers `GetEvents` like the kv watch: a
revision that was compacted away is refused with `Compacted` (detail: the oldest
retained), one beyond the next is refused with `FutureRevision` (detail: the latest);
asking for the next revision gives an empty page (nothing new yet).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from statemachine.codec import Message
from statemachine.errors import Compacted, DecodeError, FutureRevision
from statemachine.groups.messages import EventPage, GroupEvent


class EventLog:
    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.revision = 0  # of the last event
        self.events: deque[GroupEvent] = deque()

    @property
    def first_revision(self) -> int:
        """The oldest retained revision (revision + 1 when none is retained)."""
        return self.events[0].revision if self.events else self.revision + 1

    def add(self, emit: Callable[[Message], None], kind: type[GroupEvent], *fields: Any) -> int:
        event = kind(self.revision + 1, *fields)  # type: ignore[call-arg]
        self.revision += 1
        self.events.append(event)
        while len(self.events) > self.max_events:
            self.events.popleft()
        emit(event)
        return self.revision

    def page(self, from_revision: int, limit: int) -> EventPage:
        first = self.first_revision
        if from_revision < first:
            raise Compacted(
                f"revision {from_revision} is compacted; the oldest retained is {first}",
                detail=first,
            )
        if from_revision > self.revision + 1:
            raise FutureRevision(
                f"revision {from_revision} is beyond the latest {self.revision}",
                detail=self.revision,
            )
        start = from_revision - first
        stop = min(len(self.events), start + limit)
        return EventPage(tuple(self.events[i] for i in range(start, stop)), self.revision)

    def restore(self, revision: int, first: int, events: tuple[GroupEvent, ...]) -> None:
        """Take a snapshot's events; DecodeError unless consecutive and ending at `revision`."""
        where = "GroupsSnapshot.events"
        if len(events) > self.max_events:
            raise DecodeError(where, f"{len(events)} events, over the {self.max_events} kept")
        if revision < 0 or first != (events[0].revision if events else revision + 1):
            raise DecodeError("GroupsSnapshot.first_revision", "does not match the events")
        for i, event in enumerate(events):
            if event.revision != first + i:
                raise DecodeError(f"{where}[{i}]", "revisions are not consecutive")
        if events and events[-1].revision != revision:
            raise DecodeError(where, f"the last event is not revision {revision}")
        if not events and first < 1:
            raise DecodeError("GroupsSnapshot.first_revision", "must be at least 1")
        self.revision = revision
        self.events = deque(events)
