"""A snapshot file written ahead of its record (`FileStorage.stage_snapshot`), on real files.

The node writes its own snapshot's file in its snapshot thread, while its persists go on,
and a later persist only records it. These check that the record then refers to that
very file, that a compaction meanwhile leaves it alone, that a file a leader's snapshot
overtook goes, that a crash before the record loses nothing and leaves nothing, and
that a closed storage writes nothing. (Every crash image of staging, byte by byte, is
checked in tests/test_wal_crash.py.)
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from raftcluster.raft.types import ConfState, Entry, Snapshot, SnapshotMeta
from raftcluster.storage import FileStorage
from raftcluster.storage.errors import StorageClosed
from raftcluster.storage.layout import snapshot_name

CONF = ConfState(voters=(1, 2, 3))


def snapshot(index: int, term: int = 1) -> Snapshot:
    return Snapshot(SnapshotMeta(index, term, CONF), b"state at %d " % index * 1000)


def entries(first: int, last: int) -> list[Entry]:
    return [Entry(1, i, data=b"entry %d" % i) for i in range(first, last + 1)]


def snapshot_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith("snap-"))


def reload(path: Path) -> tuple[Snapshot | None, tuple[Entry, ...]]:
    with FileStorage.open(path) as storage:
        durable = storage.load()
    return durable.snapshot, durable.entries


def test_the_record_refers_to_the_staged_file_which_is_not_written_again(tmp_path: Path) -> None:
    with FileStorage.open(tmp_path) as storage:
        storage.load()
        storage.append(entries(1, 20))
        storage.sync()
        staged = snapshot(10)
        storage.stage_snapshot(staged)
        name = snapshot_name(10, 1)
        assert snapshot_files(tmp_path) == [name]  # durable already, before any record
        inode = (tmp_path / name).stat().st_ino
        storage.save_snapshot(staged)
        storage.sync()
        assert (tmp_path / name).stat().st_ino == inode  # recorded, not rewritten
    loaded, kept = reload(tmp_path)
    assert loaded == staged
    assert [e.index for e in kept] == list(range(11, 21))


def test_a_crash_before_the_record_loses_nothing_and_leaves_no_file(tmp_path: Path) -> None:
    with FileStorage.open(tmp_path) as storage:
        storage.load()
        storage.append(entries(1, 20))
        storage.sync()
        storage.stage_snapshot(snapshot(10))
    # (closed without recording it: as a crash leaves the directory)
    loaded, kept = reload(tmp_path)
    assert loaded is None
    assert [e.index for e in kept] == list(range(1, 21))
    assert snapshot_files(tmp_path) == []  # the unreferenced file is deleted at load


def test_a_compaction_meanwhile_keeps_the_staged_file_and_an_overtaken_one_goes(
    tmp_path: Path,
) -> None:
    with FileStorage.open(tmp_path) as storage:
        storage.load()
        storage.append(entries(1, 40))
        storage.sync()
        ahead = snapshot(30)
        storage.stage_snapshot(ahead)
        # An older snapshot recorded and synced meanwhile: its compaction deletes the
        # snapshot files it does not need, but not the one staged past it.
        storage.save_snapshot(snapshot(20))
        storage.sync()
        assert snapshot_files(tmp_path) == [snapshot_name(20, 1), snapshot_name(30, 1)]
        storage.save_snapshot(ahead)
        storage.sync()
        assert snapshot_files(tmp_path) == [snapshot_name(30, 1)]
        # A staged file that a leader's snapshot overtakes before it is recorded goes at
        # the compaction past it.
        storage.stage_snapshot(snapshot(35))
        storage.save_snapshot(snapshot(38, 2))
        storage.sync()
        assert snapshot_files(tmp_path) == [snapshot_name(38, 2)]
    loaded, _ = reload(tmp_path)
    assert loaded == snapshot(38, 2)


def test_staging_in_a_thread_beside_persists(tmp_path: Path) -> None:
    """The node's way: one thread stages while another appends, syncs and compacts."""
    with FileStorage.open(tmp_path) as storage:
        storage.load()
        storage.append(entries(1, 100))
        storage.sync()
        big = Snapshot(SnapshotMeta(100, 1, CONF), bytes(8 * 1024 * 1024))
        errors: list[BaseException] = []

        def stage() -> None:
            try:
                storage.stage_snapshot(big)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        thread = threading.Thread(target=stage)
        thread.start()
        index = 100
        while thread.is_alive() or index < 110:
            index += 1
            storage.append(entries(index, index))
            # Compacts at each sync, staying below the staged snapshot's index (the loop
            # may pass it before a slow thread has staged 8 MiB).
            if index % 5 == 0 and index - 50 < big.meta.index:
                storage.save_snapshot(snapshot(index - 50))
            storage.sync()
        thread.join()
        assert errors == []
        storage.save_snapshot(big)
        storage.sync()
    loaded, kept = reload(tmp_path)
    assert loaded == big
    assert kept and kept[0].index == 101 and kept[-1].index == index


def test_a_closed_storage_stages_nothing(tmp_path: Path) -> None:
    storage = FileStorage.open(tmp_path)
    storage.load()
    storage.append(entries(1, 5))
    storage.sync()
    storage.close()
    with pytest.raises(StorageClosed):
        storage.stage_snapshot(snapshot(3))
    assert snapshot_files(tmp_path) == []
