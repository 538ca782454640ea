"""Every write and every fsync the WAL does can fail with EIO or ENOSPC: each failure
raises `StorageFailed`, the storage refuses every later call, and whatever a crash or a
restart then leaves on the disk recovers to the synced state or a later prefix of the
writes (the failed batch may or may not have reached the disk)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

import attrs
import pytest

from raftcluster.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftcluster.storage import DurableState, FileStorage, StorageFailed, WalOptions
from raftcluster.storage.simfs import SimDirectory, SimOp
from tests.storage_model import Model, describe_mismatch

# Small segments and buffer, so that a few entries roll over or fill the buffer.
OPTIONS = WalOptions(max_segment_bytes=600, max_record_bytes=256, max_buffer_bytes=400)
FAILABLE = ("write", "sync", "sync_dir")  # the operations fail_next_write/sync can fail


def entries(first: int, last: int, size: int = 10) -> list[Entry]:
    return [Entry(1, i, data=bytes([i % 251]) * size) for i in range(first, last + 1)]


@attrs.frozen
class Scenario:
    """`setup` writes and syncs; `step` does the I/O that is made to fail."""

    setup: Callable[[FileStorage, Model], None]
    step: Callable[[FileStorage, Model], None]


def do(storage: FileStorage, model: Model, method: str, argument: object) -> None:
    getattr(model, method)(argument)  # first: a write whose sync fails is still pending
    getattr(storage, method)(argument)


def synced(*calls: tuple[str, object]) -> Callable[[FileStorage, Model], None]:
    def run(storage: FileStorage, model: Model) -> None:
        for method, argument in calls:
            do(storage, model, method, argument)
        storage.sync()
        model.sync()

    return run


def nothing(storage: FileStorage, model: Model) -> None:
    pass


def full_buffer(storage: FileStorage, model: Model) -> None:
    for i in range(2, 12):  # about 50 bytes each: the buffer of 400 fills on its own
        do(storage, model, "append", entries(i, i, size=30))


SNAPSHOT = Snapshot(SnapshotMeta(3, 1, ConfState((1, 2, 3))), b"state")
SCENARIOS = {
    # create the first segment, write, fsync it, fsync the directory
    "first batch": Scenario(nothing, synced(("append", entries(1, 2)))),
    # one write and one fsync of the current segment
    "batch": Scenario(
        synced(("append", entries(1, 1))),
        synced(("append", entries(2, 3)), ("set_hard_state", HardState(1, 1, 2))),
    ),
    # the old segment written and fsynced, the new one too, then the directory
    "rollover": Scenario(
        synced(("append", entries(1, 3, size=80))),
        synced(("append", entries(4, 6, size=80))),
    ),
    # the snapshot file: write, fsync, rename, directory fsync; then the log
    "snapshot": Scenario(
        synced(("append", entries(1, 5))),
        synced(("save_snapshot", SNAPSHOT), ("append", entries(6, 6))),
    ),
    # a sync the storage starts on its own inside append()
    "full buffer": Scenario(synced(("append", entries(1, 1))), full_buffer),
}


def count_failable(name: str) -> list[SimOp]:
    disk, storage, model = start(SCENARIOS[name])
    seen: list[SimOp] = []
    disk.observer = lambda op: seen.append(op) if op.kind in FAILABLE else None
    SCENARIOS[name].step(storage, model)
    return seen


def start(scenario: Scenario) -> tuple[SimDirectory, FileStorage, Model]:
    disk, model = SimDirectory(), Model()
    storage = FileStorage(disk, OPTIONS)
    storage.load()
    scenario.setup(storage, model)
    return disk, storage, model


def fail_at(disk: SimDirectory, k: int, code: int) -> list[SimOp]:
    """Make the k-th write or fsync from now fail with `code`; return it once seen."""
    seen: list[SimOp] = []

    def observe(op: SimOp) -> None:
        if op.kind in FAILABLE and len(seen) < k:
            seen.append(op)
            if len(seen) == k:
                arm = disk.fail_next_write if op.kind == "write" else disk.fail_next_sync
                arm(code)

    disk.observer = observe
    return seen


CASES = [(name, k) for name in SCENARIOS for k in range(1, len(count_failable(name)) + 1)]


def test_the_scenarios_cover_every_kind_of_write_and_fsync() -> None:
    kinds = {
        (op.kind, op.name.rsplit(".", 1)[-1] if op.name else "directory")
        for name in SCENARIOS
        for op in count_failable(name)
    }
    assert kinds == {
        ("write", "log"),
        ("sync", "log"),
        ("write", "tmp"),
        ("sync", "tmp"),
        ("sync_dir", "directory"),
    }
    assert len(count_failable("rollover")) == 5


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
@pytest.mark.parametrize(("scenario", "k"), CASES)
def test_a_failed_write_or_fsync_is_final_and_loses_nothing_synced(
    scenario: str, k: int, code: int
) -> None:
    disk, storage, model = start(SCENARIOS[scenario])
    failed = fail_at(disk, k, code)
    with pytest.raises(StorageFailed) as raised:
        SCENARIOS[scenario].step(storage, model)
    assert len(failed) == k
    assert f"[Errno {code}] {os.strerror(code)}" in str(raised.value)
    assert isinstance(raised.value.__cause__, OSError) and raised.value.__cause__.errno == code
    assert_refuses_everything(storage, raised.value)
    storage.close()
    allowed = model.allowed()  # synced, or synced + a prefix of the failed batch
    for image in after_the_failure(disk):
        loaded = load(image)
        assert loaded in allowed, describe_mismatch(loaded, allowed)


def test_a_failed_write_or_fsync_in_recovery_is_final() -> None:
    """Recovery writes as well: it cuts a torn tail (truncate, fsync), fsyncs what it
    read and syncs the directory after removing leftovers."""
    disk, storage, model = start(Scenario(synced(("append", entries(1, 3))), nothing))
    segment = disk.names()[0]
    storage.close()
    disk.append(segment).write(b"\x57\x52\x02")  # the start of a record, then the power went
    disk.create("snap-00000000000000000003-00000000000000000001.snap.tmp").sync()
    disk.crash(lambda n: n)
    # The cut's fsync, then the fsync of every surviving segment, then the directory's.
    failable = [("sync", segment), ("sync", segment), ("sync_dir", "")]
    for k, expected in enumerate(failable, start=1):
        image = disk.clone()
        failed = fail_at(image, k, errno.EIO)
        recovering = FileStorage(image, OPTIONS)
        with pytest.raises(StorageFailed) as raised:
            recovering.load()
        assert (failed[-1].kind, failed[-1].name) == expected
        assert_refuses_everything(recovering, raised.value)
        recovering.close()
        for again in after_the_failure(image):
            assert load(again) == model.synced.durable(), expected
    image = disk.clone()
    seen: list[SimOp] = []
    image.observer = lambda op: seen.append(op) if op.kind in FAILABLE else None
    FileStorage(image, OPTIONS).load()
    assert [(op.kind, op.name) for op in seen] == failable, "those are all of them"


def assert_refuses_everything(storage: FileStorage, error: StorageFailed) -> None:
    calls: list[Callable[[], object]] = [
        lambda: storage.append(entries(100, 100)),
        lambda: storage.set_hard_state(HardState(9, 0, 0)),
        lambda: storage.save_snapshot(Snapshot(SnapshotMeta(99, 9), b"")),
        storage.sync,
        storage.load,
    ]
    for call in calls:
        with pytest.raises(StorageFailed) as again:
            call()
        assert again.value is error


def after_the_failure(disk: SimDirectory) -> list[SimDirectory]:
    """The disk after a restart without power loss (unsynced bytes still in the page
    cache), and after a power cut keeping all or none of what was not synced."""
    images = [disk.clone()]
    for keep in (lambda n: n, lambda n: 0):
        image = disk.clone()
        image.crash(keep)
        images.append(image)
    return images


def load(disk: SimDirectory) -> DurableState:
    disk.observer = None
    storage = FileStorage(disk, OPTIONS)
    try:
        return storage.load()
    finally:
        storage.close()


@pytest.mark.parametrize("fail", ["segment fsync", "directory fsync"])
def test_what_a_restart_reads_after_a_failed_fsync_is_made_durable_before_use(fail: str) -> None:
    """Found by the simulator's durability oracle. The first sync creates a segment:
    write, fsync, directory fsync. One of the fsyncs fails; the node restarts without a
    power cut and reads the entry from the page cache: allowed (the write was pending),
    and the node now acts on it. A power cut after that must not lose it: recovery
    fsyncs what it read (each segment, then the directory) before returning it."""
    disk, model = SimDirectory(), Model()
    storage = FileStorage(disk, OPTIONS)
    storage.load()
    storage.append(entries(1, 1))
    if fail == "segment fsync":
        disk.fail_next_sync(errno.EIO)
    else:
        fail_at(disk, 3, errno.EIO)  # write, segment fsync, then the directory's fsync
    with pytest.raises(StorageFailed):
        storage.sync()
    storage.close()
    model.append(entries(1, 1))
    assert load(disk) == model.now.durable(), "read back from the page cache"
    disk.crash(lambda n: 0)  # nothing unsynced survives
    assert load(disk) == model.now.durable()
