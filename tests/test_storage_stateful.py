"""Each storage against the reference model, with crashes, driven by Hypothesis.

After a clean restart a storage must return exactly the synced state; after a crash
(in the WAL's case power lost at any disk operation of a sync, then any choice of what
unsynced data and directory changes survive), the state as of the last sync or of a
later prefix of the writes, never anything else.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from raftcluster.raft.types import ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from statemachine.errors import InvalidArgument
from tests.storage_model import Harness, MemoryHarness, Model, SimFileHarness

DATA = st.one_of(st.binary(max_size=12), st.binary(min_size=100, max_size=200))


class StorageMachine(RuleBasedStateMachine):
    """Subclasses set `make`."""

    def make(self) -> Harness:
        raise NotImplementedError

    @initialize()
    def start(self) -> None:
        self.harness = self.make()
        self.model = Model()
        self.crashes = 0

    @rule(data=st.data(), count=st.integers(1, 4))
    def append(self, data: st.DataObject, count: int) -> None:
        self._append(data, count)

    @rule(data=st.data(), count=st.integers(5, 12))
    def append_many(self, data: st.DataObject, count: int) -> None:
        self._append(data, count)

    def _append(self, data: st.DataObject, count: int) -> None:
        now = self.model.now
        first = data.draw(st.integers(now.floor + 1, now.last + 1), label="first")
        term = max(now.term_at(first - 1), 1)
        batch = []
        for index in range(first, first + count):
            term = data.draw(st.integers(term, term + 1), label="term")
            kind = data.draw(st.sampled_from(EntryKind), label="kind")
            batch.append(Entry(term, index, kind, data.draw(DATA, label="data")))
        self.harness.storage.append(batch)
        self.model.append(batch)

    @rule(data=st.data())
    def set_hard_state(self, data: st.DataObject) -> None:
        old = self.model.now.hard_state
        term = data.draw(st.integers(old.term, old.term + 2), label="term")
        if term == old.term and old.vote:
            vote = old.vote
        else:
            vote = data.draw(st.integers(0, 5), label="vote")
        commit = data.draw(st.integers(old.commit, old.commit + 3), label="commit")
        hard_state = HardState(term, vote, commit)
        self.harness.storage.set_hard_state(hard_state)
        self.model.set_hard_state(hard_state)

    @rule(data=st.data())
    def save_snapshot(self, data: st.DataObject) -> None:
        now = self.model.now
        index = data.draw(st.integers(now.floor + 1, now.last + 3), label="index")
        base = now.term_at(index) if index <= now.last else now.term_at(now.last)
        term = data.draw(st.integers(max(base, 1), max(base, 1) + 1), label="term")
        voters = data.draw(st.sets(st.integers(1, 9), max_size=3), label="voters")
        meta = SnapshotMeta(index, term, ConfState(voters=tuple(sorted(voters))))
        snapshot = Snapshot(meta, data.draw(DATA, label="state"))
        self.harness.storage.save_snapshot(snapshot)
        self.model.save_snapshot(snapshot)

    @rule(data=st.data())
    def refused_append(self, data: st.DataObject) -> None:
        now = self.model.now
        first = data.draw(
            st.one_of(st.integers(0, now.floor), st.integers(now.last + 2, now.last + 5)),
            label="bad first",
        )
        with pytest.raises(InvalidArgument):
            self.harness.storage.append([Entry(max(now.term_at(now.last), 1), first)])

    @rule()
    def sync(self) -> None:
        self.harness.storage.sync()
        self.model.sync()

    @rule()
    def restart(self) -> None:
        loaded = self.harness.restart()
        self.model.states = self.model.states[:1]
        assert self.model.recovered(loaded) == 0

    @precondition(lambda self: len(self.model.states) > 1)
    @rule(data=st.data(), fail_at_op=st.integers(1, 12))
    def crash(self, data: st.DataObject, fail_at_op: int) -> None:
        loaded = self.harness.crash(
            lambda n: data.draw(st.integers(0, n), label=f"survive of {n}"), fail_at_op
        )
        self.model.recovered(loaded)
        self.crashes += 1

    @invariant()
    def stays_small(self) -> None:
        # Not a property of storage: keeps examples fast by bounding the log's length.
        assert self.model.now.last < 400


class MemoryMachine(StorageMachine):
    def make(self) -> Harness:
        return MemoryHarness()


class WalOnSimulatedDiskMachine(StorageMachine):
    def make(self) -> Harness:
        return SimFileHarness()


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMemoryStorage = MemoryMachine.TestCase
TestMemoryStorage.settings = SETTINGS
TestWalOnSimulatedDisk = WalOnSimulatedDiskMachine.TestCase
TestWalOnSimulatedDisk.settings = SETTINGS


def test_the_model_check_catches_a_storage_that_lies_about_sync() -> None:
    """The planted fault: with `lie_on_sync`, a crash loses synced writes, and the same
    check the machine uses refuses the result."""
    harness = MemoryHarness(lie_on_sync=True)
    model = Model()
    harness.storage.append([Entry(1, 1), Entry(1, 2)])
    model.append([Entry(1, 1), Entry(1, 2)])
    harness.storage.sync()
    model.sync()
    loaded = harness.crash(lambda n: 0, fail_at_op=1)
    with pytest.raises(AssertionError, match="loaded"):
        model.recovered(loaded)


@pytest.mark.soak
@pytest.mark.parametrize("machine", [MemoryMachine, WalOnSimulatedDiskMachine])
def test_soak(machine: type[StorageMachine]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(SETTINGS, max_examples=1000, stateful_step_count=100, database=None),
    )
