"""The Storage contract, the same for every implementation: the in-memory storage, the
WAL on a simulated disk and the WAL on the real disk (tmp_path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftcluster.raft.types import ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from raftcluster.storage import DurableState, StorageClosed
from statemachine.errors import InvalidArgument, LimitExceeded
from tests.storage_model import Harness, MemoryHarness, Model, OsFileHarness, SimFileHarness

MAKERS: dict[str, Callable[[Path], Harness]] = {
    "memory": lambda _: MemoryHarness(),
    "wal-simdisk": lambda _: SimFileHarness(),
    "wal-osdisk": lambda path: OsFileHarness(str(path / "data")),
}


@pytest.fixture(params=sorted(MAKERS))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return MAKERS[request.param](tmp_path)


def entries(first: int, last: int, term: int, data: bytes = b"") -> list[Entry]:
    return [Entry(term, i, data=data or f"e{i}t{term}".encode()) for i in range(first, last + 1)]


def snapshot(index: int, term: int, data: bytes = b"state") -> Snapshot:
    return Snapshot(SnapshotMeta(index, term, ConfState(voters=(1, 2, 3))), data)


def test_empty_storage_loads_empty(harness: Harness) -> None:
    assert harness.restart() == DurableState()


def test_round_trip_of_entries_and_hard_state(harness: Harness) -> None:
    s = harness.storage
    written = [*entries(1, 5, 1), Entry(2, 6, EntryKind.CONF_CHANGE, b"\x00conf")]
    s.append(written)
    s.set_hard_state(HardState(2, 3, 4))
    s.sync()
    assert harness.restart() == DurableState(HardState(2, 3, 4), None, tuple(written))


def test_unsynced_writes_are_dropped_on_restart(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 3, 1))
    s.sync()
    s.append(entries(4, 6, 1))
    s.set_hard_state(HardState(1, 1, 3))
    assert harness.restart() == DurableState(entries=tuple(entries(1, 3, 1)))


def test_overwrite_replaces_the_suffix(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 10, 1))
    s.sync()
    s.append(entries(4, 5, 2))
    s.sync()
    assert harness.restart().entries == (*entries(1, 3, 1), *entries(4, 5, 2))


def test_overwrite_in_the_same_batch(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 6, 1))
    s.append(entries(2, 3, 2))
    s.append(entries(3, 4, 3))
    s.sync()
    assert harness.restart().entries == (*entries(1, 1, 1), *entries(2, 2, 2), *entries(3, 4, 3))


def test_snapshot_that_agrees_keeps_the_entries_above(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 10, 1))
    s.save_snapshot(snapshot(7, 1))
    s.sync()
    loaded = harness.restart()
    assert loaded.snapshot == snapshot(7, 1)
    assert loaded.entries == tuple(entries(8, 10, 1))


def test_snapshot_that_disagrees_drops_the_log(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 10, 1))
    s.save_snapshot(snapshot(7, 2))
    s.sync()
    loaded = harness.restart()
    assert (loaded.snapshot, loaded.entries) == (snapshot(7, 2), ())


def test_snapshot_beyond_the_log_then_appends_follow_it(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 3, 1))
    s.sync()
    s.save_snapshot(snapshot(20, 4))
    s.append(entries(21, 22, 5))
    s.set_hard_state(HardState(5, 0, 20))
    s.sync()
    loaded = harness.restart()
    assert loaded == DurableState(HardState(5, 0, 20), snapshot(20, 4), tuple(entries(21, 22, 5)))


def test_newer_snapshot_replaces_the_older(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 30, 1))
    s.save_snapshot(snapshot(10, 1, b"ten"))
    s.sync()
    s.save_snapshot(snapshot(25, 1, b"twenty-five"))
    s.sync()
    loaded = harness.restart()
    assert loaded.snapshot == snapshot(25, 1, b"twenty-five")
    assert loaded.entries == tuple(entries(26, 30, 1))


def test_writes_after_restart_continue_the_log(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 4, 1))
    s.sync()
    loaded = harness.restart()
    s = harness.storage
    s.append(entries(5, 6, 2))
    s.sync()
    assert harness.restart().entries == (*loaded.entries, *entries(5, 6, 2))


@pytest.mark.parametrize(
    ("first", "last", "term", "field"),
    [
        (3, 3, 1, "append.entries[0].index"),  # a gap after index 1
        (1, 1, 0, "append.entries[0].term"),  # term zero
        (2, 2, 1, "append.entries[0].term"),  # below the term before it (2)
    ],
)
def test_bad_appends_are_refused_and_change_nothing(
    harness: Harness, first: int, last: int, term: int, field: str
) -> None:
    s = harness.storage
    s.append([Entry(2, 1)])
    s.sync()
    with pytest.raises(InvalidArgument) as refused:
        s.append(entries(first, last, term))
    assert refused.value.field == field
    s.sync()
    assert harness.restart().entries == (Entry(2, 1),)


def test_entries_must_be_contiguous(harness: Harness) -> None:
    with pytest.raises(InvalidArgument, match="expected 2"):
        harness.storage.append([Entry(1, 1), Entry(1, 3)])


def test_appends_at_or_below_the_snapshot_are_refused(harness: Harness) -> None:
    s = harness.storage
    s.append(entries(1, 5, 1))
    s.save_snapshot(snapshot(4, 1))
    with pytest.raises(InvalidArgument, match="above the snapshot index 4"):
        s.append(entries(4, 6, 1))


@pytest.mark.parametrize(
    ("index", "term", "match"), [(4, 1, "not above"), (5, 1, "not above"), (9, 0, "zero")]
)
def test_stale_snapshots_are_refused(harness: Harness, index: int, term: int, match: str) -> None:
    s = harness.storage
    s.append(entries(1, 10, 1))
    s.save_snapshot(snapshot(5, 1))
    with pytest.raises(InvalidArgument, match=match):
        s.save_snapshot(snapshot(index, term))


@pytest.mark.parametrize(
    ("after", "field"),
    [
        (HardState(2, 0, 0), "hard_state.term"),
        (HardState(3, 2, 5), "hard_state.vote"),
        (HardState(3, 1, 4), "hard_state.commit"),
    ],
)
def test_hard_state_cannot_undo_a_promise(harness: Harness, after: HardState, field: str) -> None:
    s = harness.storage
    s.set_hard_state(HardState(3, 1, 5))
    with pytest.raises(InvalidArgument) as refused:
        s.set_hard_state(after)
    assert refused.value.field == field


def test_a_vote_may_be_cast_once_in_a_term_and_changes_with_the_term(harness: Harness) -> None:
    s = harness.storage
    s.set_hard_state(HardState(3, 0, 0))
    s.set_hard_state(HardState(3, 2, 0))
    s.set_hard_state(HardState(4, 0, 0))
    s.set_hard_state(HardState(4, 5, 1))
    s.sync()
    assert harness.restart().hard_state == HardState(4, 5, 1)


def test_snapshot_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    from raftcluster.storage import FileStorage, MemoryStorage, WalOptions

    memory = MemoryStorage(max_snapshot_bytes=100)
    memory.load()
    with pytest.raises(LimitExceeded):
        memory.save_snapshot(snapshot(1, 1, b"x" * 101))
    with FileStorage.open(tmp_path, WalOptions(max_snapshot_bytes=100)) as wal:
        wal.load()
        with pytest.raises(LimitExceeded):
            wal.save_snapshot(snapshot(1, 1, b"x" * 101))
        wal.sync()
    with FileStorage.open(tmp_path) as wal:
        assert wal.load() == DurableState()


def test_writes_before_load_are_refused(harness: Harness) -> None:
    harness.storage.close()
    with pytest.raises(StorageClosed):
        harness.storage.append(entries(1, 1, 1))


def test_model_agrees_on_a_mixed_sequence(harness: Harness) -> None:
    """The reference model the stateful tests use, checked once on a fixed script."""
    s, model = harness.storage, Model()
    steps: list[tuple[str, object]] = [
        ("append", entries(1, 8, 1)),
        ("set_hard_state", HardState(2, 1, 3)),
        ("append", entries(6, 9, 2)),
        ("save_snapshot", snapshot(7, 2)),
        ("append", entries(10, 12, 2)),
        ("save_snapshot", snapshot(15, 3)),
        ("append", entries(16, 16, 3)),
    ]
    for method, argument in steps:
        getattr(s, method)(argument)
        getattr(model, method)(argument)
    s.sync()
    model.sync()
    assert harness.restart() == model.synced.durable()
    assert model.synced.entries == tuple(entries(16, 16, 3))


@pytest.mark.parametrize(
    ("index", "term", "kept"),
    [
        (4, 2, (5, 6)),  # agrees with the entry that overwrote 4 in this batch: keeps 5, 6
        (4, 1, ()),  # agrees only with the overwritten entry: the log goes
        (6, 2, ()),  # at the last index: nothing above it
        (3, 1, (4, 5, 6)),  # below the overwrite, agrees
        (9, 2, ()),  # beyond the log
    ],
)
def test_which_entries_survive_a_snapshot(
    harness: Harness, index: int, term: int, kept: tuple[int, ...]
) -> None:
    s = harness.storage
    s.append(entries(1, 5, 1))
    s.sync()
    s.append(entries(4, 6, 2))
    s.save_snapshot(snapshot(index, term))
    s.sync()
    loaded = harness.restart()
    assert tuple(e.index for e in loaded.entries) == kept
    assert loaded.snapshot == snapshot(index, term)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_memory_and_file_storage_agree_on_every_script(data: st.DataObject) -> None:
    """The same calls on both storages, restarted after each sync: the same state, in
    particular the same entries kept after each snapshot."""
    memory, wal, model = MemoryHarness(), SimFileHarness(), Model()
    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        now = model.now
        action = data.draw(st.sampled_from(["append", "snapshot", "hard state", "sync"]))
        if action == "append":
            first = data.draw(st.integers(now.floor + 1, now.last + 1), label="first")
            term = max(now.term_at(first - 1), 1) + data.draw(st.integers(0, 1), label="bump")
            count = data.draw(st.integers(1, 4), label="count")
            call: tuple[str, object] = ("append", entries(first, first + count - 1, term))
        elif action == "snapshot":
            index = data.draw(st.integers(now.floor + 1, now.last + 2), label="index")
            base = max(now.term_at(min(index, now.last)), 1)
            term = base + data.draw(st.integers(0, 1), label="bump")
            call = ("save_snapshot", snapshot(index, term, data=f"at {index}".encode()))
        elif action == "hard state":
            old = now.hard_state
            call = ("set_hard_state", HardState(old.term + 1, 1, old.commit))
        else:
            call = ("sync", None)
        for target in (memory.storage, wal.storage, model):
            method = getattr(target, call[0])
            method() if call[1] is None else method(call[1])
        if call[0] == "sync":
            assert memory.restart() == wal.restart() == model.synced.durable()
    memory.storage.sync()
    wal.storage.sync()
    model.sync()
    assert memory.restart() == wal.restart() == model.synced.durable()
