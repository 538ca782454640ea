"""The simulator's linearizability check runs on an effort budget, not on time, so a
seed's verdict does not depend on how fast or loaded the machine is."""

from __future__ import annotations

import itertools

import pytest

from chaos.checker import verdict as checker_verdict
from chaos.sim import SimConfig, simulate
from chaos.sim.catalog import make_nemesis, make_workload

# A register history of about 950 operations: enough search to read the clock often.
CONFIG = SimConfig(seed=3, nodes=5, duration_ms=20_000)


def verdict(check_timeout_s: float) -> str:
    result = simulate(
        CONFIG, make_nemesis("halves"), make_workload("register"), check_timeout_s=check_timeout_s
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
    # About 50 configurations: too few for this history, whatever the machine.
    assert verdict(0.0001) == verdict(0.0001) == "unknown"
