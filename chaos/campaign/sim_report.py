"""One simulator run as a report: a `chaos.report.Record` built from a `SimResult`.

The record is a function of the result alone (and of the replay command and wall-clock
facts the caller passes, which go in `run.wall`), so the same seed gives the same
`history.jsonl`, `trace.jsonl` and `report.html` bytes, and `summary.json` files that
differ only in `run.wall`.

What comes from where:

- the engine and its settings: `SimResult.engine` and `SimResult.settings`;
- roles, crashes and faults: the trace's typed events (`chaos.sim.events`), read by
  `chaos.campaign.sim_timeline.SimTimeline`;
- operations: the workload's history (parsed as the checker numbers it);
- violations: the run's violation (for the pysyncobj engine, the first finding of each
  kind, with how many were found), an exception that broke the run off, and the
  linearizability checker's witness;
- counters: `SimResult.to_json()["counts"]`, flattened with dots (`faults.partition`),
  whatever counters it holds.

`trace_lines(result)` gives `trace.jsonl`: one JSON object an event (`{"kind": "role",
"time_ms": 120, "node": 2, ...}`, a fault as an object with its own `kind`), bytes as hex.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from chaos.campaign.sim_timeline import SimTimeline
from chaos.checker import Status, Verdict, dump_events, parse_history, thaw
from chaos.checker.history import Operation
from chaos.report import (
    CheckerRun,
    ClientOp,
    Engine,
    Mode,
    OpType,
    Record,
    ReportPaths,
    RunInfo,
    RunVerdict,
    Violation,
    write_report,
)
from chaos.report.convert import json_line
from chaos.sim import SimResult
from chaos.sim.events import Event, plain

_OP_TYPES = {Status.OK: OpType.OK, Status.FAIL: OpType.FAIL, Status.INFO: OpType.INFO}


def history_lines(result: SimResult) -> list[str]:
    """The workload's history as the lines of a history file (the checker's format)."""
    return list(dump_events(result.history))


def trace_lines(result: SimResult) -> Iterator[str]:
    """The kept trace events, one JSON object a line (`plain(event)`, bytes as hex)."""
    for event in _events(result):
        yield json_line(plain(event))


def _events(result: SimResult) -> Sequence[Event]:
    """The kept trace: typed events (`SimResult.trace` still declares the old lists)."""
    return cast(Sequence[Event], result.trace)


def write_sim_report(
    directory: str | Path, result: SimResult, *, replay: str, wall: Mapping[str, Any]
) -> ReportPaths:
    """Write the report directory of one run (docs/report.md, "The report directory")."""
    history = history_lines(result)
    record = sim_record(result, replay=replay, wall=wall, history=history)
    return write_report(directory, record, history, trace_lines(result))


def sim_record(
    result: SimResult,
    *,
    replay: str,
    wall: Mapping[str, Any],
    history: Sequence[str] | None = None,
) -> Record:
    """The run record of `result`. `wall` holds the wall-clock facts (JSON scalars)."""
    nodes = tuple(range(1, result.config.nodes + 1))
    lines = history_lines(result) if history is None else history
    operations = tuple(_client_op(op) for op in parse_history(lines, "history").operations)
    timeline = SimTimeline(nodes, result.config.base_network)
    for event in _events(result):
        timeline.add(event)
    end_ms = max(result.end_ms, result.config.duration_ms)
    intervals, faults = timeline.finish(end_ms)
    violations = _violations(result, nodes, operations)
    checkers = [CheckerRun("invariants", _invariants_verdict(result))]
    lin = result.linearizability
    if lin is not None:
        checkers.append(CheckerRun.linearizability(lin))
    stats = result.stats
    if stats is not None:
        stats_verdict = RunVerdict.OK if stats.ok else RunVerdict.VACUOUS
        checkers.append(CheckerRun("stats", stats_verdict, reason="; ".join(stats.gaps)))
    if violations:
        verdict = RunVerdict.VIOLATION
    elif lin is not None and lin.verdict is Verdict.UNKNOWN:
        verdict = RunVerdict.UNKNOWN
    elif stats is not None and not stats.ok:
        verdict = RunVerdict.VACUOUS
    else:
        verdict = RunVerdict.OK
    run = RunInfo(
        seed=result.config.seed,
        engine=Engine(result.engine),
        mode=Mode.SIM,
        nodes=nodes,
        duration_ms=end_ms,
        nemeses=tuple(result.nemesis.split(",")),
        workload=result.workload,
        replay=replay,
        verdict=verdict,
        counts=counts(result),
        wall=dict(wall),
        settings=result.settings,
    )
    return Record(
        run,
        intervals=tuple(intervals),
        faults=tuple(faults),
        operations=operations,
        violations=tuple(violations),
        checkers=tuple(checkers),
        trace_hash=result.trace_hash,
        notes=tuple(_notes(result, timeline)),
    )


def counts(result: SimResult) -> dict[str, int]:
    """Every counter of the result, flattened: nested names joined by dots."""
    data = result.to_json()
    flat: dict[str, int] = {}
    _flatten("", data["counts"], flat)
    _flatten("heal.", data["timings"], flat)
    flat["steps"] = result.steps
    flat["trace_records"] = result.trace_records
    return flat


def _flatten(prefix: str, value: Any, out: dict[str, int]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}{key}.", item, out)
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        out[prefix.rstrip(".")] = value


def _client_op(op: Operation) -> ClientOp:
    kind = _OP_TYPES[op.status]
    return ClientOp(
        index=op.id,
        process=op.process,
        f=op.f,
        input=thaw(op.input),
        output=thaw(op.output) if kind is OpType.OK else None,
        type=kind,
        invoke_ms=op.call_time if op.call_time is not None else 0,
        complete_ms=op.complete_time,
        key=thaw(op.key),
        error=thaw(op.error),
    )


def _invariants_verdict(result: SimResult) -> RunVerdict:
    clean = result.violation is None and result.error is None
    return RunVerdict.OK if clean else RunVerdict.VIOLATION


def _violations(
    result: SimResult, nodes: tuple[int, ...], operations: tuple[ClientOp, ...]
) -> list[Violation]:
    found = []
    v = result.violation
    if v is not None:
        # An engine that records every finding (pysyncobj's) gives the first of each kind
        # and how many there were; ours stops at its one violation.
        firsts: Mapping[str, Any] = v.get("first") or {v["invariant"]: v}
        how_many: Mapping[str, int] = v.get("findings") or {}
        for kind, first in firsts.items():
            more = how_many.get(kind, 1) - 1
            also = f"; {more:,} more found" if more > 0 else ""
            found.append(
                Violation(
                    kind=str(kind).replace(" ", "-"),
                    message=f"{first['message']} (step {first['step']}{also})",
                    time_ms=first["time_ms"],
                    nodes=tuple(n for n in first["nodes"] if n in nodes),
                )
            )
    e = result.error
    if e is not None:
        found.append(
            Violation(
                kind="error",
                message=f"the run broke off at step {e['step']}: {e['type']}: {e['message']}",
                time_ms=e["time_ms"],
            )
        )
    lin = result.linearizability
    if lin is not None and lin.verdict is Verdict.ILLEGAL:
        found.append(Violation.linearizability(lin, operations))
    return found


def _notes(result: SimResult, timeline: SimTimeline) -> list[str]:
    notes = []
    if result.plant is not None:
        notes.append(f"A planted bug ran instead of the real engine part: {result.plant}.")
    t = result.timings
    if t["healed_at_ms"] is not None:
        notes.append(
            f"Every fault healed at {t['healed_at_ms']:,} ms; then a leader after "
            f"{_ms(t['leader_after_heal_ms'])}, the probe write committed after "
            f"{_ms(t['probe_committed_after_heal_ms'])}, replicas converged after "
            f"{_ms(t['converged_after_heal_ms'])}."
        )
    if len(result.trace) < result.trace_records:
        notes.append(
            f"The trace kept {len(result.trace):,} of {result.trace_records:,} records: "
            "the timeline ends where it does."
        )
    if result.error is not None:
        notes.append("Traceback:\n" + str(result.error["traceback"]))
    notes += timeline.notes
    return notes


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value:,} ms"
