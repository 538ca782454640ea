"""The node core's settings (`ReplicaConfig`), with their defaults and the reasons for them.

Times are in milliseconds of the clock the shell passes in (`tick(now_ms)` and friends).
"""

from __future__ import annotations

import attrs

from raftcluster.raft.config import RaftConfig
from statemachine.codec import int_range, positive


@attrs.frozen
class ReplicaConfig:
    """Everything a `Replica` is told at construction besides its storage and state machine."""

    raft: RaftConfig
    # Take a state machine snapshot (and compact the log) once this many entries were
    # applied since the last one. Bounds the log in memory and on disk, and how far a
    # restarted node replays.
    snapshot_every_entries: int = attrs.field(default=10_000, validator=positive)
    # Requests waiting on this node (writes, reads, watches, membership steps): beyond it a
    # new one is refused with OVERLOADED, so a slow cluster cannot exhaust memory.
    max_pending_requests: int = attrs.field(default=4096, validator=int_range(1, 1_000_000))
    # How long the node waits for a write (or membership step, or transfer) to be applied
    # before answering TIMED_OUT. A client gives up on its own deadline anyway; this bounds
    # the node's memory when clients vanish.
    request_timeout_ms: int = attrs.field(default=10_000, validator=positive)
    # How long a linearizable read may wait for its ReadIndex and apply before TIMED_OUT.
    read_timeout_ms: int = attrs.field(default=5_000, validator=positive)
    # A ReadIndex request (forwarded to the leader, or waiting for a heartbeat round) that
    # has no answer after this long is asked again: forwarded requests can be lost.
    # 0: the election timeout.
    read_retry_ms: int = attrs.field(default=0, validator=int_range(0))
    # The longest a WaitChanges long poll is held (a longer wait_ms is cut to this).
    max_watch_wait_ms: int = attrs.field(default=60_000, validator=positive)
    # The leader proposes ExpireSessions(now) this often (while it hears from a quorum).
    session_expiry_interval_ms: int = attrs.field(default=1_000, validator=positive)

    @property
    def read_retry_after_ms(self) -> int:
        return self.read_retry_ms or self.raft.election_timeout_ms

    @property
    def node_id(self) -> int:
        return self.raft.node_id
