"""Every named nemesis fires (its coverage counters) and has an effect the simulator can
see (messages cut, lost, duplicated, reordered or slowed; nodes crashed or paused; clocks
moved; the membership changed), and the cluster survives it on a few short seeds."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from chaos.sim import (
    ClusterView,
    Counters,
    Fault,
    NetworkConditions,
    ScriptedFaults,
    SimConfig,
    SimResult,
    simulate,
)
from chaos.sim.catalog import NEMESES, make_nemesis, make_workload
from chaos.sim.clock import MAX_DRIFT_PPM
from chaos.sim.faults import CutLinks
from chaos.sim.network import Network

SEEDS = (1, 2)


def run(name: str, seed: int) -> SimResult:
    config = SimConfig(seed=seed, nodes=3 + seed % 3, duration_ms=12_000)
    result = simulate(config, make_nemesis(name), check_timeout_s=10)
    assert result.ok, (name, seed, result.violation, result.error, result.checks)
    assert set(result.checks.values()) == {"ok"}, result.checks
    return result


def baseline(seed: int) -> Counters:
    config = SimConfig(seed=seed, nodes=3 + seed % 3, duration_ms=12_000)
    return simulate(config, ScriptedFaults([]), check_timeout_s=None).counters


EFFECTS: dict[str, Callable[[Counters, int], bool]] = {
    "random": lambda c, s: sum(c.faults.values()) > 0,
    "halves": lambda c, s: c.network["cut"] > 0,
    "isolate-leader": lambda c, s: c.network["cut"] > 0,
    "majorities-ring": lambda c, s: c.network["cut"] > 0,
    "bridge": lambda c, s: c.network["cut"] > 0,
    "kill": lambda c, s: c.crashes > 0,
    "pause": lambda c, s: c.paused_deliveries > 0,
    "clock-skew": lambda c, s: c.clocks["jumped_ms"] > 0 and c.clocks["drift_changes"] > 0,
    "clock-strobe": lambda c, s: (
        c.clocks["drift_changes"] > 2 and c.clocks["max_drift_ppm"] == MAX_DRIFT_PPM
    ),
    "loss": lambda c, s: c.network["lost"] > 0,
    "duplicate": lambda c, s: c.network["duplicated"] > 0,
    "reorder": lambda c, s: c.network["reordered"] > baseline(s).network["reordered"],
    "slow-links": lambda c, s: c.network["slowed"] > 0,
    "membership": lambda c, s: c.membership_changes > 0 and c.membership["changed"] > 0,
    # The hard cases (chaos/sim/nemeses/hard_cases.py).
    "figure8": lambda c, s: c.crashes >= 2 and c.network["cut"] > 0,
    "deposed-reads": lambda c, s: c.faults.get("pause", 0) > 0 and c.network["cut"] > 0,
    "vote-crash": lambda c, s: c.crashes > 0 and c.network["cut"] > 0,
    "stale-log-snapshot": lambda c, s: c.network["cut"] > 0,
    "split-vote": lambda c, s: (
        c.crashes > 0 and c.network["cut"] > 0 and c.network["duplicated"] > 0
    ),
    "late-answers": lambda c, s: c.network["slowed"] > 0 and c.network["cut"] > 0,
    # Disks (chaos/sim/nemeses/disks.py): faults armed or damage done, and nodes stopped.
    "disk": lambda c, s: (
        c.disk["write_failures_armed"]
        + c.disk["sync_failures_armed"]
        + c.disk["bits_flipped"]
        + c.disk["sectors_zeroed"]
        > 0
        and c.crashes + c.disk.get("storage_failures", 0) > 0
    ),
    "lose-disk": lambda c, s: c.disk["wipes"] > 0 and c.crashes > 0,
    "replace-disk": lambda c, s: c.disk["wipes"] > 0 and c.membership["changed"] > 0,
}


def test_every_nemesis_has_an_effect_check() -> None:
    assert set(EFFECTS) == set(NEMESES)


@pytest.mark.parametrize("name", sorted(NEMESES))
def test_each_nemesis_fires_and_has_an_effect(name: str) -> None:
    for seed in SEEDS:
        counters = run(name, seed).counters
        fired = {k: v for k, v in counters.nemesis.items() if k.startswith(f"{name}.")}
        assert fired and all(v > 0 for v in fired.values()), counters.nemesis
        assert EFFECTS[name](counters, seed), (name, seed, counters)


def test_combined_nemeses_all_fire_each_from_its_own_generator() -> None:
    result = run("halves,kill,membership", seed=3)
    prefixes = {k.split(".")[0] for k in result.counters.nemesis}
    assert prefixes == {"halves", "kill", "membership"}
    assert result.nemesis == "halves,kill,membership"
    again = simulate(
        SimConfig(seed=3, nodes=3, duration_ms=12_000),
        make_nemesis("halves,kill,membership"),
        check_timeout_s=None,
    )
    assert again.trace_hash == result.trace_hash
    assert again.counters.nemesis == result.counters.nemesis


def test_a_membership_change_removes_a_node_and_healing_brings_it_back() -> None:
    result = run("membership", seed=4)
    m = result.counters.nemesis
    assert m.get("membership.remove", 0) > 0
    # Healing made every node a voter again before the replicas were judged converged.
    assert result.checks["converged"] == "ok"


def first_episode(name: str, nodes: tuple[int, ...], seed: int) -> list[Fault]:
    nemesis = make_nemesis(name)
    nemesis.setup(random.Random(seed), nodes, NetworkConditions())
    due = nemesis.next_ms()
    assert due is not None
    view = ClusterView(nodes, nodes, (), leader=nodes[0], voters=nodes)
    return list(nemesis.fire(due, view))


@pytest.mark.parametrize("n", [3, 4, 5, 7])
@pytest.mark.parametrize("seed", range(3))
def test_in_a_majorities_ring_every_node_hears_a_different_majority(n: int, seed: int) -> None:
    nodes = tuple(range(1, n + 1))
    faults = first_episode("majorities-ring", nodes, seed)
    cuts = {link for f in faults if isinstance(f, CutLinks) for link in f.links}
    hears = {dst: frozenset(src for src in nodes if (src, dst) not in cuts) for dst in nodes}
    assert all(len(h) == n // 2 + 1 and dst in h for dst, h in hears.items())
    assert len(set(hears.values())) == n


@pytest.mark.parametrize("n", [3, 5, 6])
def test_a_bridge_node_talks_to_both_halves_that_cannot_talk(n: int) -> None:
    nodes = tuple(range(1, n + 1))
    faults = first_episode("bridge", nodes, seed=n)
    cuts = {link for f in faults if isinstance(f, CutLinks) for link in f.links}
    bridges = [b for b in nodes if not any(b in link for link in cuts)]
    assert len(bridges) == 1
    rest = [x for x in nodes if x != bridges[0]]
    assert all(((a, b) in cuts) == ((b, a) in cuts) for a in rest for b in rest if a != b)
    assert cuts and len(cuts) == 2 * ((n - 1) // 2) * (n - 1 - (n - 1) // 2)


@pytest.mark.soak
# (`lose-disk` never replaces the member it empties: a cluster with such members may stop
# electing, which the liveness checks report; `replace-disk` brings them back.)
@pytest.mark.parametrize("name", sorted(set(NEMESES) - {"random", "lose-disk"}))
@pytest.mark.parametrize("workload", ["kv", "register", "append"])
def test_soak_each_nemesis_with_each_workload(name: str, workload: str) -> None:
    for seed in range(20):
        config = SimConfig(seed=seed, nodes=3 + seed % 3, duration_ms=60_000)
        result = simulate(config, make_nemesis(name), make_workload(workload), check_timeout_s=30)
        assert result.ok, (name, workload, seed, result.violation, result.error, result.checks)


def test_degrading_sources_add_up_and_withdraw_alone() -> None:
    network = Network(random.Random(0), NetworkConditions(0.1, 0.0, 1, 10))
    network.degraded["loss"] = NetworkConditions(loss=0.5)
    network.degraded["reorder"] = NetworkConditions(max_delay_ms=300)
    c = network.effective()
    assert c.loss == pytest.approx(1 - 0.9 * 0.5) and c.max_delay_ms == 300
    assert c.min_delay_ms == 1 and c.duplicate == 0
    del network.degraded["loss"]
    c = network.effective()
    assert c.loss == pytest.approx(0.1) and (c.min_delay_ms, c.max_delay_ms) == (1, 300)
    network.degraded.clear()
    assert network.effective() is network.conditions


def test_combined_network_nemeses_act_together() -> None:
    counters = run("loss,duplicate,reorder", seed=5).counters
    assert counters.network["lost"] > 0 and counters.network["duplicated"] > 0
    assert {k.split(".")[0] for k in counters.nemesis} == {"loss", "duplicate", "reorder"}
