"""The one storage interface the node runtime and the simulator drive.

The Raft core keeps its log in memory (bounded by snapshotting) and says in each
`Ready` what must be made durable; the shell writes it through this interface and
calls `sync()` once per batch (group commit) before sending any message that
depends on it. Nothing written is durable until `sync()` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from raftcluster.raft.types import Entry, HardState, Snapshot


@attrs.frozen
class DurableState:
    """What a node finds on start: the last synced hard state, snapshot and entries.

    `entries` are contiguous and follow the snapshot (if any) without a gap.
    """

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()


class Storage(Protocol):
    def load(self) -> DurableState:
        """Read back everything synced. Called once, before any write."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Write entries. If the first one's index is at or below the last stored index,
        the stored suffix from that index on is replaced (a conflict the core resolved)."""
        ...

    def set_hard_state(self, hard_state: HardState) -> None: ...

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot; entries up to its index are no longer needed and may go.
        Entries above it stay only if they agree with it (same index and term)."""
        ...

    def sync(self) -> None:
        """Make every write so far durable (one fsync per batch)."""
        ...

    def close(self) -> None: ...
