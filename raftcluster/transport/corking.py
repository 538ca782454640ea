"""Frames queued during one batch of work, written together when it ends.

A connection's writer is a task of its own: a frame queued for it wakes it, and it
sends what it finds. On a node that costs a task switch and a scheduling pass for every
frame sent, a large share of what one request costs. So the code that handles a batch
of inputs (a connection's reader, for each batch of frames it read; the node's driver,
for each cycle it completes) opens a hold around it:

    with corking.held():
        ...  # frames queued here for a connection whose writer is idle stay queued

and when the outermost hold of the trio run closes, each connection that had frames
queued meanwhile writes them itself, with one non-blocking send per connection
(`Connection.flush`); what the socket does not take at once goes to its writer, as
before. Frames queued outside any hold wake the writer as before.

A hold is synchronous: nothing inside it may await (another task could then queue
frames that the hold would keep until it closes). Holds nest; the state is a trio
`RunVar`, so each trio run has its own.
"""

from __future__ import annotations

from typing import Protocol

import trio


class Flushable(Protocol):
    def flush(self) -> None:
        """Write what is queued (never blocks or raises)."""


class _Hold:
    """A trio run's hold, and the context manager `held()` returns (the run's one
    instance: a hold is entered on every batch of frames and every cycle)."""

    __slots__ = ("depth", "queued")

    def __init__(self) -> None:
        self.depth = 0
        # Connections with frames held, each once, in the order they first queued one.
        # Bounded by the open connections (a connection is listed at most once).
        self.queued: list[Flushable] = []

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0 and self.queued:
            queued, self.queued = self.queued, []
            for connection in queued:
                connection.flush()


_HOLD: trio.lowlevel.RunVar[_Hold] = trio.lowlevel.RunVar("raftcluster_transport_hold")


def held() -> _Hold:
    """``with held():`` frames queued inside are written when the outermost hold closes.
    Must be entered inside a trio run; nothing inside may await."""
    try:
        return _HOLD.get()
    except LookupError:
        hold = _Hold()
        _HOLD.set(hold)
        return hold


def defer(connection: Flushable) -> bool:
    """Whether a hold is open: then `connection.flush()` is called when it closes (once,
    however often it is deferred meanwhile). False outside any hold (or outside a run)."""
    try:
        hold = _HOLD.get()
    except (LookupError, RuntimeError):
        return False
    if hold.depth == 0:
        return False
    if connection not in hold.queued:
        hold.queued.append(connection)
    return True
