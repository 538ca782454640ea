"""The one storage interface the node runtime and the simulator drive.

The Raft core keeps its log in memory (bounded by snapshotting) and says in each
`Ready` what must be made durable; the shell writes it through this interface and
calls `sync()` once per batch (group commit) before sending any message that
depends on it. Nothing written is durable until `sync()` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from raftcluster.raft.types import DurableState, Entry, HardState, Snapshot

__all__ = ["DurableState", "Storage"]


class Storage(Protocol):
    """Durable hard state, log and snapshot of one node.

    Every call is a sequence of writes applied in order: one per entry, one per hard
    state, one per snapshot. After a crash, `load()` returns the state as of the last
    `sync()` or as of a later prefix of those writes (never a mix, never garbage).
    Implementations: `FileStorage` (a WAL in a data directory) and `MemoryStorage`
    (the simulator's, with `crash()`). docs/storage.md has the details.

    Invalid calls raise `InvalidArgument` (or `LimitExceeded`) and change nothing.

    Order within a batch matters, because a crash may keep any prefix of it: write the
    entries and the snapshot before the hard state whose commit index refers to them
    (as etcd's WAL does), so that no crash leaves a commit index above the log.
    """

    def load(self) -> DurableState:
        """Read back everything durable. Called once, before any write (for the
        in-memory storage, again after each `crash()` or `close()`)."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Write entries. If the first one's index is at or below the last stored index,
        the stored suffix from that index on is replaced (a conflict the core resolved).

        The entries must be contiguous, the first one's index in
        `snapshot index + 1 .. last index + 1`, and terms at least 1 and never below the
        term of the entry before them. An empty sequence is a no-op."""
        ...

    def set_hard_state(self, hard_state: HardState) -> None:
        """Write the hard state (a no-op when unchanged). Refused: a lower term, a
        different vote in the same term once a vote is stored, a lower commit index."""
        ...

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot; entries up to its index are no longer needed and may go.
        Entries above it stay only if they agree with it (same index and term).
        Its index must be above the stored snapshot's, its term at least that one's."""
        ...

    def stage_snapshot(self, snapshot: Snapshot) -> None:
        """Do ahead, durably, the slow part of a later `save_snapshot(snapshot)` (for a
        file storage: encode, write and fsync the snapshot's file), changing nothing
        `load()` returns: a crash before that `save_snapshot` is synced loses nothing.
        The only call that may run in another thread while one other call runs (the node
        runs it in its snapshot thread while its persists go on). Errors as for `sync()`.
        """
        ...

    def sync(self) -> None:
        """Make every write so far durable (one fsync per batch). Nothing pending: no-op."""
        ...

    def close(self) -> None:
        """Release the storage. Writes not synced are dropped, as in a crash."""
        ...
