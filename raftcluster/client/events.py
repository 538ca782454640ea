"""`client.events(from_revision)`: the cluster service's events, in revision order, once each.

The `groups` part numbers every change 1, 2, 3... without gaps and keeps the last
`max_events` (docs/groups.md, "Events"). `GroupEvents` reads them in pages (`GetEvents`,
linearizable reads through the client core, so a page is retried on another node after a
timeout or a leader change) and hands them out one by one:

- in order and gap-free: it asks for `next_revision` and takes from a page only the
  events that continue exactly from there (a repeated page adds nothing), so after a
  lost connection or a new leader it resumes from the revision after the last one it
  handed out, never yielding one twice and never skipping one;
- when caught up (an empty page) it polls: it waits 50 ms, then twice as long after each
  empty page up to 500 ms, and back to 50 ms as soon as an event comes (the part has no
  long poll; at most two reads a second per idle follower);
- while no node can answer (`Unavailable`, `OutcomeUnknown`) it keeps asking, with the
  same backoff;
- when the events it needs are no longer kept it raises `EventsCompacted`, whose
  `first_revision` is the oldest still available.

It never ends on its own: stop it by leaving the loop or cancelling. Cancellation stops
it and leaves nothing behind: an event is taken from the buffer only as it is returned,
so an iteration cancelled part way loses nothing and the next one goes on from there.
"""

from __future__ import annotations

import collections

import trio

from raftcluster.client.groups import Requests
from raftcluster.errors import EventsCompacted, OutcomeUnknown, Unavailable
from statemachine.errors import Compacted, DecodeError, InvalidArgument
from statemachine.groups.messages import (
    MAX_EVENTS_PER_QUERY,
    EventPage,
    GetEvents,
    GroupEvent,
)
from statemachine.results import expect

MIN_POLL_MS = 50  # the first pause after an empty page
MAX_POLL_MS = 500  # the longest: a new event shows within half a second when idle
# Events held between reads: one page (the part answers at most MAX_EVENTS_PER_QUERY).
PAGE_EVENTS = MAX_EVENTS_PER_QUERY


class GroupEvents:
    """``async for event in client.events(from_revision)``: every `GroupEvent` from that
    revision on, in order, once. See the module's docstring."""

    def __init__(self, client: Requests, from_revision: int = 1) -> None:
        if from_revision < 1:
            raise InvalidArgument("events.from_revision", f"{from_revision}: must be at least 1")
        self._client = client
        self._next = from_revision  # the revision of the next event to hand out
        self._buffer: collections.deque[GroupEvent] = collections.deque()
        self._pause_ms = 0  # 0: read at once; else the pause before the next read
        self.revision = 0  # the latest revision the part had at the last read

    @property
    def next_revision(self) -> int:
        """The revision of the next event this iterator hands out."""
        return self._next - len(self._buffer)

    def __aiter__(self) -> GroupEvents:
        return self

    async def __anext__(self) -> GroupEvent:
        """The next event (waiting for it). Raises EventsCompacted, FutureRevision (a
        `from_revision` beyond the next one the part will number), and the client's
        configuration errors. Cancellation loses nothing (see the module's docstring)."""
        while not self._buffer:
            if self._pause_ms:
                await trio.sleep(self._pause_ms / 1000)
            await self._fetch()
        return self._buffer.popleft()

    async def page(self) -> tuple[GroupEvent, ...]:
        """The events available now (at most one page of PAGE_EVENTS), without waiting for
        more: the buffered ones, else one read. Empty when caught up. Raises as
        `__anext__`. Cancellation loses nothing."""
        if not self._buffer:
            await self._fetch()
        events = tuple(self._buffer)
        self._buffer.clear()
        return events

    async def _fetch(self) -> None:
        """One read from `_next`: its events buffered and `_next` moved past them, or a
        longer pause when it had none (or could not be read)."""
        try:
            result = await self._client.read(GetEvents(self._next, PAGE_EVENTS))
            page = expect(result, EventPage)
        except Compacted as e:
            raise EventsCompacted(
                f"the cluster service's events from revision {self._next} are no longer "
                f"kept; the oldest available is {e.detail}: read the groups and nodes again "
                "and follow from that read's revision + 1",
                detail=e.detail,
            ) from None
        except (Unavailable, OutcomeUnknown):
            self._back_off()
            return
        self.revision = page.revision
        fresh = [e for e in page.events if e.revision >= self._next]
        for i, event in enumerate(fresh):
            if event.revision != self._next + i:
                raise DecodeError(
                    "EventPage.events", f"revision {event.revision} where {self._next + i} "
                    "was expected: the events have a gap",
                )  # fmt: skip
        if fresh:
            self._buffer.extend(fresh)
            self._next += len(fresh)
            self._pause_ms = 0
        else:
            self._back_off()

    def _back_off(self) -> None:
        self._pause_ms = min(MAX_POLL_MS, max(MIN_POLL_MS, self._pause_ms * 2))
