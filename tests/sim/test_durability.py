"""The durability oracle and the simulated data directory.

- Hypothesis drives a node's storage through writes, syncs, restarts, crashes, power
  cuts in the middle of a persist, EIO and ENOSPC, damage and wipes: the oracle passes
  every recovery of the real WAL, and every refusal that follows damage.
- Planted recovery bugs are caught: a disk that loses the synced end of a segment, and
  a test-local copy of the old rule that took a bad length for a torn tail.
- The messages say which directory, what was synced and what came back.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from chaos.sim.datadir import SimDataDir
from chaos.sim.durability import (
    CheckedStorage,
    DurabilityCheckFailed,
    DurabilityLost,
    DurabilityOracle,
    UnexplainedCorruption,
    UnstartableOrder,
    explain,
)
from raftcluster.raft.types import ConfState, DurableState, Entry, HardState, Snapshot, SnapshotMeta
from raftcluster.storage import (
    MemoryStorage,
    StorageClosed,
    StorageCorrupted,
    StorageFailed,
    StorageLocked,
    WalOptions,
)
from raftcluster.storage import recovery as recovery_module
from raftcluster.storage.records import BadFrame, Frame, read_frame
from raftcluster.storage.simfs import SimulatedCrash
from tests.storage_model import SMALL, Model, ModelState

ROOMY = WalOptions(max_segment_bytes=4096, max_record_bytes=256)  # issue 11's log: one segment
DATA = st.one_of(st.binary(max_size=12), st.binary(min_size=60, max_size=150))


def continue_from(state: DurableState) -> Model:
    return Model(ModelState(state.hard_state, state.snapshot, state.entries))


class NodeStorage(RuleBasedStateMachine):
    """One node's data directory over many incarnations. `Model` only generates valid
    calls (and continues from whatever was recovered); the oracle does the checking."""

    @initialize()
    def start(self) -> None:
        self.datadir = SimDataDir(1, SMALL)
        self.boot()

    def boot(self) -> None:
        self.storage = self.datadir.open()
        try:
            loaded = self.storage.load()
        except StorageCorrupted:  # after damage (else UnexplainedCorruption): the node
            self.datadir.wipe()  # stays down, and is replaced by an empty member
            self.storage = self.datadir.open()
            loaded = self.storage.load()
        self.model = continue_from(loaded)

    def choose_with(self, data: st.DataObject) -> Callable[[int], int]:
        return lambda n: data.draw(st.integers(0, n), label=f"choose of 0..{n}")

    # -- writes ------------------------------------------------------------------------

    @rule(data=st.data(), count=st.integers(1, 5))
    def append(self, data: st.DataObject, count: int) -> None:
        now = self.model.now
        first = data.draw(st.integers(max(now.floor + 1, now.last - 3), now.last + 1))
        term = max(now.term_at(first - 1), 1)
        batch = []
        for index in range(first, first + count):
            term = data.draw(st.integers(term, term + 1), label="term")
            batch.append(Entry(term, index, data=data.draw(DATA, label="data")))
        self.storage.append(batch)
        self.model.append(batch)

    @rule(data=st.data())
    def set_hard_state(self, data: st.DataObject) -> None:
        old = self.model.now.hard_state
        term = data.draw(st.integers(old.term, old.term + 1), label="term")
        vote = old.vote if term == old.term and old.vote else data.draw(st.integers(0, 3))
        hard_state = HardState(term, vote, old.commit + data.draw(st.integers(0, 2)))
        self.storage.set_hard_state(hard_state)
        self.model.set_hard_state(hard_state)

    @rule(data=st.data())
    def save_snapshot(self, data: st.DataObject) -> None:
        now = self.model.now
        index = data.draw(st.integers(now.floor + 1, now.last + 2), label="index")
        term = max(now.term_at(min(index, now.last)), 1) + data.draw(st.integers(0, 1))
        snapshot = Snapshot(SnapshotMeta(index, term, ConfState((1, 2, 3))), b"s" * index)
        self.storage.save_snapshot(snapshot)
        self.model.save_snapshot(snapshot)

    @rule()
    def sync(self) -> None:
        self.storage.sync()
        self.model.sync()

    # -- stops ---------------------------------------------------------------------------

    @rule()
    def restart(self) -> None:
        self.storage.close()
        self.boot()

    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        self.datadir.crash(self.choose_with(data))
        self.boot()

    @rule(data=st.data(), ops=st.integers(1, 8))
    def power_cut_in_a_persist(self, data: st.DataObject, ops: int) -> None:
        self.datadir.cut_power_after(ops)
        with contextlib.suppress(SimulatedCrash):  # fewer operations than `ops`: no cut
            self.storage.sync()
        self.datadir.crash(self.choose_with(data))
        self.boot()

    @rule(
        data=st.data(),
        what=st.sampled_from(["write", "sync"]),
        code=st.sampled_from([errno.EIO, errno.ENOSPC]),
        power_lost=st.booleans(),
    )
    def io_error(self, data: st.DataObject, what: str, code: int, power_lost: bool) -> None:
        now = self.model.now
        pending = [Entry(max(now.term_at(now.last), 1), now.last + 1)]  # so that sync writes
        self.storage.append(pending)
        self.model.append(pending)
        (self.datadir.fail_next_write if what == "write" else self.datadir.fail_next_sync)(code)
        with pytest.raises(StorageFailed):
            self.storage.sync()
        with pytest.raises(StorageFailed):
            self.storage.append([Entry(9, self.model.now.last + 1)])
        if power_lost:
            self.datadir.crash(self.choose_with(data))
        else:
            self.storage.close()  # a restart: bytes written before the failure may stay
        self.boot()

    @rule(data=st.data(), sector=st.booleans())
    def damage_then_restart(self, data: st.DataObject, sector: bool) -> None:
        choose = self.choose_with(data)
        (self.datadir.zero_sector if sector else self.datadir.corrupt_bit)(choose)
        self.storage.close()
        self.boot()

    @rule()
    def wipe(self) -> None:
        self.datadir.wipe()
        self.boot()

    @invariant()
    def stays_small(self) -> None:
        # Not a property of storage: keeps examples fast by bounding the log's length.
        assert self.model.now.last < 300


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTheOraclePassesTheRealStorage = NodeStorage.TestCase
TestTheOraclePassesTheRealStorage.settings = SETTINGS


@pytest.mark.soak
def test_soak() -> None:
    run_state_machine_as_test(
        NodeStorage,
        settings=settings(SETTINGS, max_examples=2000, stateful_step_count=100, database=None),
    )


# -- planted bugs -----------------------------------------------------------------------


def synced_batches(datadir: SimDataDir) -> CheckedStorage:
    """Issue 11's log: three synced batches after the first, the last one a vote."""
    storage = datadir.open()
    storage.load()
    batches: list[tuple[list[Entry], HardState]] = [
        ([Entry(1, i, data=b"x" * 20) for i in range(1, 7)], HardState(1, 0, 6)),
        ([Entry(1, 7), Entry(1, 8)], HardState(1, 0, 8)),
        ([Entry(1, 9), Entry(1, 10)], HardState(1, 0, 10)),
        ([], HardState(2, 2, 10)),
    ]
    for entries, hard_state in batches:
        storage.append(entries)
        storage.set_hard_state(hard_state)
        storage.sync()
    return storage


