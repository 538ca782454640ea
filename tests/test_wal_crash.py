"""The WAL cut at every write boundary: every crash image recovers a state the model
allows (the last synced one or a later prefix of the writes), never garbage.

A scripted workload runs on a `SimDirectory` whose observer sees every disk operation
before it happens. At each one the test takes crash images:
- "in order": everything before the operation reached the disk, nothing after;
- "synced only": only what was fsynced survives (data and directory entries);
- for a write, the in-order image plus the first N bytes of the write, for N at every
  record boundary in it and at offsets inside every record (header and payload).
Each image is loaded by a fresh storage and compared with the model's allowed states
at that moment. The workload includes a crash that leaves a torn tail and a restart,
so the operations of recovery itself (cutting the tail) are cut as well.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from raftcluster.raft.types import Entry
from raftcluster.storage import DurableState, FileStorage
from raftcluster.storage.records import HEADER_BYTES, Frame, read_frame
from raftcluster.storage.simfs import SimDirectory, SimOp, SimulatedCrash
from tests.storage_model import SMALL, Model, describe_mismatch, save_snapshot, write_hard_state


def cut_points(name: str, data: bytes) -> list[int]:
    """Record boundaries in `data` (a write of whole records to a segment) and offsets
    inside each; for other files (snapshots being written), a few offsets."""
    points = {0, len(data)}
    if not name.endswith(".log"):
        return sorted(points | {1, len(data) // 2, len(data) - 1})
    at = 0
    while at < len(data):
        found = read_frame(data, at, SMALL.max_record_bytes)
        assert isinstance(found, Frame), "writes hold whole records"
        end = found.end
        inside = (1, 2, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 1, (end - at) // 2)
        points.update(at + k for k in inside if at + k < end)
        points.update((end - 1, end))
        at = end
    return sorted(points)


class CrashImages:
    """Watches a SimDirectory and checks every crash image against the model."""

    def __init__(self, disk: SimDirectory, model: Model) -> None:
        self.disk, self.model = disk, model
        self.images = 0
        self.outcomes: set[int] = set()  # how many pending writes survived, over all images
        disk.observer = self.observe

    def observe(self, op: SimOp) -> None:
        self.check(self.image(keep_unsynced=True))
        self.check(self.image(keep_unsynced=False))
        if op.kind == "write":
            for cut in cut_points(op.name, op.data):
                image = self.disk.clone()
                image.append(op.name).write(op.data[:cut])
                image.crash(lambda n: n)
                self.check(image)

    def image(self, keep_unsynced: bool) -> SimDirectory:
        image = self.disk.clone()
        image.crash(lambda n: n if keep_unsynced else 0)
        return image

    def check(self, image: SimDirectory) -> None:
        loaded = load(image)
        allowed = self.model.allowed()
        assert loaded in allowed, describe_mismatch(loaded, allowed)
        self.outcomes.add(max(i for i, s in enumerate(allowed) if s == loaded))
        self.images += 1


def load(disk: SimDirectory) -> DurableState:
    storage = FileStorage(disk, SMALL)
    try:
        return storage.load()
    finally:
        storage.close()


def workload(rng: random.Random, storage: FileStorage, model: Model, steps: int) -> None:
    for _ in range(steps):
        now = model.now
        roll = rng.random()
        if roll < 0.55:
            first = rng.randint(max(now.floor + 1, now.last - 3), now.last + 1)
            term = max(now.term_at(first - 1), 1) + rng.randint(0, 1)
            size = rng.choice([0, 5, 40, 150])
            batch = [Entry(term, i, data=rng.randbytes(size)) for i in range(first, first + 3)]
            storage.append(batch)
            model.append(batch)
        elif roll < 0.7:
            write_hard_state(rng, storage, model)
        elif roll < 0.8 and now.last > now.floor:
            # Every other one with its file written ahead (how a node saves its own).
            save_snapshot(rng, storage, model, 30, staged=now.last % 2 == 0)
        else:
            storage.sync()
            model.sync()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_crash_image_recovers_an_allowed_state(seed: int) -> None:
    rng = random.Random(seed)
    disk, model = SimDirectory(), Model()
    storage = FileStorage(disk, SMALL)
    storage.load()
    images = CrashImages(disk, model)
    workload(rng, storage, model, steps=30)
    # Power cut in the middle of a sync's write, all but its last 3 bytes on disk.
    last = model.now.last
    torn = [Entry(max(model.now.term_at(last), 1), last + 1, data=b"torn")]
    storage.append(torn)
    model.append(torn)
    disk.observer = fail_at_first_write(disk)
    with pytest.raises(SimulatedCrash):
        storage.sync()
    choices = iter([lambda n: n])  # keep the directory's changes, then cut data
    disk.crash(lambda n: next(choices, lambda n: max(0, n - 3))(n))
    # Recovery (cutting the tail) and the rest of the workload, watched again.
    disk.observer = images.observe
    storage = FileStorage(disk, SMALL)
    pending = len(model.states) - 1
    assert model.recovered(storage.load()) < pending, "the last write was torn and dropped"
    workload(rng, storage, model, steps=30)
    storage.sync()
    model.sync()
    assert load_after_close(disk, storage) == model.synced.durable()
    # The images covered syncs cut before, inside and after their batch.
    assert images.images > 500
    assert 0 in images.outcomes and max(images.outcomes) >= 3


def fail_at_first_write(disk: SimDirectory) -> Callable[[SimOp], None]:
    def observe(op: SimOp) -> None:
        if op.kind == "write" and disk.fail_at_op is None:
            disk.fail_at_op = disk.ops + 1  # this operation: applied, then the power goes

    return observe


def load_after_close(disk: SimDirectory, storage: FileStorage) -> DurableState:
    disk.observer = None
    storage.close()
    return load(disk)
