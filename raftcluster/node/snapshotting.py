"""Snapshots taken off the node's event loop: copy now; encode and write elsewhere; record later.

A replica that has applied `snapshot_every_entries` entries since its last snapshot
copies its state (`statemachine.snapshot_copy`: cheap, nothing encoded, nothing allocated
per key) into a `SnapshotJob` at its applied index, with the position and configuration
the snapshot stands for, and hands the job to its shell through the `CycleCore`'s
`Actions.snapshot`. The shell runs it (`SnapshotJob.run`): the state is encoded, and the
snapshot's file is written and fsynced ahead of its record (`Storage.stage_snapshot`).
It gives the result back with `CycleCore.snapshot_written(job, written)`; the next cycle
compacts the Raft log there and records the snapshot (`Work.compacted`: the storage then
only appends the record that refers to the file). One job is out at a time.

Order on disk (why a crash never loses acknowledged data): the file is durable (fsynced,
renamed, the directory fsynced) before the job returns; only then can a cycle record
it, and the storage deletes the log segments the snapshot covers only once that record
is synced. A crash before leaves an unreferenced file, which recovery deletes, and the
log as it was.

Two shells, one path: the trio node runs the job in a worker thread (`trio.to_thread`),
while heartbeats, client requests and the log's own persists go on (the encoding is a
slice of keys per encoder call, so the event loop's thread gets the interpreter in
between); the simulator runs it at once, in the same instant (synchronously, so a run
stays a pure function of its seed). A job whose index a leader's snapshot has passed
meanwhile is dropped (its file goes at the next compaction).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from raftcluster.raft.types import Snapshot, SnapshotMeta
from raftcluster.storage.interface import Storage
from statemachine.snapshot_copy import StateCopy


@attrs.frozen(eq=False)
class WrittenSnapshot:
    """A job's result: the snapshot, whose file the storage holds durably (staged)."""

    snapshot: Snapshot = attrs.field(repr=False)


@attrs.frozen(eq=False)
class SnapshotJob:
    """The state machine copied at applied index `index` (`meta.index`), to encode and
    write to `storage`."""

    meta: SnapshotMeta
    copy: StateCopy = attrs.field(repr=False)
    storage: Storage = attrs.field(repr=False)

    @property
    def index(self) -> int:
        return self.meta.index

    def encode(self, between_slices: Callable[[], None] | None = None) -> bytes:
        """The snapshot bytes (pure: touches only the copy; safe in a worker thread).
        `between_slices` is called after each slice (the node's: let the event loop's
        thread take the interpreter lock)."""
        if between_slices is None:
            return self.copy.encode()
        slices = []
        for piece in self.copy.slices():
            slices.append(piece)
            between_slices()
        return b"".join(slices)

    def run(self, between_slices: Callable[[], None] | None = None) -> WrittenSnapshot:
        """Encode the copy (`encode`) and write the snapshot's file, durably
        (`stage_snapshot`: safe in a worker thread beside the node's persists). Raises
        what the storage raises (`StorageFailed`: the node must stop, as after a failed
        persist)."""
        snapshot = Snapshot(self.meta, self.encode(between_slices))
        self.storage.stage_snapshot(snapshot)
        return WrittenSnapshot(snapshot)