def record_starts(data: bytes) -> list[int]:
    starts = [0]
    while isinstance(found := read_frame(data, starts[-1], SMALL.max_record_bytes), Frame):
        starts.append(found.end)
    return starts[:-1]


def test_a_disk_that_loses_the_synced_end_of_a_segment_is_caught() -> None:
    """Planted: reads of the last segment miss its last record (the vote), as from a
    disk that lost the synced end of a file. Recovery cannot tell; the oracle does."""
    datadir = SimDataDir(3, ROOMY)
    synced_batches(datadir).close()
    (segment,) = datadir.directory.names()
    real_read = datadir.directory.read
    end = record_starts(real_read(segment))[-1]
    datadir.directory.read = lambda name: real_read(name)[:end]  # type: ignore[method-assign]
    with pytest.raises(DurabilityLost) as caught:
        datadir.open().load()
    assert str(caught.value) == (
        "sim/node-3: recovery lost or changed synced state: synced vote for 2 in term 2, "
        "recovered term 1 with no vote (no write was pending at the stop)"
    )


def old_rule(buf: bytes | memoryview, offset: int, max_payload_bytes: int) -> Frame | BadFrame:
    """Format version 1's mistake, restored: a record whose header fails its CRC is
    taken for a torn tail."""
    found = read_frame(buf, offset, max_payload_bytes)
    if isinstance(found, BadFrame) and "header that fails its CRC" in found.reason:
        return BadFrame(True, found.reason)
    return found


