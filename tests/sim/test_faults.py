"""Each fault kind fires, and does what it says (scripted schedules, then the random mix)."""

from __future__ import annotations

import logging
import random
from typing import TypeVar

import pytest

from chaos.sim import (
    FAULT_KINDS,
    ClusterView,
    KvWorkload,
    NetworkConditions,
    RandomFaults,
    ScriptedFaults,
    SimConfig,
    Simulator,
    simulate,
)
from chaos.sim.events import Event, NodeCrashed, NodeResumed, NodeStarted, Sent
from chaos.sim.faults import (
    ChangeMembership,
    ClockDrift,
    ClockJump,
    Crash,
    CutLinks,
    Fault,
    HealNetwork,
    Partition,
    Pause,
    Restart,
)
from chaos.sim.nemesis import FaultMix

E = TypeVar("E", bound=Event)


def events(sim: Simulator, kind: type[E]) -> list[E]:
    return [e for e in sim.trace.records if isinstance(e, kind)]


def sends(sim: Simulator) -> list[Sent]:
    return events(sim, Sent)


def scripted(faults: list[tuple[int, Fault]], seed: int = 1, **options: object) -> Simulator:
    config = SimConfig(seed=seed, nodes=3, duration_ms=15_000, keep_trace=True, **options)  # type: ignore[arg-type]
    sim = Simulator(config, ScriptedFaults(faults), KvWorkload())
    result = sim.run()
    assert result.ok, result.violation or result.error
    return sim


def test_a_partition_cuts_the_links_between_sides_until_healed() -> None:
    sim = scripted([(3_000, Partition(((1,), (2, 3)))), (8_000, HealNetwork())])
    assert sim.network.stats.cut > 0
    assert sim.counters.faults == {"partition": 1, "heal": 1}
    cut_sends = [
        r for r in sends(sim)
        if 3_000 <= r.time_ms < 8_000 and (r.src == 1) != (r.dst == 1)
        and r.src < 100 and r.dst < 100 and r.deliveries
    ]  # fmt: skip
    assert cut_sends == []  # nothing crossed the partition while it stood


class CutFromLeader:
    """At 3 s, cut the link from the leader to one follower (one way), healed at 8 s: the
    follower, hearing nothing, campaigns at the leader, so both directions carry messages."""

    name = "cut-from-leader"

    def __init__(self) -> None:
        self.link: tuple[int, int] = (0, 0)
        self._fired = 0

    def setup(self, rng: random.Random, nodes: tuple[int, ...], base: NetworkConditions) -> None:
        pass

    def next_ms(self) -> int | None:
        return (3_000, 8_000, None)[self._fired]

    def fire(self, now_ms: int, view: ClusterView) -> list[Fault]:
        self._fired += 1
        if self._fired == 2:
            return [HealNetwork()]
        assert view.leader, "a leader within 3 s"
        self.link = (view.leader, next(n for n in view.nodes if n != view.leader))
        return [CutLinks((self.link,))]


def test_a_one_way_link_cut_drops_one_direction_only() -> None:
    nemesis = CutFromLeader()
    config = SimConfig(
        seed=1, nodes=3, duration_ms=15_000, keep_trace=True, election_timeout_ms=500
    )
    sim = Simulator(config, nemesis, KvWorkload())
    assert sim.run().ok
    src, dst = nemesis.link
    during = [r for r in sends(sim) if 3_000 <= r.time_ms < 8_000]
    assert not any(r.deliveries for r in during if (r.src, r.dst) == (src, dst))
    assert any(r.deliveries for r in during if (r.src, r.dst) == (dst, src))


def test_a_crash_stops_a_node_and_a_restart_brings_it_back_from_its_disk() -> None:
    sim = scripted([(3_000, Crash(2)), (6_000, Restart(2))])
    starts = [r for r in events(sim, NodeStarted) if r.node == 2]
    assert [r.incarnation for r in starts] == [1, 2] and starts[1].time_ms == 6_000
    assert sim.counters.crashes == 1 and sim.network.stats.to_down_node > 0


