"""Planted bugs in our own engine (chaos/sim/planted.py) are found within a bounded number
of short seeds, by the checker that should find them, while the real engine passes the
same seeds: each checker is shown able to fail."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs

from chaos.sim import SimConfig, SimResult, simulate
from chaos.sim.catalog import make_nemesis, make_workload
from chaos.sim.planted import PLANTS

MAX_SEEDS = 30


def campaign(plant: str, nemesis: str, workload: str) -> tuple[int, SimResult]:
    """The first seed whose run with `plant` fails; the real engine must pass each seed
    up to it (with the same settings: the plant's own included)."""
    for seed in range(MAX_SEEDS):
        config = attrs.evolve(
            SimConfig(seed=seed, nodes=3, duration_ms=20_000), **PLANTS[plant].config
        )
        planted = simulate(config, make_nemesis(nemesis), make_workload(workload), plant=plant)
        assert planted.error is None, planted.error
        real = simulate(config, make_nemesis(nemesis), make_workload(workload))
        assert real.ok, (seed, real.violation, real.checks)
        if not planted.ok:
            return seed, planted
    raise AssertionError(f"{MAX_SEEDS} seeds with {plant} planted and no check failed")


def test_reads_without_a_quorum_round_are_found_stale() -> None:
    """Found at once by read freshness (a read answered below an index committed before
    it arrived), which runs before the history is judged; else by linearizability. The
    log is fine: only reads lie. (The linearizability checker's own power over stale
    reads is held to histories with known verdicts: tests/test_checker_*.py.)"""
    seed, result = campaign("deposed-read", "deposed-reads", "register")
    assert result.plant == "deposed-read"
    if result.violation is not None:
        assert result.violation["invariant"] == "read freshness", result.violation
        assert "answered a linearizable read" in result.violation["message"]
    else:
        assert result.checks["linearizable"] == "failed"
        assert result.checks["invariants"] == "ok"


def test_a_lying_fsync_loses_acknowledged_writes_or_breaks_an_invariant() -> None:
    seed, result = campaign("lying-fsync", "kill", "kv")
    assert result.checks["invariants"] == "failed"
    assert result.violation is not None
    # The durability oracle sees the synced state vanish at the first restart, most often
    # before Raft's own checks see what it costs.
    assert result.violation["invariant"] in (
        "durability", "acknowledged writes", "leader completeness", "log matching",
        "state machine safety", "election safety",
    )  # fmt: skip


def test_the_command_line_offers_the_plants() -> None:
    args = ["--seed", "0", "--nodes", "3", "--duration", "20", "--nemesis", "isolate-leader"]
    args += ["--workload", "register", "--plant", "deposed-read", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "raftcluster", "chaos", "run", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    data = json.loads(done.stdout)
    assert data["plant"] == "deposed-read"
    assert "--plant deposed-read" in data["replay"]
    assert done.returncode == (0 if data["verdict"] == "ok" else 1)
    assert set(data["checks"]) == {"invariants", "exactly_once", "live", "converged",
                                   "linearizable", "stats"}  # fmt: skip
