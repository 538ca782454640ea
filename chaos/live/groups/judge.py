"""The groups checker of live chaos and the failover benchmark: what the probes' log
and the end of a run say (pure: no I/O but `read_log`).

From the log (`judge_log`):
- **double runs**: every `double_run` record is a violation, naming the instance that
  found the group's lock held and the holder (from the record, else the group's last
  start before it that has not ended);
- **epochs going back**: a start of a group under a lower epoch than its previous
  start is a violation (the same epoch again is a restart in place);
- **runs**: each instance from its start to its end record, else to the group's next
  start (killed: SIGKILL leaves no end), else open; and the **gaps** between two
  successive instances of a group whose first one ended by itself (end to start).

Failovers (`failovers`): each time a group's next instance started on another node,
how long after the fault that hit the previous one's node (a kill, a pause, a partition
injected while it ran), else after the previous one's end record.

At the end of a run (`judge_back`): every group declared online answers on its port
and the cluster's state says ONLINE on the node that answered, under the epoch it
answered with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from statemachine.errors import ClusterError
from statemachine.groups.messages import GroupInfo, GroupState

MAX_LOG_BYTES = 64 << 20  # a probe log of a long soak run is a few MB; more is a runaway
MAX_LINE_CHARS = 4_096  # a record is under 300 characters


class ProbeLogDamaged(ClusterError):
    """A line of the probes' log is not a record the probe writes."""


@attrs.frozen
class Instance:
    """One probe process: a group run by a node under an epoch."""

    group: str
    node: int
    epoch: int
    pid: int

    def __str__(self) -> str:
        return f"{self.group} on node {self.node} (epoch {self.epoch}, pid {self.pid})"


@attrs.frozen
class LogRecord:
    """One line: `kind` is "start", "end" or "double_run"; `holder` only for the last."""

    kind: str
    instance: Instance
    mono_ns: int
    holder: Instance | None = None


@attrs.frozen
class Run:
    """An instance's time as the group's server. `ended`: "end" (its end record),
    "next" (no end record: the group's next start closes it), "open" (neither)."""

    instance: Instance
    start_ns: int
    end_ns: int | None
    ended: str


@attrs.frozen
class Gap:
    """Between an instance that ended by itself and the group's next start."""

    before: Instance
    after: Instance
    gap_ms: float


@attrs.frozen
class Failover:
    """A group's next instance started on another node `ms` after `since` ("fault": the
    fault that hit the node it ran on; "stop": the previous instance's end record)."""

    group: str
    from_node: int
    to_node: int
    ms: float
    since: str


@attrs.frozen
class Finding:
    """A violation: `kind` "double-run", "epoch-back" or "not-back"."""

    kind: str
    group: str
    message: str
    mono_ns: int | None = None
    nodes: tuple[int, ...] = ()


@attrs.frozen
class LogVerdict:
    findings: tuple[Finding, ...]
    runs: tuple[Run, ...]  # by group, then start
    gaps: tuple[Gap, ...]
    double_runs: int

    def starts(self, group: str) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.instance.group == group)


@attrs.frozen
class Answer:
    """What a probe answered on its port: `group node epoch pid`."""

    group: str
    node: int
    epoch: int
    pid: int

    @classmethod
    def parse(cls, line: bytes | str) -> Answer:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        parts = text.split()
        if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
            raise ProbeLogDamaged(f"not a probe's answer: {text[:100]!r}")
        return cls(parts[0], int(parts[1]), int(parts[2]), int(parts[3]))


# -- reading ---------------------------------------------------------------------------------


