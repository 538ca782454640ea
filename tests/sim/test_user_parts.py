"""A user's parts, workload and model in the simulator, named as a user names them.

The bank (`examples/bank/`) runs under faults with its invariants checked on every
replica after each apply; the planted bug (`examples.bank.buggy:BANK`) is found and
reported with its seed; bad import paths fail before the run starts.
"""

from __future__ import annotations

import pytest

from chaos.checker import Event, ModelError, make_model
from chaos.checker.stats import VACUOUS, KindStats, operation_stats
from chaos.sim import KvWorkload, ScriptedFaults, SimConfig, Simulator, simulate
from chaos.sim.faults import Crash
from chaos.sim.part_invariants import INVARIANT
from examples.bank import BANK, BankModel, BankWorkload
from raftcluster.loading import PartLoadError

BANK_RUN = {"nodes": 3, "duration_ms": 6_000}


def test_the_bank_runs_under_faults_with_its_invariants_checked_after_every_apply() -> None:
    result = simulate(
        SimConfig(seed=1, parts=("examples.bank:BANK",), **BANK_RUN),
        workload="examples.bank:BankWorkload",
    )
    assert result.verdict == "ok", result.violation
    assert result.counters.part_invariant_checks >= result.counters.committed_entries > 0
    assert result.linearizability is not None and result.linearizability.verdict.value == "ok"
    assert {e.f for e in result.history} == {"open", "transfer", "read"}


def test_a_planted_bug_in_the_bank_is_a_violation_reported_with_its_seed() -> None:
    result = simulate(
        SimConfig(seed=1, parts=("examples.bank.buggy:BANK",), **BANK_RUN),
        workload="examples.bank:BankWorkload",
    )
    assert result.verdict == "violation"
    violation = result.violation
    assert violation is not None and violation["invariant"] == INVARIANT
    assert "the balances sum to" in violation["message"]
    assert result.to_json()["seed"] == 1


def test_objects_and_import_paths_name_the_same_run() -> None:
    by_path = simulate(
        SimConfig(seed=3, **BANK_RUN),
        workload="examples.bank:BankWorkload",
        parts=("examples.bank:BANK",),
        model="examples.bank:BankModel",
    )
    by_object = simulate(
        SimConfig(seed=3, parts=(BANK,), **BANK_RUN), workload=BankWorkload(), model=BankModel()
    )
    assert by_path.trace_hash == by_object.trace_hash
    assert by_path.linearizability is not None and by_object.linearizability is not None
    assert by_path.linearizability.verdict == by_object.linearizability.verdict


def test_simulator_run_checks_the_history_as_simulate_does() -> None:
    config = SimConfig(seed=5, nodes=3, duration_ms=2_000)
    result = Simulator(config, ScriptedFaults([]), KvWorkload()).run()
    assert result.linearizability is not None
    assert result.linearizability.operations > 0
    unchecked = Simulator(config, ScriptedFaults([]), KvWorkload(), check_timeout_s=None).run()
    assert unchecked.linearizability is None


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"parts": ("examples.bank:NOPE",)}, "has no attribute 'NOPE'"),
        ({"parts": ("no_such_module_xyz:BANK",)}, "no module named"),
        ({"parts": ("examples.bank:BankModel",)}, "expected a PartSpec"),
        ({"workload": "examples.bank:BANK"}, "expected a Workload class"),
        ({"workload": "examples.bank.part:Bank"}, "which lacks"),
    ],
)
def test_a_bad_path_fails_before_the_run_naming_the_path(kwargs: dict, says: str) -> None:
    with pytest.raises(PartLoadError, match=says) as caught:
        simulate(SimConfig(seed=1, **BANK_RUN), **kwargs)
    assert ":" in caught.value.path


def test_a_model_is_named_by_import_path_and_a_bad_one_says_which() -> None:
    assert isinstance(make_model("examples.bank:BankModel"), BankModel)
    with pytest.raises(ModelError, match="examples.bank:Nope"):
        make_model("examples.bank:Nope")
    with pytest.raises(ModelError, match="unknown option"):
        make_model("examples.bank:BankModel", {"initial": 1})


# -- the stats check ---------------------------------------------------------------------


def test_a_run_with_a_majority_crashed_throughout_is_vacuous_and_says_why() -> None:
    config = SimConfig(seed=2, nodes=3, duration_ms=5_000)
    majority_down = ScriptedFaults([(0, Crash(1)), (0, Crash(2))])
    result = simulate(config, majority_down, KvWorkload())
    assert result.violation is None and result.error is None
    assert result.verdict == VACUOUS
    assert result.stats is not None
    assert "no put succeeded while the faults were on" in result.stats.gaps
    assert result.checks["stats"] == "failed"
    assert result.to_json()["stats"]["verdict"] == VACUOUS
    healthy = simulate(config, ScriptedFaults([]), KvWorkload())
    assert healthy.verdict == "ok" and healthy.stats is not None and healthy.stats.gaps == ()
    after = healthy.stats.kinds
    assert after["put"].ok_after_heal > 0 and after["get"].ok_after_heal > 0


def test_the_stats_count_each_kind_around_the_heal() -> None:
    events = [
        Event(0, "invoke", "put", 1, "k", time=10),
        Event(0, "ok", "put", 1, "k", time=20),
        Event(1, "invoke", "get", None, "k", time=30),
        Event(1, "fail", "get", None, "k", time=40),
        Event(1, "invoke", "get", None, "k", time=90),  # before the heal, done after it
        Event(1, "ok", "get", 1, "k", time=110),
        Event(0, "invoke", "put", 2, "k", time=120),
        Event(0, "ok", "put", 2, "k", time=130),
    ]
    stats = operation_stats(events, healed_ms=100)
    assert stats.kinds["put"] == KindStats(2, 1, 1)
    assert stats.kinds["get"] == KindStats(2, 0, 0)
    assert stats.gaps == (
        "no get succeeded while the faults were on",
        "no get succeeded after the last heal",
    )
    assert operation_stats(events, 100, required=("put",)).ok
    assert operation_stats(events, 100, required=()).ok
