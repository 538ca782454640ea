"""A test shell for Raft cores: a disk per node, a toy state machine, and mailboxes.

It does what the runtime shell does with each Ready (persist, send, apply, advance), in
memory, so that tests can drive cores by hand (golden scripts) or at random (property
tests) and look at every node's log, applied entries and messages.
"""

from __future__ import annotations

import random

import attrs
import cbor2

from raftcluster.raft.config import RaftConfig
from raftcluster.raft.core import RaftCore
from raftcluster.raft.messages import RaftMessage
from raftcluster.raft.ready import Ready
from raftcluster.raft.types import DurableState, Entry, EntryKind, HardState, Snapshot


@attrs.define
class Disk:
    """What survives a crash: exactly what the node persisted from its Readies."""

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: list[Entry] = attrs.Factory(list)

    def write(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            self.save_snapshot(rd.snapshot)
        if rd.entries:
            first = rd.entries[0].index
            base = self.snapshot.meta.index if self.snapshot else 0
            assert first > base, "entries below the snapshot"
            del self.entries[max(0, first - base - 1) :]
            assert not self.entries or self.entries[-1].index == first - 1, "gap in the log"
            self.entries.extend(rd.entries)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state

    def save_snapshot(self, snap: Snapshot) -> None:
        index, term = snap.meta.index, snap.meta.term
        kept = [e for e in self.entries if e.index > index]
        agrees = any(e.index == index and e.term == term for e in self.entries)
        self.entries = kept if agrees else []
        self.snapshot = snap

    def durable(self) -> DurableState:
        return DurableState(self.hard_state, self.snapshot, tuple(self.entries))


@attrs.define
class Node:
    """One node: its core, its disk and its state machine (the list of applied commands)."""

    config: RaftConfig
    rng: random.Random
    disk: Disk
    core: RaftCore
    now_ms: int = 0
    applied: list[tuple[int, bytes]] = attrs.Factory(list)  # (index, data) of normal entries
    applied_index: int = 0
    reads: list[tuple[int, bytes]] = attrs.Factory(list)

    @classmethod
    def start(
        cls, config: RaftConfig, seed: int, now_ms: int = 0, disk: Disk | None = None
    ) -> Node:
        disk = disk if disk is not None else Disk()
        rng = random.Random(seed)
        node = cls(config, rng, disk, RaftCore(config, disk.durable(), rng, now_ms), now_ms)
        if disk.snapshot is not None:
            node.restore(disk.snapshot)
        return node

    def restore(self, snap: Snapshot) -> None:
        self.applied = [(i, bytes(d)) for i, d in cbor2.loads(snap.data)]
        self.applied_index = snap.meta.index

    def snapshot_data(self) -> bytes:
        return cbor2.dumps([[i, d] for i, d in self.applied])

    def apply(self, entries: tuple[Entry, ...]) -> None:
        for e in entries:
            assert e.index == self.applied_index + 1, (
                f"applied {e.index} after {self.applied_index}"
            )
            self.applied_index = e.index
            if e.kind == EntryKind.NORMAL and e.data:
                self.applied.append((e.index, e.data))

    def handle_ready(self) -> tuple[Ready, list[RaftMessage]]:
        """Persist, then hand back the messages to send, then apply, then advance."""
        rd = self.core.ready()
        self.disk.write(rd)
        if rd.snapshot is not None:
            self.restore(rd.snapshot)
        self.apply(rd.committed_entries)
        self.reads.extend((r.index, r.context) for r in rd.read_states)
        self.core.advance(rd)
        return rd, list(rd.messages)

    def compact(self) -> Snapshot:
        snap = self.core.compact(self.applied_index, self.snapshot_data())
        self.disk.save_snapshot(snap)
        return snap

    def restart(self, seed: int) -> Node:
        """A crash: everything in memory is lost; the disk is what was persisted."""
        return Node.start(self.config, seed, self.now_ms, self.disk)
