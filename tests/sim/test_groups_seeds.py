"""The cluster service under the simulator: seeds of the `groups` workload, every check.

The default suite runs a few seeds under the random nemesis (about 3 s each on a busy
2-core machine); `make soak` runs the issue's matrix: 50 seeds of 120 virtual seconds on
5 nodes under each of the random, partition, kill, pause and clock nemeses. A failure
names the seed and the command that replays it.
"""

from __future__ import annotations

import pytest

from chaos.sim import SimConfig, SimResult, simulate
from chaos.sim.catalog import make_nemesis, make_workload

NEMESES = (
    "random", "halves", "majorities-ring", "bridge", "isolate-leader", "kill", "pause",
    "clock-skew", "clock-strobe",
)  # fmt: skip


def run_seed(seed: int, nemesis: str, duration_ms: int) -> SimResult:
    config = SimConfig(seed=seed, nodes=5, duration_ms=duration_ms)
    result = simulate(config, nemesis=make_nemesis(nemesis), workload=make_workload("groups"))
    replay = (
        f"raftcluster chaos run --workload groups --seed {seed} --nodes 5 "
        f"--duration {duration_ms / 1000:g} --nemesis {nemesis}"
    )
    assert result.ok, f"{result.verdict}: {result.violation or result.error}\nreplay: {replay}"
    return result


@pytest.mark.parametrize("seed", range(1, 5))
def test_the_cluster_service_keeps_its_promises_under_random_faults(seed: int) -> None:
    result = run_seed(seed, "random", 60_000)
    groups = result.counters.groups
    assert groups["starts"] > 0 and groups["acks"] > 0 and groups["events_delivered"] > 0


@pytest.mark.soak
@pytest.mark.parametrize("nemesis", NEMESES)
@pytest.mark.parametrize("seed", range(1, 51))
def test_soak_the_cluster_service_under_each_nemesis(seed: int, nemesis: str) -> None:
    run_seed(seed, nemesis, 120_000)
