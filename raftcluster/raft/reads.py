"""ReadIndex bookkeeping on the leader (Raft dissertation, section 6.4).

A read is first `waiting` while the leader has not committed an entry of its own term
(before that, its commit index may be behind what an earlier leader committed). Then it
is `active`: its index is fixed at the leader's commit index and it is tagged with the
next heartbeat round. Once a majority of voters has answered a heartbeat of that round or
a later one, no other leader can have been elected when the read was taken, so the read
is released. A leader that steps down drops every pending read: it never answers one.
"""

from __future__ import annotations

import collections

import attrs


@attrs.define
class PendingRead:
    context: bytes
    requester: int  # the node to answer: the leader itself or the follower that forwarded it
    index: int = 0
    round: int = 0


class ReadQueue:
    __slots__ = ("limit", "round", "_waiting", "_active")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.round = 0  # the newest heartbeat round sent this term
        self._waiting: collections.deque[PendingRead] = collections.deque()
        self._active: collections.deque[PendingRead] = collections.deque()

    def __len__(self) -> int:
        return len(self._waiting) + len(self._active)

    @property
    def active(self) -> bool:
        """Whether a read waits for its heartbeat round."""
        return bool(self._active)

    def full(self) -> bool:
        return len(self) >= self.limit

    def add(self, context: bytes, requester: int) -> None:
        assert not self.full()
        self._waiting.append(PendingRead(context, requester))

    def activate(self, commit: int) -> None:
        """The leader has committed an entry of its term: fix the waiting reads' index."""
        while self._waiting:
            read = self._waiting.popleft()
            read.index, read.round = commit, self.round + 1
            self._active.append(read)

    def needs_round(self) -> bool:
        return bool(self._active) and self._active[-1].round > self.round

    def start_round(self) -> int:
        self.round += 1
        return self.round

    def release(self, confirmed_round: int) -> list[PendingRead]:
        """Reads whose round a majority has acknowledged, oldest first."""
        out = []
        while self._active and self._active[0].round <= confirmed_round:
            out.append(self._active.popleft())
        return out

    def clear(self) -> None:
        self._waiting.clear()
        self._active.clear()
        self.round = 0
