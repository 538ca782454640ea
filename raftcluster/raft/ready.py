"""What the Raft core hands its shell: a `Ready` batch, and small value types around it."""

from __future__ import annotations

import enum

import attrs

from raftcluster.raft.messages import RaftMessage
from raftcluster.raft.types import NONE, ConfState, Entry, HardState, Snapshot


class Role(enum.IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3


@attrs.frozen
class SoftState:
    """Volatile state worth showing: never persisted."""

    role: Role = Role.FOLLOWER
    leader: int = NONE


@attrs.frozen
class ReadState:
    """A linearizable read may be served once the state machine has applied `index`."""

    index: int
    context: bytes


@attrs.frozen
class LogPosition:
    """Where a proposal landed. It is committed iff the entry at `index` commits with `term`;
    any other term there means it was lost (definitely not applied)."""

    index: int
    term: int


@attrs.frozen
class Ready:
    """One batch of work for the shell, in this order:

    1. write `snapshot` (if any), `entries` and `hard_state` (if any), and sync once if
       `must_sync`; `entries` may start at or below the last stored index: they replace
       that suffix. A hard state whose only change is the commit index need not be synced
       (it is written, and made durable by a later sync): the commit index is volatile
       in Raft, and a restarted node learns it again from the leader (etcd's MustSync);
    2. send `messages` (only now: they may promise what step 1 made durable);
    3. if `snapshot`, restore the state machine from it; then apply `committed_entries`
       in order; serve `read_states` once applied up to their index;
    4. call `advance(ready)`.
    """

    soft_state: SoftState | None = None  # None: unchanged since the previous Ready
    hard_state: HardState | None = None  # None: unchanged, nothing to persist
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    committed_entries: tuple[Entry, ...] = ()
    messages: tuple[RaftMessage, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    # The hard state's term or vote changed: a vote must be on disk before any message
    # that relies on it leaves (a commit index alone is not such a promise).
    term_or_vote_changed: bool = False

    @property
    def must_write(self) -> bool:
        """Whether step 1 writes anything."""
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None

    @property
    def must_sync(self) -> bool:
        """Whether step 1 must sync before step 2: it writes entries, a snapshot, or a new
        term or vote. Not for a hard state whose only change is the commit index."""
        return self.term_or_vote_changed or bool(self.entries) or self.snapshot is not None

    def is_empty(self) -> bool:
        return not (
            self.must_write
            or self.soft_state is not None
            or self.committed_entries
            or self.messages
            or self.read_states
        )


@attrs.frozen
class PeerStatus:
    node_id: int
    match: int
    next: int
    state: str  # "probe", "replicate" or "snapshot"


@attrs.frozen
class Status:
    """A read-only picture of a core, for inspection, tests and the simulator's checks."""

    node_id: int
    role: Role
    leader: int
    term: int
    vote: int
    commit: int
    applied: int
    first_index: int
    last_index: int
    conf: ConfState
    peers: tuple[PeerStatus, ...] = ()  # the leader's view of its followers; empty otherwise