@pytest.mark.parametrize("planted", [False, True], ids=["real-rule", "old-rule"])
def test_a_flipped_length_bit_is_refused_and_the_old_rule_is_caught(
    monkeypatch: pytest.MonkeyPatch, planted: bool
) -> None:
    """Issue 11 in the simulator: a bit flips in the length of entry 7's record. The
    real recovery refuses the directory (allowed after damage); the old rule cuts
    entries 7 to 10 and the vote, which the oracle reports."""
    datadir = SimDataDir(2, ROOMY)
    synced_batches(datadir).close()
    (segment,) = datadir.directory.names()
    seventh = record_starts(datadir.directory.read(segment))[8]  # header, 1-6, hard state
    bit = 8 * (seventh + 5)  # the length's second byte: the record seems to run past the end
    choices = iter([0, bit])  # the only file, then the bit
    damage = datadir.corrupt_bit(lambda n: next(choices))
    assert damage is not None and (damage.name, damage.offset_bytes) == (segment, seventh + 5)
    if planted:
        monkeypatch.setattr(recovery_module, "read_frame", old_rule)
        with pytest.raises(DurabilityLost) as caught:
            datadir.open().load()
        assert str(caught.value) == (
            "sim/node-2: recovery lost or changed synced state: synced vote for 2 in term 2, "
            "recovered term 1 with no vote; synced commit index 10, recovered 6; synced "
            "entries up to 10 (term 1), recovered up to 6 (term 1) (no write was pending "
            "at the stop)"
        )
    else:
        with pytest.raises(StorageCorrupted) as refused:
            datadir.open().load()
        assert refused.value.offset == seventh
        assert datadir.oracle.refusals == 1


# -- the oracle's own rules ---------------------------------------------------------------


def test_a_refusal_without_damage_is_reported() -> None:
    oracle = DurabilityOracle("sim/node-4")
    with pytest.raises(UnexplainedCorruption, match="sim/node-4: recovery refused"):
        oracle.refused(StorageCorrupted("sim/node-4/wal-1.log", 40, "a record header ..."))
    oracle.note_damage()
    oracle.refused(StorageCorrupted("sim/node-4/wal-1.log", 40, "a record header ..."))
    assert oracle.refusals == 1


def test_the_pending_writes_may_survive_as_any_prefix_and_no_more() -> None:
    """A shadow with 2 writes pending at the stop accepts the synced state and both
    prefixes, and continues from the one recovered; anything else is reported."""
    synced = DurableState(HardState(1, 0, 0), None, (Entry(1, 1),))
    for kept in range(3):
        oracle = DurabilityOracle("sim/node-5")
        oracle.shadow.append([Entry(1, 1)])
        oracle.shadow.sync()
        oracle.shadow.append([Entry(1, 2)])
        oracle.shadow.set_hard_state(HardState(1, 2, 1))
        outcomes = list(oracle.shadow.crash_outcomes())
        assert outcomes[0] == DurableState(entries=synced.entries)
        oracle.recovered(outcomes[kept])
        assert (oracle.writes_in_doubt, oracle.writes_survived) == (2, kept)
        assert list(oracle.shadow.crash_outcomes()) == [outcomes[kept]]
    oracle.shadow.append([Entry(2, 3)])
    with pytest.raises(DurabilityLost, match="recovered up to 3 \\(term 1\\)"):
        oracle.recovered(
            DurableState(HardState(1, 2, 1), None, (Entry(1, 1), Entry(1, 2), Entry(1, 3)))
        )


def test_equality_is_exact() -> None:
    """Snapshot data, configuration and entry data all count."""
    oracle = DurabilityOracle("sim/node-6")
    snapshot = Snapshot(SnapshotMeta(2, 1, ConfState((1, 2))), b"state")
    oracle.shadow.save_snapshot(snapshot)
    oracle.shadow.append([Entry(1, 3, data=b"three")])
    oracle.shadow.sync()
    good = DurableState(HardState(), snapshot, (Entry(1, 3, data=b"three"),))
    wrong = [
        DurableState(HardState(), Snapshot(snapshot.meta, b"stale"), good.entries),
        DurableState(
            HardState(), Snapshot(SnapshotMeta(2, 1, ConfState((1,))), b"state"), good.entries
        ),
        DurableState(HardState(), snapshot, (Entry(1, 3, data=b"thre3"),)),
    ]
    messages = []
    for state in wrong:
        with pytest.raises(DurabilityLost) as caught:
            oracle.recovered(state)
        messages.append(caught.value.detail)
    assert "snapshot at index 2 (term 1): synced 5 bytes of state" in messages[0]
    assert "synced snapshot at index 2 (term 1), recovered snapshot at index 2" in messages[1]
    assert "entry 3: synced term 1 with 5 bytes, recovered index 3 term 1" in messages[2]
    oracle.recovered(good)


