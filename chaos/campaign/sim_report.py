"""One simulator run as a report: a `chaos.report.Record` built from a `SimResult`.

The record is a function of the result alone (and of the replay command and wall-clock
facts the caller passes, which go in `run.wall`), so the same seed gives the same
`history.jsonl`, `trace.jsonl` and `report.html` bytes, and `summary.json` files that
differ only in `run.wall`.

What comes from where:

- roles and terms: the trace's `role` records (`[t, "role", node, role, term]`), crashes
  and restarts from its `crash` and `start` records; a pre-candidate is drawn as a
  candidate (it is campaigning, with pre-vote);
- faults: the trace's `fault` records (`[t, "fault", kind, repr, [[field, value]...]]`),
  each lasting until what undoes it (the next partition, a network heal, a restart, a
  resume, the next drift, the final heal); kinds this module does not know are shown as
  instants, with their fields in the detail;
- operations: the workload's history (parsed as the checker numbers it);
- counters: `SimResult.to_json()["counts"]`, flattened with dots (`faults.partition`),
  whatever counters it holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from chaos.checker import Status, Verdict, dump_events, parse_history, thaw
from chaos.checker.history import Operation
from chaos.report import (
    CheckerRun,
    ClientOp,
    Engine,
    Fault,
    Interval,
    IntervalKind,
    Mode,
    OpType,
    Record,
    ReportPaths,
    RunInfo,
    RunVerdict,
    Violation,
    write_report,
)
from chaos.sim import SimResult

_OP_TYPES = {Status.OK: OpType.OK, Status.FAIL: OpType.FAIL, Status.INFO: OpType.INFO}
_ROLES = {
    "follower": IntervalKind.FOLLOWER,
    "pre_candidate": IntervalKind.CANDIDATE,
    "candidate": IntervalKind.CANDIDATE,
    "leader": IntervalKind.LEADER,
}
_SCALARS = (str, int, float, bool, type(None))


def history_lines(result: SimResult) -> list[str]:
    """The workload's history as the lines of a history file (the checker's format)."""
    return list(dump_events(result.history))


def trace_lines(result: SimResult) -> Iterator[str]:
    """The kept trace records, one JSON array a line (bytes as hex)."""
    for record in result.trace:
        yield json.dumps(record, separators=(",", ":"), default=_jsonable) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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
    timeline = _Timeline(nodes, result)
    for entry in result.trace:
        timeline.add(entry)
    end_ms = max(result.end_ms, result.config.duration_ms)
    intervals, faults = timeline.finish(end_ms)
    violations = _violations(result, nodes, operations)
    checkers = [CheckerRun("invariants", _invariants_verdict(result))]
    lin = result.linearizability
    if lin is not None:
        checkers.append(CheckerRun.linearizability(lin))
    if violations:
        verdict = RunVerdict.VIOLATION
    elif lin is not None and lin.verdict is Verdict.UNKNOWN:
        verdict = RunVerdict.UNKNOWN
    else:
        verdict = RunVerdict.OK
    run = RunInfo(
        seed=result.config.seed,
        engine=Engine.RAFTCLUSTER,
        mode=Mode.SIM,
        nodes=nodes,
        duration_ms=end_ms,
        nemeses=tuple(result.nemesis.split(",")),
        workload=result.workload,
        replay=replay,
        verdict=verdict,
        counts=counts(result),
        wall=dict(wall),
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
        found.append(
            Violation(
                kind=str(v["invariant"]).replace(" ", "-"),
                message=f"{v['message']} (step {v['step']})",
                time_ms=v["time_ms"],
                nodes=tuple(n for n in v["nodes"] if n in nodes),
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


def _notes(result: SimResult, timeline: _Timeline) -> list[str]:
    notes = []
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
    notes.append("Pre-candidates (campaigning with pre-vote) are drawn as candidates.")
    notes += timeline.notes
    return notes


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value:,} ms"


class _Timeline:
    """Reads trace records in order and closes intervals as the simulator changed state."""

    def __init__(self, nodes: tuple[int, ...], result: SimResult) -> None:
        self.nodes = nodes
        self.base = result.config.base_network
        self.intervals: list[Interval] = []
        self.faults: list[Fault] = []
        self.notes: list[str] = []
        self.running: set[int] = set()
        # Open intervals: node -> (kind, start, term); open faults: key -> (start, fault args).
        self.role: dict[int, tuple[IntervalKind, int, int]] = {}
        self.crashed: dict[int, int] = {}
        self.paused: dict[int, int] = {}
        self.isolated: dict[int, int] = {}
        self.open: dict[str, tuple[int, str, tuple[int, ...], str, Any]] = {}

    # -- reading ------------------------------------------------------------------------

    def add(self, entry: Sequence[Any]) -> None:
        t, kind = entry[0], entry[1]
        if kind == "start":
            self._start(t, entry[2])
        elif kind == "role":
            self._role(t, entry[2], entry[3], entry[4])
        elif kind == "crash":
            self._crash(t, entry[2], entry[3], entry[4])
        elif kind == "resume":
            self._close_pause(entry[2], t)
        elif kind == "fault":
            self._fault(t, entry[2], entry[3], dict(entry[4]) if len(entry) > 4 else {})
        elif kind == "heal":
            self._close_network(t)
            self._close("net:", t)

    def _start(self, t: int, node: int) -> None:
        self.running.add(node)
        start = self.crashed.pop(node, None)
        if start is not None:
            self.intervals.append(Interval(node, IntervalKind.CRASHED, start, t))
        self._close(f"kill:{node}", t)

    def _role(self, t: int, node: int, role: str, term: int) -> None:
        self._end_role(node, t)
        self.role[node] = (_ROLES.get(role, IntervalKind.FOLLOWER), t, term)

    def _end_role(self, node: int, t: int) -> None:
        current = self.role.pop(node, None)
        if current is not None:
            kind, start, term = current
            self.intervals.append(Interval(node, kind, start, t, term))

    def _crash(self, t: int, node: int, kept: int, torn: bool) -> None:
        self.running.discard(node)
        self._end_role(node, t)
        self._close_pause(node, t)
        self.crashed[node] = t
        how = f"{kept} pending writes kept" + (", the next one torn" if torn else "")
        self._open(f"kill:{node}", t, "kill", (node,), f"node {node} crashed; {how}")

    def _close_pause(self, node: int, t: int) -> None:
        start = self.paused.pop(node, None)
        if start is not None:
            self.intervals.append(Interval(node, IntervalKind.PAUSED, start, t))
            self._close(f"pause:{node}", t)

    # -- faults -------------------------------------------------------------------------

    def _fault(self, t: int, kind: str, text: str, fields: dict[str, Any]) -> None:
        if kind == "partition":
            self._close_network(t)
            self._partition(t, fields["groups"])
        elif kind == "link-cut":
            links = [tuple(link) for link in fields["links"]]
            touched = tuple(sorted({n for link in links for n in link} & set(self.nodes)))
            detail = "links cut: " + ", ".join(f"{a}→{b}" for a, b in links)
            self._open(f"cut:{t}:{len(self.faults)}", t, "link-cut", touched, detail)
        elif kind == "heal":
            self._close_network(t)
        elif kind == "network":
            self._close("net:", t)
            self._conditions(t, fields)
        elif kind == "pause":
            node = fields["node"]
            if node in self.running and node not in self.paused:
                self.paused[node] = t
                detail = f"node {node} paused for {fields['duration_ms']:,} ms"
                self._open(f"pause:{node}", t, "pause", (node,), detail)
        elif kind == "clock-jump":
            node = fields["node"]
            detail = f"node {node}'s clock jumps {fields['forward_ms']:+,} ms"
            self.faults.append(Fault("clock-skew", t, t, (node,), detail))
        elif kind == "clock-drift":
            node, ppm = fields["node"], fields["drift_ppm"]
            self._close(f"drift:{node}", t)
            if ppm:
                detail = f"node {node}'s clock drifts {ppm:+,} ppm"
                self._open(f"drift:{node}", t, "clock-skew", (node,), detail)
        elif kind not in ("crash", "restart"):  # those two show through crash and start
            self._other(t, kind, text, fields)

    def _partition(self, t: int, groups: Sequence[Sequence[int]]) -> None:
        sides = [tuple(sorted(g)) for g in groups if g]
        alone = [n for n in self.nodes if not any(n in side for side in sides)]
        sides += [(n,) for n in alone]  # nodes in no group are cut from everyone
        detail = " | ".join("{" + ",".join(map(str, side)) + "}" for side in sides)
        self._open("cut:partition", t, "partition", self.nodes, detail, tuple(sides))
        for side in sides:
            if len(side) == 1 and len(self.nodes) > 1:
                self.isolated[side[0]] = t

    def _close_network(self, t: int) -> None:
        """Every cut between nodes is gone (a heal, or a partition replacing them)."""
        self._close("cut:", t)
        for node, start in sorted(self.isolated.items()):
            self.intervals.append(Interval(node, IntervalKind.ISOLATED, start, t))
        self.isolated.clear()

    def _conditions(self, t: int, fields: dict[str, Any]) -> None:
        base = self.base
        if fields.get("loss", 0) > base.loss:
            self._open("net:loss", t, "loss", self.nodes, f"{fields['loss']:.1%} of messages lost")
        if fields.get("duplicate", 0) > base.duplicate:
            detail = f"{fields['duplicate']:.1%} of node-to-node messages duplicated"
            self._open("net:duplicate", t, "duplicate", self.nodes, detail)
        low, high = fields.get("min_delay_ms", 0), fields.get("max_delay_ms", 0)
        if high > base.max_delay_ms:
            detail = f"delays {low:,}–{high:,} ms (messages reorder)"
            self._open("net:delay", t, "slow-link", self.nodes, detail)

    def _other(self, t: int, kind: str, text: str, fields: dict[str, Any]) -> None:
        touched: set[int] = set()
        for name in ("node", "nodes", "links", "groups"):
            touched |= _node_ids(fields.get(name))
        self.faults.append(Fault(kind, t, t, tuple(sorted(touched & set(self.nodes))), text))

    def _open(
        self, key: str, t: int, kind: str, nodes: tuple[int, ...], detail: str, groups: Any = ()
    ) -> None:
        self._close(key, t)
        self.open[key] = (t, kind, nodes, detail, groups)

    def _close(self, prefix: str, t: int | None) -> None:
        for key in [k for k in self.open if k.startswith(prefix)]:
            start, kind, nodes, detail, groups = self.open.pop(key)
            self.faults.append(Fault(kind, start, t, nodes, detail, groups))

    # -- the end ------------------------------------------------------------------------

    def finish(self, end_ms: int) -> tuple[list[Interval], list[Fault]]:
        for node in sorted(self.role):
            self._end_role(node, end_ms)
        for node, start in sorted(self.crashed.items()):
            self.intervals.append(Interval(node, IntervalKind.CRASHED, start, end_ms))
        for node in sorted(self.paused):
            self._close_pause(node, end_ms)
        self._close_network(end_ms)
        self._close("", None)  # still open at the end (a clock drift): lasted to the end
        intervals = sorted(self.intervals, key=lambda i: (i.node, i.start_ms, i.kind.value))
        faults = sorted(self.faults, key=lambda f: (f.start_ms, f.kind, f.nodes, f.detail))
        return intervals, faults


def _node_ids(value: Any) -> set[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return {value}
    if isinstance(value, list | tuple):
        return {n for item in value for n in _node_ids(item)}
    return set()
