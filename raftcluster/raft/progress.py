"""What a leader knows about each follower's log, and how it paces replication to it.

PROBE: the leader does not know where the follower's log matches; it sends one append
at a time and waits for the answer (or the next heartbeat answer) before another.
REPLICATE: the follower's log matches up to `match`; the leader streams appends
optimistically, bounded by the in-flight window in messages and bytes.
SNAPSHOT: the follower needs entries the leader compacted; the leader sends its snapshot
in chunks, one at a time, and resumes replicating once the follower acknowledges it.
"""

from __future__ import annotations

import collections
import enum

import attrs


class ProgressState(enum.IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


@attrs.define
class Inflight:
    last_index: int
    size_bytes: int
    sent_ms: int


class Inflights:
    """Appends sent and not yet acknowledged, oldest first."""

    __slots__ = ("_queue", "bytes", "max_msgs", "max_bytes")

    def __init__(self, max_msgs: int, max_bytes: int) -> None:
        self._queue: collections.deque[Inflight] = collections.deque()
        self.bytes = 0
        self.max_msgs = max_msgs
        self.max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._queue)

    def full(self) -> bool:
        return len(self._queue) >= self.max_msgs or self.bytes >= self.max_bytes

    def add(self, last_index: int, size_bytes: int, now_ms: int) -> None:
        assert not self._queue or self._queue[-1].last_index < last_index, "inflights unordered"
        self._queue.append(Inflight(last_index, size_bytes, now_ms))
        self.bytes += size_bytes

    def free_to(self, index: int) -> None:
        while self._queue and self._queue[0].last_index <= index:
            self.bytes -= self._queue.popleft().size_bytes
        assert self.bytes >= 0

    def oldest_sent_ms(self) -> int | None:
        return self._queue[0].sent_ms if self._queue else None

    def clear(self) -> None:
        self._queue.clear()
        self.bytes = 0


class Progress:
    """One follower (voter or learner) as seen by the leader."""

    __slots__ = (
        "match",
        "next",
        "state",
        "probe_sent",
        "inflights",
        "last_heard_ms",
        "read_round",
        "snapshot_index",
        "snapshot_offset",
        "snapshot_sent_ms",
        "needs_commit",
    )

    def __init__(self, next_index: int, inflights: Inflights, now_ms: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False  # PROBE: an append is out; wait for an answer
        self.inflights = inflights
        self.last_heard_ms = now_ms  # check-quorum: when it last answered us this term
        self.read_round = 0  # ReadIndex: the newest heartbeat round it acknowledged
        self.snapshot_index = 0  # SNAPSHOT: which snapshot is being sent
        self.snapshot_offset = 0  # SNAPSHOT: bytes the follower holds
        self.snapshot_sent_ms: int | None = None  # SNAPSHOT: a chunk is out since then
        self.needs_commit = False  # tell it the new commit index even with no entries

    def become_probe(self) -> None:
        # Resume from just after the last known match: anything sent since may be lost.
        self.state = ProgressState.PROBE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflights.clear()
        self.snapshot_sent_ms = None

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflights.clear()
        self.snapshot_sent_ms = None

    def become_snapshot(self, snapshot_index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.snapshot_index = snapshot_index
        self.snapshot_offset = 0
        self.snapshot_sent_ms = None
        self.inflights.clear()

    def update_match(self, index: int) -> bool:
        """An acknowledgement up to `index`. Returns whether `match` moved."""
        if index <= self.match:
            return False
        self.match = index
        self.next = max(self.next, index + 1)
        self.inflights.free_to(index)
        return True

    def paused(self) -> bool:
        if self.state == ProgressState.PROBE:
            return self.probe_sent
        if self.state == ProgressState.REPLICATE:
            return self.inflights.full()
        return self.snapshot_sent_ms is not None

    def describe(self) -> str:
        state = self.state.name.lower()
        extra = ""
        if self.state == ProgressState.SNAPSHOT:
            extra = f" snap={self.snapshot_index}@{self.snapshot_offset}"
        elif self.state == ProgressState.REPLICATE and len(self.inflights):
            extra = f" inflight={len(self.inflights)}"
        elif self.probe_sent:
            extra = " paused"
        return f"match={self.match} next={self.next} {state}{extra}"