def test_a_crash_during_a_persist_loses_some_unsynced_bytes_and_tears_some_records() -> None:
    logging.getLogger("raftcluster.storage").setLevel(logging.ERROR)
    lost = torn = cuts = 0
    for seed in range(8):
        faults: list[tuple[int, Fault]] = []
        for k in range(6):  # the leader is busy writing: its syncs carry several writes
            faults += [(2_000 + 2_000 * k, Crash(1 + k % 3, during_sync=True))]
            faults += [(3_000 + 2_000 * k, Restart(1 + k % 3))]
        sim = scripted(faults, seed=seed)
        crashes = events(sim, NodeCrashed)
        cuts += sum(c.during_persist for c in crashes)
        lost += sum(c.lost_bytes for c in crashes)
        torn += sum(c.torn for c in crashes)
    assert cuts >= 20 and lost > 0 and torn > 0


def test_a_paused_node_receives_what_was_sent_to_it_when_it_resumes() -> None:
    sim = scripted([(3_000, Pause(1, 2_000)), (9_000, Pause(2, 3_000))])
    assert sim.counters.paused_deliveries > 0
    resumes = events(sim, NodeResumed)
    assert [(r.time_ms, r.node) for r in resumes] == [(5_000, 1), (12_000, 2)]


def test_clock_jumps_and_drift_move_a_node_clock() -> None:
    sim = scripted(
        [(2_000, ClockJump(1, 4_000)), (2_000, ClockDrift(2, 50_000))],
        max_drift_ppm=0,
        max_clock_skew_ms=0,
    )
    now = sim.now
    assert sim.nodes[1].clock.local(now) == now + 4_000
    assert sim.nodes[2].clock.local(now) == 2_000 + (now - 2_000) * 105 // 100
    assert sim.nodes[3].clock.local(now) == now


def test_loss_duplication_and_delays_that_reorder() -> None:
    bad = NetworkConditions(loss=0.2, duplicate=0.2, min_delay_ms=1, max_delay_ms=150)
    sim = scripted([(1_000, bad), (10_000, NetworkConditions())])
    stats = sim.network.stats
    assert stats.lost > 0 and stats.duplicated > 0
    last: dict[tuple[int, int], int] = {}
    reordered = 0
    for r in sends(sim):
        if r.deliveries:
            link = (r.src, r.dst)
            reordered += min(r.deliveries) < last.get(link, 0)
            last[link] = max(last.get(link, 0), max(r.deliveries))
    assert reordered > 0


def test_the_random_mix_fires_every_fault_kind() -> None:
    # Slow and degraded links come only from their named nemeses (tests/sim/test_nemeses.py).
    kinds = set(FAULT_KINDS) - {"slow-links", "degrade"}
    seen: set[str] = set()
    for seed in range(10):
        result = simulate(SimConfig(seed=seed, nodes=5, duration_ms=60_000), check_timeout_s=None)
        seen |= set(result.counters.faults)
        assert seen <= kinds, f"the random mix fired {seen - kinds}"
        if seen == kinds:
            return
    pytest.fail(f"10 seeds and these kinds never fired: {kinds - seen}")


def test_a_leader_is_elected_and_the_cluster_converges_after_the_faults_heal() -> None:
    sim = scripted([(2_000, Partition(((1,), (2,), (3,))))])  # no majority until healed
    assert sim.healed_at == 15_000
    assert {"leader_ms", "probe_ms", "converged_ms"} <= set(sim.heal_marks)
    leader = sim.engine.leader()
    assert leader and sim.engine.role(leader) is not None


