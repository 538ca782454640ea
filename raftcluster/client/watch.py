"""Watches: an async iterator of the changes to a key or a range, that resumes exactly.

A watch is a loop over the configuration database's change history (docs/configdb.md,
"Changes and watches"): read a page of changes from a cursor, hand out its events,
move the cursor; when caught up, long-poll a node (`WaitChanges`) until the revision
moves. The pages are linearizable reads through the client core, so they are retried
on another node after a timeout or a leader change, and a page never misses what a
node has applied.

`WatchCursor` is the pure part: where to resume, and which events were already handed
out. It never moves backwards, and it drops any event at or before the last one handed
out (events are ordered by (revision, key)), so a page served from a node that is
behind, or read twice after a lost answer, can neither repeat nor skip an event.
"""

from __future__ import annotations

import collections
from typing import Protocol

import attrs
import trio

from raftcluster.errors import OutcomeUnknown, Unavailable
from statemachine.errors import Compacted
from statemachine.kv.commands import Changes
from statemachine.kv.results import ChangesResult, KvEvent

MIN_BACKOFF_MS = 50
MAX_BACKOFF_MS = 1_000
POLL_PAUSE_MS = 100  # between reads when no node takes a long poll


@attrs.frozen
class WatchCursor:
    """Where a watch resumes. `revision` 0: not started ("from now")."""

    revision: int = 0
    skip: int = 0  # history entries of `revision` already examined
    last: tuple[int, bytes] | None = None  # (revision, key) of the last event handed out

    @property
    def started(self) -> bool:
        return self.revision > 0

    def request(self, key: bytes, range_end: bytes, prev_kv: bool) -> Changes:
        return Changes(key, range_end, self.revision, 0, prev_kv, self.skip)

    def advance(self, page: ChangesResult) -> tuple[WatchCursor, tuple[KvEvent, ...]]:
        """The cursor after `page` (an answer to `request`), and its new events."""
        last = self.last
        events = tuple(e for e in page.events if last is None or _position(e) > last)
        if events:
            last = _position(events[-1])
        here, there = (self.revision, self.skip), (page.next_revision, page.next_skip)
        revision, skip = max(here, there) if self.started else there
        return WatchCursor(revision, skip, last), events


def _position(event: KvEvent) -> tuple[int, bytes]:
    return event.kv.mod_revision, event.kv.key


def caught_up(page: ChangesResult) -> bool:
    """Whether `page` reached the end of the history its node had."""
    return page.next_revision > page.revision


class ChangeSource(Protocol):
    """What a watch needs from a client."""

    async def read_changes(self, request: Changes) -> ChangesResult:
        """A linearizable read of `request`; raises the client's errors."""
        ...

    async def wait_changes(self, after_revision: int, wait_ms: int) -> int | None:
        """Wait until some node's revision passes `after_revision` (or `wait_ms` passes);
        the revision seen, or None when no node could be asked."""
        ...


class Watch:
    """``async for event in client.watch(...)``: every change, in order, once.

    Iterating never ends on its own: stop it by leaving the loop or cancelling. It
    raises `Compacted` when the history it needs was compacted (re-read the state with
    a range and watch again from its revision + 1), and the client's configuration errors
    (a wrong secret); while the cluster is unavailable it keeps retrying, with back-off.
    """

    def __init__(
        self,
        source: ChangeSource,
        key: bytes,
        range_end: bytes,
        *,
        start_revision: int = 0,
        prev_kv: bool = False,
        wait_ms: int = 5_000,
    ) -> None:
        self._source = source
        self.key = key
        self.range_end = range_end
        self.prev_kv = prev_kv
        self._wait_ms = wait_ms
        self._cursor = WatchCursor(start_revision)
        self._buffer: collections.deque[KvEvent] = collections.deque()
        self._caught_up = False

    @property
    def next_revision(self) -> int:
        """The revision the watch delivers from next (0 until it has started from now).
        Events already read but not yet handed out are counted as delivered."""
        return self._cursor.revision

    async def start(self) -> int:
        """Fix the starting point now (a watch "from now" otherwise starts at its first
        iteration); returns `next_revision`. Cancellation: nothing is left; the watch
        starts again at the next call."""
        if not self._cursor.started:
            await self._fetch()
        return self._cursor.revision

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> KvEvent:
        """The next event. Cancellation loses nothing: an event is taken from the buffer
        only when it is returned, and the cursor moves only when a page is buffered."""
        while not self._buffer:
            if self._caught_up:
                await self._wait()
            await self._fetch()
        return self._buffer.popleft()

    async def _fetch(self) -> None:
        request = self._cursor.request(self.key, self.range_end, self.prev_kv)
        backoff_ms = MIN_BACKOFF_MS
        while True:
            try:
                page = await self._source.read_changes(request)
                break
            except Compacted as e:
                raise Compacted(
                    f"watch of {self.key!r}: the history from revision {request.start_revision}"
                    f" was compacted (the oldest kept is {e.compact_revision}); read the "
                    "current state with a range and watch again from its revision + 1",
                    code=e.code,
                    detail=e.detail,
                ) from e
            except (Unavailable, OutcomeUnknown):
                await trio.sleep(backoff_ms / 1000)
                backoff_ms = min(MAX_BACKOFF_MS, backoff_ms * 2)
        self._cursor, events = self._cursor.advance(page)
        self._buffer.extend(events)
        self._caught_up = caught_up(page)

    async def _wait(self) -> None:
        """Until the revision may have passed the cursor (or a wait ran out)."""
        after = self._cursor.revision - 1
        while True:
            seen = await self._source.wait_changes(after, self._wait_ms)
            if seen is None:  # no node answered: read again after a pause (polling)
                await trio.sleep(POLL_PAUSE_MS / 1000)
                return
            if seen > after:
                return  # else the wait ran out with nothing new: wait again
