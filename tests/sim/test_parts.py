"""The simulator's parts on their own: clocks, network, trace, invariants."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.sim.clock import MAX_DRIFT_PPM, NodeClock
from chaos.sim.events import (
    Delivered,
    Event,
    FaultInjected,
    Healed,
    NodeResumed,
    RunEnded,
    Sent,
)
from chaos.sim.faults import NetworkConditions, Partition
from chaos.sim.invariants import Invariants, SafetyViolation, Where
from chaos.sim.network import Envelope, Network
from chaos.sim.trace import Trace
from raftcluster.node.replica import Output, Work
from raftcluster.raft.ready import Ready, Role
from raftcluster.raft.types import Entry
from statemachine.errors import InvalidArgument

# -- clocks ------------------------------------------------------------------------------

drifts = st.integers(-MAX_DRIFT_PPM, MAX_DRIFT_PPM)


@given(
    st.integers(0, 10**6),
    drifts,
    st.lists(st.tuples(st.integers(1, 10**5), st.integers(0, 5_000), drifts), max_size=5),
)
def test_a_node_clock_never_goes_back_and_virtual_inverts_local(
    offset: int, drift: int, changes: list[tuple[int, int, int]]
) -> None:
    clock = NodeClock(offset, drift)
    now = 0
    for gap, jump, new_drift in changes:
        before = clock.local(now)
        now += gap
        assert clock.local(now) >= before
        clock.jump(now, jump)
        clock.set_drift(now, new_drift)
    for target in (clock.local(now), clock.local(now) + 1, clock.local(now) + 12_345):
        v = clock.virtual(target, now)
        assert v >= now and clock.local(v) >= target
        assert v == now or clock.local(v - 1) < target  # the first such time


def test_a_clock_refuses_to_go_back_or_to_drift_absurdly() -> None:
    clock = NodeClock()
    with pytest.raises(InvalidArgument):
        clock.jump(10, -1)
    with pytest.raises(InvalidArgument):
        clock.set_drift(10, MAX_DRIFT_PPM + 1)


# -- network -----------------------------------------------------------------------------


def test_the_network_drops_on_cut_links_at_send_and_at_delivery() -> None:
    net = Network(random.Random(1), NetworkConditions(min_delay_ms=5, max_delay_ms=5))
    net.cuts = {(1, 2)}
    assert net.send(Envelope(1, 2, "x", 0), True) == []
    assert net.send(Envelope(2, 1, "y", 0), True) == [5]
    assert net.send(Envelope(1, 3, "z", 0), True) == [5]
    net.cuts = {(1, 3)}  # cut while in flight
    delivered = net.pop_due(5)
    assert delivered is not None and delivered.payload == "y"
    assert net.pop_due(5) is None and net.stats.cut == 2


def test_only_duplicable_messages_are_duplicated() -> None:
    net = Network(random.Random(1), NetworkConditions(duplicate=1.0))
    assert len(net.send(Envelope(1, 2, "raft", 0), True)) == 2
    assert len(net.send(Envelope(1001, 2, "request", 0), False)) == 1


# -- trace -------------------------------------------------------------------------------


def test_the_trace_hash_depends_on_every_event_and_their_order() -> None:
    def digest(*events: Event) -> str:
        trace = Trace()
        for event in events:
            trace.add(event)
        return trace.hexdigest()

    sent, delivered = Sent(1, 1, 2, "Heartbeat", 3, 20, (5,)), Delivered(5, 1, 2)
    a = digest(sent, delivered)
    assert a == digest(sent, delivered)
    assert a != digest(delivered, sent)
    assert a != digest(sent, Delivered(5, 1, 3))
    assert a != digest(sent, NodeResumed(5, 1))  # same fields, another kind
    fault = FaultInjected(2, Partition(((1,), (2, 3))))
    assert digest(fault) != digest(FaultInjected(2, Partition(((1, 2), (3,)))))
    # Events are delimited: two strings run together hash differently.
    assert digest(RunEnded(1, "ab"), Healed(1)) != digest(RunEnded(1, "a"), Healed(1))


# -- invariants --------------------------------------------------------------------------


def cycle(inv: Invariants, node: int, **ready: object) -> None:
    inv.on_cycle(node, Work(Ready(**ready)), Output())  # type: ignore[arg-type]


def fake(
    commit: int,
    applied: int,
    role: Role = Role.FOLLOWER,
    term: int = 1,
    log: tuple[Entry, ...] = (),
) -> SimpleNamespace:
    core = SimpleNamespace(
        commit_index=commit,
        role=role,
        term=term,
        log_entries=lambda: log,
        term_at=lambda index: next((e.term for e in log if e.index == index), None),
        status=lambda: SimpleNamespace(first_index=1),
    )
    return SimpleNamespace(core=core, applied_index=applied)


def invariants(step: int = 0, time_ms: int = 0) -> Invariants:
    def fail(invariant: str, message: str, nodes: object) -> SafetyViolation:
        return SafetyViolation(invariant, message, Where(step, time_ms), nodes)  # type: ignore[arg-type]

    return Invariants(fail)


def test_two_leaders_in_one_term_violate_election_safety() -> None:
    inv = invariants(7, 1234)
    inv.on_step({1: fake(0, 0, Role.LEADER, term=3)})  # type: ignore[dict-item]
    with pytest.raises(SafetyViolation) as caught:
        inv.on_step({2: fake(0, 0, Role.LEADER, term=3)})  # type: ignore[dict-item]
    v = caught.value
    assert (v.invariant, v.step, v.time_ms, v.nodes) == ("election safety", 7, 1234, (1, 2))


def test_indexes_going_back_on_a_running_node_violate_monotonic_progress() -> None:
    inv = invariants()
    inv.on_step({1: fake(5, 5)})  # type: ignore[dict-item]
    with pytest.raises(SafetyViolation, match="monotonic progress"):
        inv.on_step({1: fake(5, 4)})  # type: ignore[dict-item]
    inv.on_stop(1)  # a restarted node starts over
    inv.on_step({1: fake(2, 0)})  # type: ignore[dict-item]


def test_different_entries_applied_at_one_index_violate_state_machine_safety() -> None:
    inv = invariants()
    cycle(inv, 1, committed_entries=(Entry(1, 1, data=b"a"),))
    cycle(inv, 2, committed_entries=(Entry(1, 1, data=b"a"),))
    with pytest.raises(SafetyViolation, match="state machine safety"):
        cycle(inv, 3, committed_entries=(Entry(2, 1, data=b"b"),))


def test_log_matching_is_checked_on_every_persisted_batch() -> None:
    inv = invariants()
    cycle(inv, 1, entries=(Entry(1, 1), Entry(2, 2), Entry(3, 3, data=b"x")))
    with pytest.raises(SafetyViolation, match="different entry at index 3"):
        cycle(inv, 2, entries=(Entry(1, 1), Entry(2, 2), Entry(3, 3, data=b"y")))
    with pytest.raises(SafetyViolation, match="after an entry of term 1"):
        cycle(inv, 3, entries=(Entry(1, 1), Entry(1, 2), Entry(3, 3, data=b"x")))


def test_a_write_acknowledged_at_an_index_holding_another_entry_is_caught() -> None:
    inv = invariants()
    cycle(inv, 1, committed_entries=(Entry(1, 1, data=b"mine"),))
    inv.on_acknowledged(1, 1000, 1, b"mine")
    with pytest.raises(SafetyViolation, match="acknowledged writes"):
        inv.on_acknowledged(1, 1000, 1, b"someone else's")
    with pytest.raises(SafetyViolation, match="where nothing was applied"):
        inv.on_acknowledged(1, 1000, 2, b"never applied")


def test_a_leader_commits_an_earlier_terms_entry_only_with_one_of_its_own() -> None:
    """Raft's Figure 8: the leader of term 4 holds (2, term 2) on a majority; committing
    it by counting replicas, before its own entry, breaks the commit rule."""
    inv = invariants()
    log = (Entry(1, 1), Entry(2, 2), Entry(4, 3))
    inv.on_step({1: fake(1, 1, Role.LEADER, term=4, log=log)})  # type: ignore[dict-item]
    inv.on_step({1: fake(3, 3, Role.LEADER, term=4, log=log)})  # with its own: fine
    other = invariants()
    other.on_step({1: fake(1, 1, Role.LEADER, term=4, log=log)})  # type: ignore[dict-item]
    with pytest.raises(SafetyViolation, match="commit rule"):
        other.on_step({1: fake(2, 2, Role.LEADER, term=4, log=log)})  # type: ignore[dict-item]


def test_leader_completeness_covers_entries_committed_before_the_leaders_term_only() -> None:
    """A node may learn it won term 2 (its vote replies slow on the way) after term 3
    committed an entry it never held: not a violation. An entry committed in term 1 that
    it lacks is."""
    inv = invariants()
    cycle(inv, 2, committed_entries=(Entry(3, 1, data=b"x"),))
    inv.on_step({2: fake(1, 1, Role.LEADER, term=3, log=(Entry(3, 1, data=b"x"),))})  # type: ignore[dict-item]
    inv.on_step({1: fake(0, 0, Role.LEADER, term=2)})  # type: ignore[dict-item]
    cycle(inv, 3, committed_entries=(Entry(3, 1, data=b"x"), Entry(3, 2, data=b"y")))
    late = invariants()
    cycle(late, 2, committed_entries=(Entry(1, 1, data=b"x"),))
    late.on_step({2: fake(1, 1, Role.FOLLOWER, term=1, log=(Entry(1, 1, data=b"x"),))})  # type: ignore[dict-item]
    with pytest.raises(SafetyViolation, match="leader completeness"):
        late.on_step({1: fake(0, 0, Role.LEADER, term=2)})  # type: ignore[dict-item]
