"""Global updates: handlers registered on a node, called once per committed groups event,
in log order, resuming after a restart from a durable cursor (the textbook's global update
manager, and WSFC's GUM).

    updates = GlobalUpdates(CursorFile(data_dir / "groups-cursor"))
    updates.on_update(handler)          handler(update): a `GroupEvent`, or `EventsCompacted`
    updates.deliver(events)             the groups part's events, in log order (the shell
                                        feeds what it applied, or a `GetEvents` page)
    updates.compacted(first_retained)   a `GetEvents` from `next_revision` was refused
                                        COMPACTED: the gap is reported to the handlers
    updates.next_revision               where the shell should ask from after a restart

Each event is given to every handler, in registration order, then the cursor moves to
its revision and is saved; an event at or below the cursor (a replay after a restart) is
skipped. A revision past the next one expected means events were compacted away while
this node could not see them: every handler gets one `EventsCompacted` (the missing
range) before the event, never a silent skip. If a handler raises, the cursor stays
before that event and the error propagates: after a restart the event is delivered again
(to every handler: delivery is at least once for the event being handled at a crash,
exactly once for the others).

`UpdateCursor` is the core (what to deliver, the cursor's value) and does no I/O;
`CursorFile` (`cursor.py`) stores the value durably; `MemoryCursor` is for tests and
the simulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import attrs


class Revisioned(Protocol):
    @property
    def revision(self) -> int: ...


@attrs.frozen
class EventsCompacted:
    """The events `first_missing..last_missing` were compacted before this node handled
    them: whatever they said is lost to the handlers (re-read the state: `ListGroups`,
    `ListNodes`)."""

    first_missing: int
    last_missing: int


Update = Revisioned | EventsCompacted
Handler = Callable[[Update], None]


class CursorStore(Protocol):
    def read(self) -> int:
        """The last revision handled (0: none)."""
        ...

    def save(self, revision: int) -> None: ...


class MemoryCursor:
    def __init__(self, revision: int = 0) -> None:
        self.revision = revision

    def read(self) -> int:
        return self.revision

    def save(self, revision: int) -> None:
        self.revision = revision


class UpdateCursor:
    """The core: given the last revision handled, what each incoming event means."""

    def __init__(self, handled: int) -> None:
        assert handled >= 0
        self.handled = handled

    @property
    def next_revision(self) -> int:
        return self.handled + 1

    def plan(self, event: Revisioned) -> Sequence[Update]:
        """What to give the handlers for `event` (nothing for a replay)."""
        revision = event.revision
        if revision <= self.handled:
            return ()
        if revision > self.next_revision:
            return (EventsCompacted(self.next_revision, revision - 1), event)
        return (event,)

    def done(self, event: Revisioned) -> None:
        assert event.revision > self.handled
        self.handled = event.revision

    def gap(self, first_retained: int) -> EventsCompacted | None:
        """A `GetEvents` was refused COMPACTED: the events before `first_retained` that were
        not handled are gone. The cursor moves to just before `first_retained`."""
        if first_retained <= self.next_revision:
            return None
        gap = EventsCompacted(self.next_revision, first_retained - 1)
        self.handled = first_retained - 1
        return gap


class GlobalUpdates:
    def __init__(self, store: CursorStore) -> None:
        self._store = store
        self._cursor = UpdateCursor(store.read())
        self._handlers: list[Handler] = []

    def on_update(self, handler: Handler) -> Handler:
        """Register `handler` (usable as a decorator); it sees every update from now on."""
        self._handlers.append(handler)
        return handler

    @property
    def next_revision(self) -> int:
        return self._cursor.next_revision

    @property
    def handled(self) -> int:
        return self._cursor.handled

    def deliver(self, events: Iterable[Revisioned]) -> None:
        for event in events:
            updates = self._cursor.plan(event)
            if not updates:
                continue
            for update in updates:
                self._call(update)
            self._cursor.done(event)
            self._store.save(event.revision)

    def compacted(self, first_retained: int) -> None:
        gap = self._cursor.gap(first_retained)
        if gap is not None:
            self._call(gap)
            self._store.save(self._cursor.handled)

    def _call(self, update: Update) -> None:
        for handler in self._handlers:
            handler(update)