def read_log(path: Path) -> tuple[LogRecord, ...]:
    """Every record of the log at `path` (none if it does not exist). Raises
    ProbeLogDamaged (a line that is not a record, a log over MAX_LOG_BYTES)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ()
    if size > MAX_LOG_BYTES:
        raise ProbeLogDamaged(f"{path}: {size} bytes, over the limit of {MAX_LOG_BYTES}")
    return parse_log(path.read_text(encoding="utf-8", errors="replace").splitlines())


def parse_log(lines: Iterable[str]) -> tuple[LogRecord, ...]:
    """Records from JSON lines (blank lines skipped). Raises ProbeLogDamaged."""
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            raise ProbeLogDamaged(f"line {number}: over {MAX_LINE_CHARS} characters")
        try:
            out.append(_record(json.loads(line)))
        except (ValueError, KeyError, TypeError) as e:
            raise ProbeLogDamaged(f"line {number}: {e}: {line[:200]!r}") from e
    return tuple(out)


def _record(data: Any) -> LogRecord:
    if "double_run" in data:
        d = data["double_run"]
        holder = d.get("holder")
        return LogRecord("double_run", _instance(d), int(d["mono_ns"]),
                         _instance(holder) if holder else None)  # fmt: skip
    kind = data["event"]
    if kind not in ("start", "end"):
        raise ValueError(f"unknown event {kind!r}")
    return LogRecord(kind, _instance(data), int(data["mono_ns"]))


def _instance(d: Mapping[str, Any]) -> Instance:
    return Instance(str(d["group"]), int(d["node"]), int(d["epoch"]), int(d["pid"]))


# -- judging ---------------------------------------------------------------------------------


def judge_log(records: Iterable[LogRecord]) -> LogVerdict:
    """Findings, runs and gaps from the records in the order they were written."""
    findings: list[Finding] = []
    runs: dict[str, list[Run]] = {}
    double_runs = 0
    for record in records:
        me = record.instance
        group = runs.setdefault(me.group, [])
        if record.kind == "double_run":
            double_runs += 1
            holder = record.holder or _serving(group)
            who = str(holder) if holder is not None else "an instance the log does not name"
            findings.append(
                Finding(
                    "double-run", me.group,
                    f"{me} started while {who} was alive: two instances of {me.group} at once",
                    record.mono_ns,
                    tuple(sorted({me.node, *((holder.node,) if holder else ())})),
                )
            )  # fmt: skip
        elif record.kind == "start":
            if group:
                last = group[-1]
                if me.epoch < last.instance.epoch:
                    findings.append(
                        Finding(
                            "epoch-back", me.group,
                            f"{me} started after {last.instance}: the epoch went back",
                            record.mono_ns, tuple(sorted({me.node, last.instance.node})),
                        )
                    )  # fmt: skip
                if last.end_ns is None:
                    group[-1] = attrs.evolve(last, end_ns=record.mono_ns, ended="next")
            group.append(Run(me, record.mono_ns, None, "open"))
        else:
            for i in range(len(group) - 1, -1, -1):
                if group[i].instance == me:
                    if group[i].ended != "end":
                        group[i] = attrs.evolve(group[i], end_ns=record.mono_ns, ended="end")
                    break
    ordered = tuple(r for name in sorted(runs) for r in runs[name])
    return LogVerdict(tuple(findings), ordered, _gaps(runs), double_runs)


def _serving(group: list[Run]) -> Instance | None:
    open_runs = [r for r in group if r.ended == "open"]
    return open_runs[-1].instance if open_runs else None


def _gaps(runs: Mapping[str, list[Run]]) -> tuple[Gap, ...]:
    gaps = []
    for name in sorted(runs):
        group = runs[name]
        for before, after in zip(group, group[1:], strict=False):
            if before.ended == "end" and before.end_ns is not None:
                gap_ms = max(0, after.start_ns - before.end_ns) / 1e6
                gaps.append(Gap(before.instance, after.instance, round(gap_ms, 3)))
    return tuple(gaps)


def failovers(
    verdict: LogVerdict, faults: Iterable[tuple[int, tuple[int, ...]]]
) -> tuple[Failover, ...]:
    """The failovers among `verdict`'s runs; `faults` are the injections as
    (CLOCK_MONOTONIC ns, the nodes they hit)."""
    hits = sorted(faults)
    out = []
    for before, after in zip(verdict.runs, verdict.runs[1:], strict=False):
        if before.instance.group != after.instance.group:
            continue
        if before.instance.node == after.instance.node:
            continue
        node = before.instance.node
        fault = [t for t, nodes in hits if node in nodes and before.start_ns <= t <= after.start_ns]
        if fault:
            since, at_ns = "fault", fault[-1]
        elif before.ended == "end" and before.end_ns is not None:
            since, at_ns = "stop", before.end_ns
        else:
            continue
        out.append(
            Failover(before.instance.group, node, after.instance.node,
                     round((after.start_ns - at_ns) / 1e6, 3), since)
        )  # fmt: skip
    return tuple(out)


def judge_back(
    wanted: Iterable[str], answers: Mapping[str, Answer | None], groups: Iterable[GroupInfo]
) -> tuple[Finding, ...]:
    """Every group in `wanted` (declared online) answered on its port (`answers`, None:
    no answer within the deadline), and the cluster's state (`groups`, a linearizable
    ListGroups after the answers) says ONLINE, owned by the node that answered, under the
    epoch it answered with."""
    infos = {g.spec.name: g for g in groups}
    findings = []
    for name in sorted(wanted):
        answer = answers.get(name)
        info = infos.get(name)
        problem = ""
        if answer is None:
            problem = "did not answer on its port"
        elif answer.group != name:
            problem = f"its port answered as group {answer.group!r}"
        elif info is None:
            problem = "is not in the cluster's state"
        elif info.state is not GroupState.ONLINE:
            problem = f"answered from node {answer.node} but the state says {info.state.name}"
        elif (info.owner, info.epoch) != (answer.node, answer.epoch):
            problem = (
                f"answered from node {answer.node} under epoch {answer.epoch} but the state "
                f"says owner {info.owner}, epoch {info.epoch}"
            )
        if problem:
            nodes = (answer.node,) if answer is not None else ()
            findings.append(Finding("not-back", name, f"group {name} {problem}", None, nodes))
    return tuple(findings)
