"""The simulator's linearizability check runs on an effort budget, not on time, so a
seed's verdict does not depend on how fast or loaded the machine is."""

from __future__ import annotations

import itertools

import pytest

from chaos.checker import verdict as checker_verdict
from chaos.sim import SimConfig, simulate
from chaos.sim.catalog import make_nemesis, make_workload

# Register histories of several hundred operations: enough search to read the clock often.
SEEDS = range(3, 13)


def verdict(check_timeout_s: float, seed: int = 3) -> str:
    config = SimConfig(seed=seed, nodes=5, duration_ms=20_000)
    result = simulate(
        config, make_nemesis("halves"), make_workload("register"), check_timeout_s=check_timeout_s
    )
    assert result.linearizability is not None
    return result.linearizability.verdict.value


def test_a_slow_machine_gets_the_same_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = verdict(30)
    # A machine on which every reading of the clock shows another minute gone: the
    # checker's default (wall) clock made so, for any check that would use it.
    minutes = itertools.count()
    monkeypatch.setitem(checker_verdict.check.__kwdefaults__, "clock", lambda: 60.0 * next(minutes))
    assert verdict(30) == fast == "ok"


def test_a_tiny_budget_is_unknown_the_same_way_each_time() -> None:
    # About 50 configurations: too few for some of these histories, whatever the machine
    # (the checker decides many with less: its exact reductions leave little to search).
    hard = next((s for s in SEEDS if verdict(0.0001, s) == "unknown"), None)
    assert hard is not None, f"every history of seeds {SEEDS} was decided within the tiny budget"
    assert verdict(0.0001, hard) == "unknown"
    assert verdict(30, hard) == "ok"
