"""A reference model of storage semantics for the storage tests, written independently
of `raftcluster.storage.logstate`: plain tuples, recomputed from scratch.

The model keeps the synced state and the state after each pending write (one write per
entry, per changed hard state, per snapshot). After a crash, a storage may return any
of them, from the synced one to the last: `allowed()`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence

import attrs

from raftcluster.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftcluster.storage import DurableState, FileStorage, MemoryStorage, Storage, WalOptions
from raftcluster.storage.simfs import SimDirectory, SimulatedCrash

Choose = Callable[[int], int]


@attrs.frozen
class ModelState:
    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()

    def durable(self) -> DurableState:
        return DurableState(self.hard_state, self.snapshot, self.entries)

    @property
    def floor(self) -> int:
        return self.snapshot.meta.index if self.snapshot else 0

    @property
    def last(self) -> int:
        return self.entries[-1].index if self.entries else self.floor

    def term_at(self, index: int) -> int:
        for entry in self.entries:
            if entry.index == index:
                return entry.term
        assert index == self.floor, index
        return self.snapshot.meta.term if self.snapshot else 0

    def with_entry(self, entry: Entry) -> ModelState:
        kept = tuple(e for e in self.entries if e.index < entry.index)
        return attrs.evolve(self, entries=(*kept, entry))

    def with_snapshot(self, snapshot: Snapshot) -> ModelState:
        meta = snapshot.meta
        agrees = any(e.index == meta.index and e.term == meta.term for e in self.entries)
        above = tuple(e for e in self.entries if e.index > meta.index) if agrees else ()
        return attrs.evolve(self, snapshot=snapshot, entries=above)


class Model:
    def __init__(self, synced: ModelState | None = None) -> None:
        self.states = [synced or ModelState()]  # [synced, after write 1, after write 2...]

    @property
    def now(self) -> ModelState:
        return self.states[-1]

    @property
    def synced(self) -> ModelState:
        return self.states[0]

    def append(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            self.states.append(self.now.with_entry(entry))

    def set_hard_state(self, hard_state: HardState) -> None:
        if hard_state != self.now.hard_state:
            self.states.append(attrs.evolve(self.now, hard_state=hard_state))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self.states.append(self.now.with_snapshot(snapshot))

    def sync(self) -> None:
        self.states = [self.now]

    def allowed(self) -> list[DurableState]:
        return [s.durable() for s in self.states]

    def recovered(self, loaded: DurableState) -> int:
        """Which allowed state `loaded` is (its number of surviving pending writes);
        fails the test if it is none of them. The model then continues from it."""
        allowed = self.allowed()
        assert loaded in allowed, describe_mismatch(loaded, allowed)
        # The same state may appear twice (an overwrite with identical entries): take the
        # latest, which is as good as any for continuing.
        kept = max(i for i, s in enumerate(allowed) if s == loaded)
        self.states = [self.states[kept]]
        return kept


def describe_mismatch(loaded: DurableState, allowed: list[DurableState]) -> str:
    def brief(s: DurableState) -> str:
        snap = f"snap@{s.snapshot.meta.index}/t{s.snapshot.meta.term}" if s.snapshot else "-"
        ents = ",".join(f"{e.index}/t{e.term}" for e in s.entries)
        hs = s.hard_state
        return f"hs=({hs.term},{hs.vote},{hs.commit}) {snap} [{ents}]"

    lines = [f"loaded : {brief(loaded)}"] + [f"allowed: {brief(s)}" for s in allowed]
    return "\n".join(lines)


# -- harnesses: one storage implementation, with restart and crash ----------------------


class Harness:
    storage: Storage

    def restart(self) -> DurableState:
        """A clean stop and start: close without syncing, open again, load."""
        raise NotImplementedError

    def crash(self, choose: Choose, fail_at_op: int) -> DurableState:
        """Sync with power lost at the `fail_at_op`-th disk operation of that sync (if it
        has that many), then a crash in which `choose` decides what else survives."""
        raise NotImplementedError


class MemoryHarness(Harness):
    def __init__(self, **kwargs: bool) -> None:
        self.memory = MemoryStorage(**kwargs)
        self.storage = self.memory
        self.memory.load()

    def restart(self) -> DurableState:
        self.memory.close()
        return self.memory.load()

    def crash(self, choose: Choose, fail_at_op: int) -> DurableState:
        keep = choose(self.memory.pending_writes)
        self.memory.crash(keep, torn=bool(choose(1)))
        return self.memory.load()


# Small segments and records, so that a few dozen writes roll over and compact.
SMALL = WalOptions(max_segment_bytes=600, max_record_bytes=256, max_buffer_bytes=1 << 20)


class SimFileHarness(Harness):
    def __init__(self, options: WalOptions = SMALL) -> None:
        self.options = options
        self.disk = SimDirectory()
        self.file = FileStorage(self.disk, options)
        self.storage = self.file
        self.file.load()

    def restart(self) -> DurableState:
        self.file.close()
        return self._reopen()

    def crash(self, choose: Choose, fail_at_op: int) -> DurableState:
        self.disk.fail_at_op = self.disk.ops + fail_at_op
        with contextlib.suppress(SimulatedCrash):  # fewer operations than fail_at_op: none
            self.file.sync()
        self.disk.fail_at_op = None
        self.disk.crash(choose)
        return self._reopen()

    def _reopen(self) -> DurableState:
        self.file = FileStorage(self.disk, self.options)
        self.storage = self.file
        return self.file.load()


class OsFileHarness(Harness):
    def __init__(self, path: str, options: WalOptions = SMALL) -> None:
        self.path, self.options = path, options
        self.file = FileStorage.open(path, options)
        self.storage = self.file
        self.file.load()

    def restart(self) -> DurableState:
        self.file.close()
        self.file = FileStorage.open(self.path, self.options)
        self.storage = self.file
        return self.file.load()

    def crash(self, choose: Choose, fail_at_op: int) -> DurableState:
        raise NotImplementedError("the real disk cannot lose power on demand")


def write_hard_state(rng: random.Random, storage: Storage, model: Model) -> None:
    """A new term, a random vote and one more committed entry, to both."""
    old = model.now.hard_state
    hard_state = HardState(old.term + 1, rng.randint(1, 3), old.commit + 1)
    storage.set_hard_state(hard_state)
    model.set_hard_state(hard_state)


def save_snapshot(
    rng: random.Random, storage: Storage, model: Model, size: int, *, staged: bool = False
) -> None:
    """A snapshot of `size` random bytes at a random index of the log (sometimes of a
    later term than the entry there: it replaces the log), to both; `staged`: its file
    written ahead first (`stage_snapshot`, which changes nothing the model allows)."""
    now = model.now
    index = rng.randint(now.floor + 1, now.last)
    term = now.term_at(index) + rng.choice([0, 0, 1])
    snapshot = Snapshot(SnapshotMeta(index, term, ConfState((1, 2, 3))), rng.randbytes(size))
    if staged:
        storage.stage_snapshot(snapshot)
    storage.save_snapshot(snapshot)
    model.save_snapshot(snapshot)
