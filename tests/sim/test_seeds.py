"""Randomised simulator runs: real node and client cores, mixed faults, every invariant.

The default suite runs 200 seeds of 60 virtual seconds on 3, 4 and 5 nodes (about
0.5 s each); `make soak` runs thousands more. A failure names the seed and the command
that replays it.
"""

from __future__ import annotations

import pytest

from chaos.sim import SimConfig, SimResult, simulate

SEEDS = 200
SOAK_SEEDS = 3_000


def run_seed(seed: int, nodes: int, duration_ms: int = 60_000) -> SimResult:
    result = simulate(SimConfig(seed=seed, nodes=nodes, duration_ms=duration_ms))
    replay = (
        f"raftcluster chaos run --seed {seed} --nodes {nodes} --duration {duration_ms / 1000:g}"
    )
    assert result.ok, f"{result.verdict}: {result.violation or result.error}\nreplay: {replay}"
    return result


@pytest.mark.parametrize("seed", range(SEEDS))
def test_every_invariant_holds_under_random_faults(seed: int) -> None:
    result = run_seed(seed, nodes=3 + seed % 3)
    counts = result.counters
    assert counts.elections >= 1 and counts.proposals_committed > 0
    assert counts.operations.get("ok", 0) > 0
    assert result.linearizability is not None and result.linearizability.verdict.value == "ok"


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(SEEDS, SEEDS + SOAK_SEEDS))
def test_soak_every_invariant_holds_under_random_faults(seed: int) -> None:
    run_seed(seed, nodes=3 + seed % 3, duration_ms=120_000 if seed % 10 == 0 else 60_000)
