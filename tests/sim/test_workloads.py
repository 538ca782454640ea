"""The register and append workloads: real client cores with sessions, histories in the
corpus format with virtual times, judged by the right model (and able to fail)."""

from __future__ import annotations

import attrs
import pytest

from chaos.checker import Event
from chaos.sim import SimConfig, SimResult, simulate
from chaos.sim.append_workload import AppendWorkload
from chaos.sim.catalog import make_nemesis
from chaos.sim.register_workload import RegisterWorkload


def run(workload: RegisterWorkload | AppendWorkload, seed: int) -> SimResult:
    config = SimConfig(seed=seed, nodes=3 + seed % 3, duration_ms=15_000)
    result = simulate(config, make_nemesis("random"), workload, check_timeout_s=20)
    assert result.ok, (result.violation, result.error, result.checks)
    assert result.linearizability is not None
    assert result.linearizability.verdict.value == "ok"
    return result


def kinds(history: tuple[Event, ...]) -> set[tuple[str, str]]:
    return {(e.f, e.type) for e in history}


@pytest.mark.parametrize("seed", range(3))
def test_register_reads_writes_and_cas_are_linearizable(seed: int) -> None:
    workload = RegisterWorkload()
    history = run(workload, seed).history
    seen = kinds(history)
    assert {("read", "ok"), ("write", "ok"), ("cas", "ok"), ("cas", "fail")} <= seen
    assert all(e.time is not None for e in history)
    assert workload.check(5).model == "register"  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(3))
def test_get_put_append_are_linearizable(seed: int) -> None:
    workload = AppendWorkload()
    history = run(workload, seed).history
    assert {("get", "ok"), ("put", "ok"), ("append", "ok")} <= kinds(history)
    appended = [e for e in history if e.f == "get" and e.type == "ok" and ";" in e.value]
    assert any(e.value.count(";") > 1 for e in appended)  # appends accumulate
    assert workload.check(5).model == "kv"  # type: ignore[union-attr]


def test_a_stale_read_in_the_history_is_found() -> None:
    """The check judges what the clients saw: rewrite one read to an older value."""
    workload = RegisterWorkload()
    history = run(workload, 0).history
    reads = [
        i for i, e in enumerate(history)
        if e.f == "read" and e.type == "ok" and e.value is not None and i > len(history) // 2
    ]  # fmt: skip
    writes = [e.value for e in history if e.f == "write" and e.type == "ok"]
    target = reads[-1]
    stale = writes[0] if writes[0] != history[target].value else writes[1]
    workload._events[target] = attrs.evolve(history[target], value=stale)
    result = workload.check(10)
    assert result is not None and result.verdict.value == "illegal"
