"""The simulated disk loses exactly what a real one may lose, and nothing it may not:
the WAL crash tests are only as good as this."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftcluster.storage import StorageLocked
from raftcluster.storage.simfs import SimDirectory, SimulatedCrash


def disk_with(name: str, synced: bytes, unsynced: bytes) -> SimDirectory:
    disk = SimDirectory()
    f = disk.create(name)
    f.write(synced)
    f.sync()
    disk.sync()
    f.write(unsynced)
    return disk


@given(keep=st.integers(0, 5))
def test_a_prefix_of_unsynced_bytes_survives(keep: int) -> None:
    disk = disk_with("a", b"synced", b"12345")
    disk.crash(lambda n: min(n, keep))
    assert disk.read("a") == b"synced" + b"12345"[:keep]


def test_synced_bytes_always_survive() -> None:
    disk = disk_with("a", b"synced", b"more")
    disk.crash(lambda n: 0)
    assert disk.read("a") == b"synced"
    assert not disk.unsynced()


def test_a_new_name_needs_a_directory_sync() -> None:
    disk = SimDirectory()
    f = disk.create("a")
    f.write(b"data")
    f.sync()  # the data is durable, the name is not
    disk.crash(lambda n: 0)
    assert disk.names() == []
    f = disk.create("a")
    f.sync()
    disk.sync()
    disk.crash(lambda n: 0)
    assert disk.names() == ["a"]


def test_renames_and_removals_survive_in_order_as_a_prefix() -> None:
    disk = disk_with("a", b"A", b"")
    t = disk.create("t")
    t.write(b"T")
    t.sync()
    disk.rename("t", "b")
    disk.remove("a")
    outcomes = []
    for kept in range(4):  # link t, rename t->b, remove a
        image = disk.clone()
        image.crash(first_then_all(kept))  # the first choice is the names' prefix
        outcomes.append(image.names())
    assert outcomes == [["a"], ["a", "t"], ["a", "b"], ["b"]]


def first_then_all(first: int) -> Callable[[int], int]:
    calls: list[int] = []

    def choose(n: int) -> int:
        calls.append(n)
        return min(first, n) if len(calls) == 1 else n

    return choose


def test_a_truncate_is_durable_when_it_returns() -> None:
    disk = disk_with("a", b"0123456789", b"")
    disk.truncate("a", 4)
    disk.crash(lambda n: 0)
    assert disk.read("a") == b"0123"


def test_a_planned_failure_interrupts_a_write_after_it_reached_the_cache() -> None:
    disk = disk_with("a", b"synced", b"")
    f = disk.append("a")
    disk.fail_at_op = disk.ops + 1
    with pytest.raises(SimulatedCrash):
        f.write(b"interrupted")
    image = disk.clone()
    image.crash(lambda n: n)
    assert image.read("a") == b"syncedinterrupted"
    disk.crash(lambda n: min(n, 3))
    assert disk.read("a") == b"syncedint"


def test_clones_are_independent_and_unlocked() -> None:
    disk = disk_with("a", b"x", b"y")
    disk.lock()
    with pytest.raises(StorageLocked):
        disk.lock()
    copy = disk.clone()
    copy.lock()
    copy.append("a").write(b"z")
    assert disk.read("a") == b"xy"
    disk.crash(lambda n: n)
    disk.lock()  # a crash releases the lock


def test_choices_out_of_range_are_refused() -> None:
    disk = disk_with("a", b"", b"abc")
    with pytest.raises(ValueError, match="outside"):
        disk.crash(lambda n: n + 1)


@pytest.mark.parametrize(("undo", "expected"), [(0, b"0123456789"), (1, b"0123ab")])
def test_a_cut_not_yet_synced_is_undone_or_kept_by_a_crash(undo: int, expected: bytes) -> None:
    disk = disk_with("a", b"0123456789", b"")
    disk.fail_at_op = disk.ops + 2  # the cut is applied, the power goes before its fsync
    with pytest.raises(SimulatedCrash):
        disk.truncate("a", 4)
    disk.fail_at_op = None
    disk.append("a").write(b"ab")  # appended after the cut, unsynced
    assert disk.unsynced()
    disk.crash(first_then_all(undo) if undo else lambda n: 0)
    # Undone: the durable bytes come back, what followed the cut is lost. Kept: the cut
    # stands and the appended bytes survive as a prefix (all of them here).
    assert disk.read("a") == expected
    assert not disk.unsynced()


# -- disk faults -------------------------------------------------------------------------


def test_a_flipped_bit_in_durable_data_is_seen_on_the_next_read_and_stays() -> None:
    disk = disk_with("a", b"\x00\x00", b"\x00")
    assert disk.synced_size("a") == 2
    disk.flip_bit("a", 9)  # byte 1, bit 1
    assert disk.read("a") == b"\x00\x02\x00"
    disk.crash(lambda n: 0)
    assert disk.read("a") == b"\x00\x02", "the damage is on the platter, not in a cache"
    with pytest.raises(ValueError, match="outside the 2 durable bytes"):
        disk.flip_bit("a", 16)


def test_a_zeroed_sector_covers_only_its_durable_bytes() -> None:
    synced = bytes(range(1, 256)) * 5  # 1275 bytes: sectors 0, 1 and a partial sector 2
    disk = disk_with("a", synced, b"tail")
    disk.zero_sector("a", 1)
    assert disk.read("a") == synced[:512] + bytes(512) + synced[1024:] + b"tail"
    disk.zero_sector("a", 2)
    assert disk.read("a") == synced[:512] + bytes(763) + b"tail", "unsynced bytes untouched"
    with pytest.raises(ValueError, match="sector 3 is outside"):
        disk.zero_sector("a", 3)


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failed_write_writes_nothing_and_fails_once(code: int) -> None:
    disk = disk_with("a", b"synced", b"")
    f = disk.append("a")
    disk.fail_next_write(code)
    with pytest.raises(OSError) as failed:
        f.write(b"lost")
    assert (failed.value.errno, failed.value.filename) == (code, "sim/a")
    assert disk.read("a") == b"synced"
    f.write(b"next")  # one-shot
    assert disk.read("a") == b"syncednext"


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failed_file_fsync_leaves_the_data_to_the_next_crash(code: int) -> None:
    disk = disk_with("a", b"synced", b"")
    f = disk.append("a")
    f.write(b"12345")
    disk.fail_next_sync(code)
    with pytest.raises(OSError) as failed:
        f.sync()
    assert failed.value.errno == code
    assert disk.unsynced(), "nothing became durable"
    image = disk.clone()
    image.crash(lambda n: min(n, 2))
    assert image.read("a") == b"synced12"
    f.sync()  # one-shot: the next fsync works
    disk.crash(lambda n: 0)
    assert disk.read("a") == b"synced12345"


def test_a_failed_directory_fsync_leaves_the_names_to_the_next_crash() -> None:
    disk = SimDirectory()
    f = disk.create("a")
    f.sync()
    disk.fail_next_sync(errno.EIO)
    with pytest.raises(OSError) as failed:
        disk.sync()
    assert failed.value.filename == "sim"
    disk.crash(lambda n: 0)
    assert disk.names() == []


def test_a_failed_fsync_of_a_cut_leaves_the_cut_to_the_next_crash() -> None:
    disk = disk_with("a", b"0123456789", b"")
    disk.fail_next_sync(errno.EIO)
    with pytest.raises(OSError):
        disk.truncate("a", 4)
    assert disk.read("a") == b"0123"
    disk.crash(lambda n: 0)
    assert disk.read("a") == b"0123456789"


def test_a_crash_and_a_wipe_disarm_planned_failures() -> None:
    disk = disk_with("a", b"x", b"")
    disk.fail_next_write(errno.EIO)
    disk.fail_next_sync(errno.ENOSPC)
    disk.crash(lambda n: n)
    disk.append("a").write(b"y")
    disk.sync()
    disk.fail_next_sync(errno.EIO)
    disk.wipe()
    disk.sync()
    with pytest.raises(ValueError, match="not an errno"):
        disk.fail_next_write(-1)


def test_a_wiped_directory_is_empty_and_unlocked() -> None:
    disk = disk_with("a", b"synced", b"unsynced")
    disk.lock()
    disk.wipe()
    assert disk.names() == [] and not disk.unsynced()
    disk.crash(lambda n: n)
    assert disk.names() == [], "nothing comes back"
    disk.lock()