def test_explain_names_lost_entries_and_votes() -> None:
    synced = DurableState(HardState(4, 2, 12), None, tuple(Entry(3, i) for i in range(1, 13)))
    recovered = DurableState(HardState(1, 0, 9), None, synced.entries[:9])
    assert explain(synced, recovered, 3) == (
        "recovery lost or changed synced state: synced vote for 2 in term 4, recovered "
        "term 1 with no vote; synced commit index 12, recovered 9; synced entries up to 12 "
        "(term 3), recovered up to 9 (term 3) (3 writes were pending at the stop (any "
        "prefix of them may survive), and the recovered state is none of those outcomes)"
    )


def test_a_write_the_shadow_refuses_is_a_disagreement() -> None:
    class Lenient(MemoryStorage):
        def append(self, entries: object) -> None:
            pass  # accepts anything

    oracle = DurabilityOracle("sim/node-7")
    storage = CheckedStorage(Lenient(), oracle)
    with pytest.raises(DurabilityCheckFailed, match="the two storages disagree"):
        storage.append([Entry(1, 5)])  # a gap: the shadow refuses


# -- the data directory -----------------------------------------------------------------


def test_a_crashed_incarnation_is_abandoned_and_the_next_one_opens() -> None:
    datadir = SimDataDir(8, SMALL)
    first = datadir.open()
    first.load()
    with pytest.raises(StorageLocked):
        datadir.open()
    first.append([Entry(1, 1)])
    datadir.crash(lambda n: n)
    with pytest.raises(StorageClosed, match="abandoned by a crash"):
        first.sync()
    second = datadir.open()
    assert second.load().entries in ((), (Entry(1, 1),))
    assert datadir.injected.crashes == 1 and datadir.oracle.loads == 2


def test_damage_and_failures_are_counted_and_chosen_by_the_caller() -> None:
    datadir = SimDataDir(9, ROOMY)
    assert datadir.corrupt_bit(lambda n: n) is None, "nothing durable yet"
    synced_batches(datadir).close()
    calls: list[int] = []

    def last(n: int) -> int:
        calls.append(n)
        return n

    damage = datadir.zero_sector(last)
    (segment,) = datadir.directory.names()
    size = datadir.directory.synced_size(segment)
    assert calls == [0, (size - 1) // 512]
    assert damage is not None and damage.changed
    assert (damage.offset_bytes, damage.size_bytes) == (512 * calls[1], size - 512 * calls[1])
    datadir.fail_next_write(errno.ENOSPC)
    datadir.fail_next_sync(errno.EIO)
    datadir.cut_power_after(3)
    with pytest.raises(ValueError, match="outside 0..0"):
        datadir.corrupt_bit(lambda n: 1)
    datadir.wipe()
    assert datadir.directory.names() == []
    assert datadir.open().load() == DurableState()
    injected = datadir.injected
    assert (injected.sectors_zeroed, injected.sectors_changed, injected.wipes) == (1, 1, 1)
    assert (injected.write_failures_armed, injected.sync_failures_armed) == (1, 1)
    assert injected.power_cuts_armed == 1


def test_every_write_leaves_a_state_the_node_can_start_from() -> None:
    """A crash may keep any prefix of the writes, so each write is checked: a commit index
    above the log, or entries of a term above the hard state's, is refused at once."""
    storage = CheckedStorage(MemoryStorage(), DurabilityOracle("sim/node-8"), check_startable=True)
    storage.load()
    storage.set_hard_state(HardState(1, 1, 0))
    storage.append([Entry(1, 1), Entry(1, 2)])
    storage.set_hard_state(HardState(1, 1, 2))  # the safe order: entries, then commit
    with pytest.raises(UnstartableOrder, match="commit index 4 above the last entry 2"):
        storage.set_hard_state(HardState(1, 1, 4))

    storage = CheckedStorage(MemoryStorage(), DurabilityOracle("sim/node-9"), check_startable=True)
    loose = CheckedStorage(MemoryStorage(), DurabilityOracle("sim/node-10"))
    loose.load()
    loose.append([Entry(2, 1)])  # without the check: any order the storage accepts
    storage.load()
    storage.set_hard_state(HardState(1, 1, 0))
    with pytest.raises(UnstartableOrder, match="entries of term 2 under a hard state of term 1"):
        storage.append([Entry(2, 1)])
