"""A member whose data directory is lost, brought back through `member replace` under
load (`replace-disk`): Raft's safety properties hold over a campaign; and the old way (the
wiped node bootstraps again from the cluster file, `wiped-rebootstraps` planted) is found
by them."""

from __future__ import annotations

import pytest

from chaos.sim import SimConfig, SimResult, simulate
from chaos.sim.catalog import make_nemesis, make_workload

MAX_SEEDS = 30


def run(seed: int, nemesis: str, plant: str | None = None) -> SimResult:
    config = SimConfig(seed=seed, nodes=3 + seed % 3, duration_ms=20_000)
    return simulate(config, make_nemesis(nemesis), make_workload("kv"), plant=plant)


@pytest.mark.parametrize("seed", range(2))
def test_members_replaced_under_load_keep_raft_safe(seed: int) -> None:
    result = run(seed, "replace-disk")
    assert result.ok, (seed, result.violation, result.error, result.checks)
    covered = result.counters.nemesis
    assert covered.get("replace-disk.wipe", 0) > 0, covered
    assert covered.get("replace-disk.replaced", 0) > 0, covered  # every step, to the end
    assert result.counters.disk["wipes"] > 0


@pytest.mark.soak  # about 25 s on a loaded machine (two runs per seed up to the first found)
def test_a_wiped_node_that_bootstraps_again_is_found_by_the_safety_checks() -> None:
    """The first seed whose planted run breaks a safety property; the real engine keeps
    every safety property on each seed up to it (partitions on top of replacements may
    still trip its availability checks, which are not the point here)."""
    for seed in range(MAX_SEEDS):
        planted = run(seed, "replace-disk,halves", plant="wiped-rebootstraps")
        assert planted.error is None, planted.error
        real = run(seed, "replace-disk,halves")
        assert real.error is None, real.error
        assert real.checks["invariants"] == "ok", (seed, real.violation)
        assert real.checks["exactly_once"] == "ok", (seed, real.violation)
        if planted.checks["invariants"] == "failed":
            assert planted.violation is not None
            assert planted.violation["invariant"] in (
                "election safety", "leader completeness", "log matching",
                "state machine safety", "acknowledged writes",
            ), planted.violation  # fmt: skip
            assert planted.plant == "wiped-rebootstraps"
            return
    raise AssertionError(f"{MAX_SEEDS} seeds with a wiped node bootstrapping and no violation")
