"""From what a live run saw to its verdicts and report record (synchronous: it runs
after the cluster is stopped, so the checker has the machine to itself).

Three checks, each `ok`, `violation` or `unknown`, and the stats check
(`chaos.checker.stats`: each kind of operation succeeded under the faults and after the
last fault healed, or the run is `vacuous`: it proved nothing):
- linearizability of the clients' history (the workload's model; `unknown` when the
  time budget ran out);
- liveness: after healing, a fresh client's write committed within the heal timeout;
- convergence: after healing, every node applied all it committed, at one index, and
  holds the same data under the workload's keys.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from chaos.checker import CheckResult, check, history_from_events, make_model
from chaos.checker.stats import OperationStats, operation_stats
from chaos.live.run import Observations
from chaos.live.workload import MODELS
from chaos.report import (
    CheckerRun,
    Engine,
    Mode,
    Record,
    RunInfo,
    RunVerdict,
    Violation,
)


@attrs.frozen
class Judgement:
    record: Record
    result: CheckResult

    @property
    def verdict(self) -> RunVerdict:
        return self.record.run.verdict


def judge(observed: Observations, replay: str, wall: dict[str, Any] | None = None) -> Judgement:
    """Run the checkers on `observed`; the record of the run (`replay` is its command)."""
    config = observed.config
    name, options = MODELS[config.workload]
    history = history_from_events(observed.events, source="live run")
    result = check(
        history, make_model(name, options), timeout_s=config.check_timeout_s,
        core_timeout_s=min(5.0, config.check_timeout_s),
    )  # fmt: skip
    checkers = [CheckerRun.linearizability(result)]
    violations: list[Violation] = []
    if result.witness is not None:
        violations.append(Violation.linearizability(result, observed.operations))
    for checker, violation in (_liveness(observed), _convergence(observed)):
        checkers.append(checker)
        if violation is not None:
            violations.append(violation)
    stats = live_stats(observed)
    checkers.append(
        CheckerRun(
            "stats", RunVerdict.OK if stats.ok else RunVerdict.VACUOUS, reason="; ".join(stats.gaps)
        )
    )
    verdicts = {c.verdict for c in checkers}
    verdict = (
        RunVerdict.VIOLATION if violations
        else RunVerdict.UNKNOWN if RunVerdict.UNKNOWN in verdicts
        else RunVerdict.VACUOUS if not stats.ok
        else RunVerdict.OK
    )  # fmt: skip
    run = RunInfo(
        seed=config.seed, engine=Engine.RAFTCLUSTER, mode=Mode.LIVE,
        nodes=observed.nodes,
        duration_ms=observed.end_ms, nemeses=config.nemeses, workload=config.workload,
        replay=replay, verdict=verdict, counts=observed.counts,
        wall={**(wall or {}), "checker_s": round(result.elapsed_s, 6)},
    )  # fmt: skip
    notes = (
        *observed.notes,
        "live mode: times are real; the seed fixes the choices of faults and operations, "
        "not the interleavings, so the replay command runs a similar run, not this one",
        "node roles come from polls every 200 ms: a shorter role may not show",
    )
    record = Record(
        run, observed.intervals, observed.faults, observed.operations,
        tuple(violations), tuple(checkers), notes=notes,
        trace_hash=hashlib.sha256("".join(observed.trace).encode()).hexdigest(),
    )  # fmt: skip
    return Judgement(record, result)


def live_stats(observed: Observations) -> OperationStats:
    """The history's stats around the last fault's heal (None: no fault, so the whole run
    must show every kind of operation succeeding)."""
    ends = [f.end_ms for f in observed.faults if f.end_ms is not None]
    if len(ends) < len(observed.faults):  # a fault lasted to the end: healed with the run
        ends.append(observed.healed_ms)
    return operation_stats(observed.events, max(ends) if ends else None)


def _liveness(observed: Observations) -> tuple[CheckerRun, Violation | None]:
    if observed.write_after_heal_ms is not None:
        return CheckerRun("liveness", RunVerdict.OK), None
    bound = observed.config.heal_timeout_ms
    message = f"no write committed within {bound} ms of healing every fault"
    return CheckerRun("liveness", RunVerdict.VIOLATION), Violation(
        "liveness", message, time_ms=observed.healed_ms
    )


def _convergence(observed: Observations) -> tuple[CheckerRun, Violation | None]:
    bound = observed.config.heal_timeout_ms
    if observed.divergence:
        message = f"replicas at one applied index hold different data: {observed.divergence}"
    elif observed.converged_after_heal_ms is None:
        message = f"replicas did not reach one applied index within {bound} ms of healing"
    else:
        return CheckerRun("convergence", RunVerdict.OK), None
    return CheckerRun("convergence", RunVerdict.VIOLATION), Violation(
        "convergence", message[:60_000], time_ms=observed.healed_ms
    )