def test_no_write_committed_soon_enough_after_healing_is_a_liveness_violation() -> None:
    config = SimConfig(  # a leader within 2 s; 1 ms to commit is under a round trip
        seed=1, nodes=3, duration_ms=2_000, heal_timeout_ms=1, election_timeout_ms=300
    )
    result = Simulator(config, ScriptedFaults([]), KvWorkload()).run()
    assert result.violation is not None and result.violation["invariant"] == "liveness"
    assert "no write committed within 1 ms" in result.violation["message"]


@pytest.mark.parametrize("seed", range(3))
def test_random_faults_schedule_is_the_same_for_a_seed(seed: int) -> None:
    a = simulate(
        SimConfig(seed=seed, nodes=3, duration_ms=10_000), RandomFaults(), check_timeout_s=None
    )
    b = simulate(
        SimConfig(seed=seed, nodes=3, duration_ms=10_000), RandomFaults(), check_timeout_s=None
    )
    assert a.counters.faults == b.counters.faults and a.trace_hash == b.trace_hash


NODES = (1, 2, 3, 4, 5)
ONLY_MEMBERSHIP = FaultMix(
    partition=0, isolate_leader=0, link_cut=0, crash=0, pause=0, clock=0, network=0,
    hard_case=0, disk=0, membership=1,
)  # fmt: skip


def fire_all(nemesis: RandomFaults, view: ClusterView, until_ms: int) -> list[tuple[int, Fault]]:
    """Every fault `nemesis` injects until `until_ms`, with its time (the view fixed)."""
    out: list[tuple[int, Fault]] = []
    while (due := nemesis.next_ms()) is not None and due <= until_ms:
        out.extend((due, fault) for fault in nemesis.fire(due, view))
    return out


def test_the_random_mix_changes_the_membership_and_schedules_the_way_back() -> None:
    nemesis = RandomFaults(ONLY_MEMBERSHIP)
    nemesis.setup(random.Random(7), NODES, NetworkConditions())
    view = ClusterView(NODES, NODES, (), leader=1, voters=NODES)
    start = nemesis.next_ms()
    assert start is not None
    now = nemesis.fire(start, view)
    assert len(now) == 1 and isinstance(now[0], ChangeMembership) and now[0].op == "remove"
    removed = now[0].node
    # The way back: added again as a learner when the fault ends, promoted after that.
    back = [
        (t, f) for t, f in fire_all(nemesis, view, start + 60_000)
        if isinstance(f, ChangeMembership) and f.node == removed and f.op != "remove"
    ]  # fmt: skip
    assert [f.op for _, f in back][:2] == ["add-learner", "promote"]
    assert start < back[0][0] < back[1][0]
    assert nemesis.coverage["random.membership"] >= 1


def test_a_node_still_out_is_brought_back_first() -> None:
    nemesis = RandomFaults(ONLY_MEMBERSHIP)
    nemesis.setup(random.Random(3), NODES, NetworkConditions())
    view = ClusterView(NODES, NODES, (), leader=1, voters=(1, 2, 3, 5), learners=(4,))
    start = nemesis.next_ms()
    assert start is not None
    assert nemesis.fire(start, view) == [ChangeMembership("promote", 4)]


def test_an_engine_without_membership_steps_draws_the_mix_as_without_that_kind() -> None:
    # pysyncobj's adapter takes no membership steps: its random runs must stay as they were.
    def schedule(mix: FaultMix, changes: bool) -> list[tuple[int, Fault]]:
        nemesis = RandomFaults(mix)
        nemesis.setup(random.Random(11), NODES, NetworkConditions())
        view = ClusterView(NODES, NODES, (), leader=2, voters=NODES, membership_changes=changes)
        return fire_all(nemesis, view, 120_000)

    refused = schedule(FaultMix(), changes=False)
    assert refused == schedule(FaultMix(membership=0), changes=True)
    assert not any(isinstance(f, ChangeMembership) for _, f in refused)
    assert any(isinstance(f, ChangeMembership) for _, f in schedule(FaultMix(), changes=True))
