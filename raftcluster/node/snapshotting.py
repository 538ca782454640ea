"""Snapshots taken off the node's event loop: copy now, encode elsewhere, compact later.

A replica that has applied `snapshot_every_entries` entries since its last snapshot
copies its state (`statemachine.snapshot_copy`: cheap, nothing encoded) into a
`SnapshotJob` at its applied index, and hands the job to its shell through the
`CycleCore`'s `Actions.snapshot`. The shell encodes it and gives the bytes back with
`CycleCore.snapshot_encoded(job, data)`; the next cycle compacts the Raft log there and
saves the snapshot (`Work.compacted`). One job is out at a time.

Two shells, one path: the trio node encodes in a worker thread (`trio.to_thread`), a
slice of keys per encoder call, so heartbeats and client requests are served meanwhile;
the simulator encodes at once, in the same instant (synchronously, so a run stays a pure
function of its seed). A job whose index a leader's snapshot has passed meanwhile is
dropped.
"""

from __future__ import annotations

import attrs

from statemachine.snapshot_copy import StateCopy


@attrs.frozen(eq=False)
class SnapshotJob:
    """The state machine copied at applied index `index`, to encode."""

    index: int
    copy: StateCopy = attrs.field(repr=False)

    def encode(self) -> bytes:
        """The snapshot bytes (pure: touches only the copy; safe in a worker thread)."""
        return self.copy.encode()
