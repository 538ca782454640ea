"""The clock a node's cores see: trio's monotonic clock, anchored to the wall clock.

The cores take time as integer milliseconds. Raft's timers need a clock that never goes
back; the session commands the leader proposes (`ExpireSessions(now_ms)`) and clients
send (`OpenSession(now_ms)`) are compared across machines, so they need a common origin.
`NodeClock` gives both: trio's clock (monotonic, and `trio.testing.MockClock` in tests)
plus an offset taken once from the wall clock at start. Clocks of different processes
then agree up to the wall clocks' skew at their starts plus drift since.
"""

from __future__ import annotations

import time

import trio


class NodeClock:
    """Milliseconds for the cores; create it inside `trio.run`."""

    def __init__(self, origin_ms: int | None = None) -> None:
        """`origin_ms`: what `now_ms()` reads now (default: the wall clock, in ms since
        the Unix epoch). Tests pass 0 for readable times."""
        wall_ms = time.time_ns() // 1_000_000 if origin_ms is None else origin_ms
        # The run's clock itself: what `trio.current_time()` reads, one call instead of
        # three (read on every input of a node).
        self._trio_now = trio.lowlevel.current_clock().current_time
        self._offset_ms = wall_ms - self._trio_now() * 1000.0

    def now_ms(self) -> int:
        return int(self._offset_ms + self._trio_now() * 1000.0)

    def trio_time(self, at_ms: int) -> float:
        """The trio clock's reading at which `now_ms()` reaches `at_ms` (half a millisecond
        later, so that rounding never wakes a sleeper just before its deadline)."""
        return (at_ms + 0.5 - self._offset_ms) / 1000.0
