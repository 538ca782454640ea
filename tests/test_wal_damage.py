"""Damage to synced data is refused, a crash's cut is not: the torn-tail rule is exact.

On the simulated disk, after a workload of synced batches (segments rolled over,
conflicts, snapshots) and one more batch whose fsync failed (its bytes are on the disk,
unsynced):
- any single flipped bit, in any synced byte of any segment or of the current snapshot
  file, makes `load()` raise `StorageCorrupted` (every byte is under a CRC); a zeroed
  sector does too unless its bytes were zeros already, and then the synced state comes
  back exactly. Never less than the synced state;
- a crash that keeps any prefix of the unsynced bytes, cut at any byte, recovers the
  synced state plus a prefix of the unsynced writes.
"""

from __future__ import annotations

import errno
import functools
import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftcluster.raft.types import Entry
from raftcluster.storage import DurableState, FileStorage, StorageCorrupted, StorageFailed
from raftcluster.storage.layout import is_snapshot_name, parse_segment_name, snapshot_name
from raftcluster.storage.simfs import SECTOR_BYTES, SimDirectory
from tests.storage_model import SMALL, Model, describe_mismatch, save_snapshot, write_hard_state

SEEDS = (1, 2, 3)


@attrs.frozen
class Written:
    """A disk after a workload: `model` holds the synced state and the unsynced writes;
    `synced_bytes` the durable size of each file that may be damaged."""

    disk: SimDirectory
    model: Model
    synced_bytes: dict[str, int]
    unsynced_bytes: int


@functools.cache
def written(seed: int) -> Written:
    rng = random.Random(seed)
    disk, model = SimDirectory(), Model()
    storage = FileStorage(disk, SMALL)
    storage.load()
    for _ in range(40):
        step(rng, storage, model)
    storage.sync()
    model.sync()
    current = snapshot_name(model.synced.floor, model.synced.term_at(model.synced.floor))
    synced_bytes = {
        name: disk.synced_size(name)
        for name in disk.names()
        if parse_segment_name(name) is not None or (is_snapshot_name(name) and name == current)
    }
    assert len([n for n in synced_bytes if n.endswith(".log")]) >= 2, "segments rolled over"
    assert model.synced.snapshot is None or current in synced_bytes
    sizes = sum(disk.size(name) for name in disk.names())
    for _ in range(3):  # one more batch, whose fsync fails: on the disk, unsynced
        append(rng, storage, model)
    disk.fail_next_sync(errno.EIO)
    with pytest.raises(StorageFailed):
        storage.sync()
    storage.close()
    unsynced = sum(disk.size(name) for name in disk.names()) - sizes
    assert unsynced > 0 and len(model.states) > 3
    return Written(disk, model, synced_bytes, unsynced)


def step(rng: random.Random, storage: FileStorage, model: Model) -> None:
    roll = rng.random()
    now = model.now
    if roll < 0.5:
        append(rng, storage, model)
    elif roll < 0.65:
        write_hard_state(rng, storage, model)
    elif roll < 0.75 and now.last > now.floor:
        save_snapshot(rng, storage, model, 40)
    else:
        storage.sync()
        model.sync()


def append(rng: random.Random, storage: FileStorage, model: Model) -> None:
    now = model.now
    first = rng.randint(max(now.floor + 1, now.last - 2), now.last + 1)
    term = max(now.term_at(first - 1), 1) + rng.randint(0, 1)
    size = rng.choice([3, 30, 120])
    batch = [Entry(term, i, data=rng.randbytes(size)) for i in range(first, first + 2)]
    storage.append(batch)
    model.append(batch)


def load(disk: SimDirectory) -> DurableState:
    storage = FileStorage(disk, SMALL)
    try:
        return storage.load()
    finally:
        storage.close()


def crashed(w: Written, keep_bytes: int) -> SimDirectory:
    """The disk after a power cut keeping the unsynced names and `keep_bytes` of the
    unsynced bytes of each file."""
    image = w.disk.clone()
    calls = iter(range(1_000_000))
    image.crash(lambda n: n if next(calls) == 0 else min(n, keep_bytes))
    return image


# -- damage to synced bytes ---------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    data=st.data(),
    sector=st.booleans(),
    keep_bytes=st.one_of(st.just(0), st.integers(0, 2000)),
)
def test_damage_to_synced_bytes_is_refused_or_harmless(
    seed: int, data: st.DataObject, sector: bool, keep_bytes: int
) -> None:
    w = written(seed)
    name = data.draw(st.sampled_from(sorted(w.synced_bytes)), label="file")
    size = w.synced_bytes[name]
    image = crashed(w, keep_bytes)
    before = image.read(name)
    if sector:
        image.zero_sector(name, data.draw(st.integers(0, (size - 1) // SECTOR_BYTES), "sector"))
    else:
        image.flip_bit(name, data.draw(st.integers(0, 8 * size - 1), label="bit"))
    changed = image.read(name) != before
    allowed = w.model.allowed() if keep_bytes else [w.model.synced.durable()]
    try:
        loaded = load(image)
    except StorageCorrupted as refused:
        assert refused.path == f"{image.path}/{name}", "the damaged file is named"
        assert changed, "refused a directory that is not damaged"
        return
    assert not changed, f"damage in {name} went unnoticed"
    assert loaded in allowed, describe_mismatch(loaded, allowed)


@pytest.mark.parametrize("seed", [2])  # two segments and a snapshot file
def test_every_byte_of_every_synced_file_is_checked(seed: int) -> None:
    """One flipped bit in each synced byte of every file, in turn: always refused, with
    the damaged file and a record start at or before the damage."""
    w = written(seed)
    for name, size in sorted(w.synced_bytes.items()):
        for offset in range(size):
            image = w.disk.clone()
            image.crash(lambda n: 0)
            image.flip_bit(name, 8 * offset + offset % 8)
            with pytest.raises(StorageCorrupted) as refused:
                load(image)
            assert refused.value.path == f"{image.path}/{name}", (name, offset)
            if name.endswith(".log"):  # a segment: the record holding the damage
                assert offset - 300 <= refused.value.offset <= offset, (name, offset)
    assert any(name.endswith(".snap") for name in w.synced_bytes)


# -- crashes ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_a_crash_keeping_any_prefix_of_the_unsynced_bytes_recovers_a_prefix_of_the_writes(
    seed: int,
) -> None:
    w = written(seed)
    allowed = w.model.allowed()
    kept = []
    for keep_bytes in range(w.unsynced_bytes + 1):
        loaded = load(crashed(w, keep_bytes))
        assert loaded in allowed, describe_mismatch(loaded, allowed)
        kept.append(max(i for i, s in enumerate(allowed) if s == loaded))
    assert kept == sorted(kept), "more bytes kept never recover fewer writes"
    # From none of the writes to every write whose bytes reached the disk (all of them,
    # unless the batch rolled over: the old segment's fsync failed before the new one).
    assert kept[0] == 0 and kept[-1] > 0
    assert allowed[kept[-1]] == load(w.disk.clone()), "all kept: what the page cache held"
