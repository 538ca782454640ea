"""From what a groups run saw (`GroupsObservations`) to its verdicts and report record
(pure; it runs after every process of the run is gone).

Three checks, each `ok` or `violation`:
- `double-runs`: no probe ever found its group's lock held (chaos.live.groups.judge);
- `epochs`: no group started under a lower epoch than its previous start;
- `groups-back`: after healing, every group answered on its port from the node the
  state says owns it ONLINE, under that epoch, within the heal timeout.

Besides: the failover times seen (from the log: fault or stop to the next start on
another node), and the runs of every group, in the notes.
"""

from __future__ import annotations

import hashlib
import statistics
from typing import Any

import attrs

from chaos.live.groups.judge import Failover, Finding, LogVerdict, failovers, judge_log
from chaos.live.groups.run import GroupsObservations
from chaos.report import CheckerRun, Engine, Mode, Record, RunInfo, RunVerdict, Violation

CHECKS = ("double-runs", "epochs", "groups-back")
_KIND = {"double-run": "double-runs", "epoch-back": "epochs", "not-back": "groups-back"}
MAX_NOTED_RUNS = 200  # the report's notes list at most this many runs


@attrs.frozen
class GroupsJudgement:
    record: Record
    log: LogVerdict
    failovers: tuple[Failover, ...]

    @property
    def verdict(self) -> RunVerdict:
        return self.record.run.verdict


def judge_groups(
    observed: GroupsObservations, replay: str, wall: dict[str, Any] | None = None
) -> GroupsJudgement:
    log = judge_log(observed.records)
    findings: tuple[Finding, ...] = (*log.findings, *observed.not_back)
    hits = [
        (observed.mono0_ns + round(f.start_ms * 1e6), f.nodes)
        for f in observed.faults if f.kind in ("kill", "pause", "partition")
    ]  # fmt: skip
    seen = failovers(log, hits)
    checkers = tuple(
        CheckerRun(name, RunVerdict.VIOLATION if any(_KIND[f.kind] == name for f in findings)
                   else RunVerdict.OK)
        for name in CHECKS
    )  # fmt: skip
    violations = tuple(
        Violation(f.kind, f.message, _at(observed, f.mono_ns), f.nodes) for f in findings
    )
    verdict = RunVerdict.VIOLATION if violations else RunVerdict.OK
    counts = {
        **observed.counts,
        "groups.starts": sum(1 for r in observed.records if r.kind == "start"),
        "groups.double_runs": log.double_runs,
        "groups.failovers": len(seen),
        "groups.leftover_processes": len(observed.leftovers),
    }
    config = observed.config
    run = RunInfo(
        seed=config.seed, engine=Engine.RAFTCLUSTER, mode=Mode.LIVE, nodes=observed.nodes,
        duration_ms=observed.end_ms, nemeses=config.nemeses, workload=config.workload,
        replay=replay, verdict=verdict, counts=counts, wall=dict(wall or {}),
    )  # fmt: skip
    notes = (
        *observed.notes,
        f"every group answered {observed.online_after_ms:.0f} ms after it was declared; "
        "time 0 is then",
        f"failovers seen (ms): {failover_summary(seen)}",
        *(
            f"run: {r.instance} from {_ms(observed, r.start_ns)} ms to "
            f"{'-' if r.end_ns is None else _ms(observed, r.end_ns)} ms ({r.ended})"
            for r in log.runs[:MAX_NOTED_RUNS]
        ),
        "live mode: times are real; the seed fixes the faults, not the interleavings",
    )
    trace_hash = hashlib.sha256("".join(observed.trace).encode()).hexdigest()
    record = Record(
        run, observed.intervals, observed.faults, (), violations, checkers, notes=notes,
        trace_hash=trace_hash,
    )  # fmt: skip
    return GroupsJudgement(record, log, seen)


def failover_summary(seen: tuple[Failover, ...]) -> str:
    """ "n=4 p50 1520 max 2210 (from the fault: 3, from a stop: 1)", or "none"."""
    if not seen:
        return "none"
    times = sorted(f.ms for f in seen)
    faults = sum(1 for f in seen if f.since == "fault")
    return (
        f"n={len(times)} p50 {statistics.median(times):.0f} max {times[-1]:.0f} "
        f"(from the fault: {faults}, from a stop: {len(times) - faults})"
    )


def _at(observed: GroupsObservations, mono_ns: int | None) -> float | None:
    """A violation's time: never before time 0 (the report's timeline starts there)."""
    at = _ms(observed, mono_ns)
    return None if at is None else max(0.0, at)


def _ms(observed: GroupsObservations, mono_ns: int | None) -> float | None:
    if mono_ns is None:
        return None
    return round((mono_ns - observed.mono0_ns) / 1e6, 3)
