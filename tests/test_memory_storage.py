"""What the simulator relies on in MemoryStorage: crash semantics, the planted fault."""

from __future__ import annotations

import logging

import pytest

from raftcluster.raft.types import Entry, HardState, Snapshot, SnapshotMeta
from raftcluster.storage import DurableState, MemoryStorage, StorageClosed
from statemachine.errors import InvalidArgument, LimitExceeded


def loaded(**kwargs: bool) -> MemoryStorage:
    storage = MemoryStorage(**kwargs)
    storage.load()
    return storage


def test_each_entry_hard_state_and_snapshot_is_one_write() -> None:
    s = loaded()
    s.append([Entry(1, 1), Entry(1, 2), Entry(1, 3)])
    s.set_hard_state(HardState(1, 1, 0))
    s.set_hard_state(HardState(1, 1, 0))  # unchanged: no write
    s.save_snapshot(Snapshot(SnapshotMeta(2, 1), b""))
    assert s.pending_writes == 5


def with_five_pending_writes() -> MemoryStorage:
    s = loaded()
    s.append([Entry(1, 1)])
    s.sync()
    s.append([Entry(1, 2), Entry(2, 3)])
    s.set_hard_state(HardState(2, 1, 1))
    s.append([Entry(3, 3)])  # overwrites 3
    s.save_snapshot(Snapshot(SnapshotMeta(2, 1), b"s"))
    return s


OUTCOMES = [
    DurableState(entries=(Entry(1, 1),)),
    DurableState(entries=(Entry(1, 1), Entry(1, 2))),
    DurableState(entries=(Entry(1, 1), Entry(1, 2), Entry(2, 3))),
    DurableState(HardState(2, 1, 1), None, (Entry(1, 1), Entry(1, 2), Entry(2, 3))),
    DurableState(HardState(2, 1, 1), None, (Entry(1, 1), Entry(1, 2), Entry(3, 3))),
    DurableState(HardState(2, 1, 1), Snapshot(SnapshotMeta(2, 1), b"s"), (Entry(3, 3),)),
]


@pytest.mark.parametrize("keep", range(6))
def test_a_crash_keeps_exactly_the_first_writes_it_is_told_to(keep: int) -> None:
    s = with_five_pending_writes()
    s.crash(keep)
    assert s.load() == OUTCOMES[keep]


def test_crash_outcomes_are_the_states_each_crash_would_leave() -> None:
    s = with_five_pending_writes()
    assert list(s.crash_outcomes()) == OUTCOMES
    assert s.pending_writes == 5, "looking changes nothing"
    s.sync()
    assert list(s.crash_outcomes()) == OUTCOMES[-1:]


def test_crash_refuses_to_keep_more_than_is_pending() -> None:
    s = loaded()
    s.append([Entry(1, 1)])
    with pytest.raises(InvalidArgument, match="outside 0..1"):
        s.crash(2)


def test_a_torn_write_is_dropped_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    s = loaded()
    s.append([Entry(1, 1), Entry(1, 2)])
    with caplog.at_level(logging.WARNING, "raftcluster.storage"):
        s.crash(1, torn=True)
    assert s.load().entries == (Entry(1, 1),)
    assert s.torn_tails_cut == 1
    assert "torn tail" in caplog.text
    s.append([Entry(1, 2)])
    s.crash(1, torn=True)  # nothing after the kept write: nothing to tear
    assert s.torn_tails_cut == 1


def test_after_a_crash_load_comes_before_any_write() -> None:
    s = loaded()
    s.crash()
    with pytest.raises(StorageClosed):
        s.append([Entry(1, 1)])
    s.load()
    with pytest.raises(StorageClosed):
        s.load()
    s.append([Entry(1, 1)])
    s.sync()
    assert (s.syncs, s.crashes) == (1, 1)


def test_lie_on_sync_loses_synced_writes_in_a_crash() -> None:
    honest, liar = loaded(), loaded(lie_on_sync=True)
    for s in (honest, liar):
        s.append([Entry(1, 1)])
        s.set_hard_state(HardState(1, 1, 1))
        s.sync()
        s.crash()
    assert honest.load() == DurableState(HardState(1, 1, 1), None, (Entry(1, 1),))
    assert liar.load() == DurableState()


def test_writes_are_validated_against_pending_ones_too() -> None:
    s = loaded()
    s.append([Entry(2, 1)])
    with pytest.raises(InvalidArgument):
        s.append([Entry(1, 2)])  # below the pending entry's term
    s.save_snapshot(Snapshot(SnapshotMeta(5, 2), b""))
    with pytest.raises(InvalidArgument):
        s.append([Entry(2, 3)])  # at or below the pending snapshot


def test_pending_writes_are_bounded() -> None:
    s = MemoryStorage(max_pending_writes=3)
    s.load()
    s.append([Entry(1, 1), Entry(1, 2)])
    with pytest.raises(LimitExceeded, match="pending writes"):
        s.append([Entry(1, 3), Entry(1, 4)])
    s.sync()
    s.append([Entry(1, 3), Entry(1, 4)])
