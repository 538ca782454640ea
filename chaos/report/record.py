"""The run record: what one chaos run leaves behind, for reports and for campaigns.

The simulator, the live mode and the pysyncobj engine all write this one schema
(docs/report.md), `"format": 1`. It is a tree of frozen attrs classes:

    Record
      run: RunInfo              seed, engine, mode, nodes, verdict, counts, replay, wall
      intervals: Interval...    what each node was (leader of a term, crashed...) and when
      faults: Fault...          what the nemeses did and when
      operations: ClientOp...   the client history, indexed as the checker numbers it
      violations: Violation...  what the checkers found (a linearizability witness)
      checkers: CheckerRun...   which checkers ran and what they said
      trace_hash, notes

`Record.from_json(data)` validates a parsed JSON document and raises only `RecordError`
(path, reason); `record.to_json()` gives it back, and `dumps(record)` gives its canonical
text. The classes also check their own invariants when built in Python (an interval that
ends before it starts, an operation index that names nothing), so a writer cannot produce
a record that a reader would refuse.

Every time is in milliseconds of the run's own clock (virtual in the simulator, since
the start in live mode). Wall-clock facts (when the run started, how long it and the
checker took) live only in `run.wall`, so two runs of one seed differ nowhere else.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from chaos.checker.values import Frozen, JsonObject, freeze, thaw
from chaos.checker.verdict import CheckResult, Verdict
from chaos.report import reading as rd
from chaos.report.errors import RecordError
from chaos.report.reading import (
    MAX_FAULTS,
    MAX_INTERVALS,
    MAX_NODES,
    MAX_OPERATIONS,
    MAX_VIOLATIONS,
    Millis,
    Scalar,
)

FORMAT: Final = 1

KNOWN_FAULT_KINDS: Final = (
    "partition",
    "kill",
    "pause",
    "clock-skew",
    "loss",
    "duplicate",
    "reorder",
    "slow-link",
    "membership",
)
KNOWN_VIOLATION_KINDS: Final = (
    "linearizability",
    "election-safety",
    "log-matching",
    "state-machine-safety",
    "leader-completeness",
    "leader-append-only",
    "exactly-once",
    "convergence",
    "liveness",
)


class Engine(enum.Enum):
    RAFTCLUSTER = "raftcluster"
    PYSYNCOBJ = "pysyncobj"


class Mode(enum.Enum):
    SIM = "sim"
    LIVE = "live"


class RunVerdict(enum.Enum):
    """A run's verdict, and each checker's: `violation` whenever anything was found."""

    OK = "ok"
    VIOLATION = "violation"
    UNKNOWN = "unknown"


class IntervalKind(enum.Enum):
    """Roles (one at a time per node) and conditions (drawn over the role)."""

    LEADER = "leader"
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    CRASHED = "crashed"
    PAUSED = "paused"
    ISOLATED = "isolated"

    @property
    def is_role(self) -> bool:
        return self in ROLES


ROLES: Final = frozenset({IntervalKind.LEADER, IntervalKind.FOLLOWER, IntervalKind.CANDIDATE})


class OpType(enum.Enum):
    """How an operation ended; `info`: unknown, so it stays pending to the end."""

    OK = "ok"
    FAIL = "fail"
    INFO = "info"


# ---------------------------------------------------------------------------------------
# The schema.


@attrs.frozen
class RunInfo:
    """Who ran what: the facts of the run, its verdict and counters.

    `counts` holds named integers (`elections`, `faults.partition`, `ops.ok`...; dots
    group them in the report); `wall` every wall-clock fact (`started`, `wall_s`,
    `checker_s`...) and nothing else. Both are given as mappings and kept sorted.
    """

    seed: int
    engine: Engine
    mode: Mode
    nodes: tuple[int, ...] = attrs.field(converter=rd.int_tuple)
    duration_ms: Millis
    nemeses: tuple[str, ...]
    workload: str
    replay: str  # the exact command line that replays the run
    verdict: RunVerdict
    counts: tuple[tuple[str, int], ...] = attrs.field(default=(), converter=rd.sorted_pairs)
    wall: tuple[tuple[str, Scalar], ...] = attrs.field(default=(), converter=rd.sorted_pairs)

    def __attrs_post_init__(self) -> None:
        rd.check_times(self, "duration_ms")
        rd.require(bool(self.nodes), "nodes", "must name at least one node")
        rd.require(len(set(self.nodes)) == len(self.nodes), "nodes", "must not repeat a node")
        for field, pairs in (("counts", self.counts), ("wall", self.wall)):
            keys = [key for key, _ in pairs]
            rd.require(len(set(keys)) == len(keys), field, "must not repeat a name")

    def count(self, name: str) -> int:
        """The counter `name`, 0 when absent."""
        return dict(self.counts).get(name, 0)

    @classmethod
    def from_json(cls, data: Any, path: str = "run") -> RunInfo:
        f = rd.Fields(data, path)
        return f.build(
            cls,
            seed=f.get("seed", rd.signed),
            engine=f.get("engine", rd.choice(Engine)),
            mode=f.get("mode", rd.choice(Mode)),
            nodes=f.get("nodes", rd.node_ids),
            duration_ms=f.get("duration_ms", rd.millis),
            nemeses=f.get("nemeses", rd.list_of(rd.name)),
            workload=f.get("workload", rd.name),
            replay=f.get("replay", rd.text),
            verdict=f.get("verdict", rd.choice(RunVerdict)),
            counts=f.get("counts", rd.mapping(rd.count)),
            wall=f.get("wall", rd.mapping(rd.scalar)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "engine": self.engine.value,
            "mode": self.mode.value,
            "nodes": list(self.nodes),
            "duration_ms": self.duration_ms,
            "nemeses": list(self.nemeses),
            "workload": self.workload,
            "replay": self.replay,
            "verdict": self.verdict.value,
            "counts": dict(self.counts),
            "wall": {key: thaw(value) for key, value in self.wall},
        }


@attrs.frozen
class Interval:
    """What `node` was from `start_ms` to `end_ms`.

    Roles (leader, follower, candidate) do not overlap on one node; conditions (crashed,
    paused, isolated) are drawn over whatever role the node had. `term` labels a leader
    (required there) and may label the other roles.
    """

    node: int
    kind: IntervalKind
    start_ms: Millis
    end_ms: Millis
    term: int | None = None

    def __attrs_post_init__(self) -> None:
        rd.check_times(self, "start_ms", "end_ms")
        rd.require(self.end_ms >= self.start_ms, "end_ms", "must not be before start_ms")
        if self.kind is IntervalKind.LEADER:
            rd.require(self.term is not None, "term", "a leader interval needs its term")

    @classmethod
    def from_json(cls, data: Any, path: str) -> Interval:
        f = rd.Fields(data, path)
        return f.build(
            cls,
            node=f.get("node", rd.node_id),
            kind=f.get("kind", rd.choice(IntervalKind)),
            start_ms=f.get("start_ms", rd.millis),
            end_ms=f.get("end_ms", rd.millis),
            term=f.get("term", rd.optional(rd.count), None),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kind": self.kind.value,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "term": self.term,
        }


def _groups(groups: Iterable[Iterable[int]]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(group) for group in groups)


@attrs.frozen
class Fault:
    """One fault a nemesis injected. `end_ms` None: it lasted to the end of the run.

    `kind` is open (KNOWN_FAULT_KINDS are the harness's); `nodes` the nodes it affected;
    `detail` says it in words (`{1,2} | {3,4,5}`). For a partition, `groups` gives the
    sides (each a tuple of nodes), which the timeline shades.
    """

    kind: str
    start_ms: Millis
    end_ms: Millis | None
    nodes: tuple[int, ...] = attrs.field(converter=rd.int_tuple)
    detail: str = ""
    groups: tuple[tuple[int, ...], ...] = attrs.field(default=(), converter=_groups)

    def __attrs_post_init__(self) -> None:
        rd.check_times(self, "start_ms", "end_ms")
        if self.end_ms is not None:
            rd.require(self.end_ms >= self.start_ms, "end_ms", "must not be before start_ms")
        seen: set[int] = set()
        for i, group in enumerate(self.groups):
            rd.require(bool(group), f"groups[{i}]", "must not be empty")
            rd.require(not seen & set(group), f"groups[{i}]", "shares a node with another side")
            rd.require(set(group) <= set(self.nodes), f"groups[{i}]", "names a node not in nodes")
            seen |= set(group)

    @classmethod
    def from_json(cls, data: Any, path: str) -> Fault:
        f = rd.Fields(data, path)
        return f.build(
            cls,
            kind=f.get("kind", rd.name),
            start_ms=f.get("start_ms", rd.millis),
            end_ms=f.get("end_ms", rd.optional(rd.millis)),
            nodes=f.get("nodes", rd.node_ids),
            detail=f.get("detail", rd.text, ""),
            groups=f.get("groups", rd.list_of(rd.node_ids, MAX_NODES), ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "nodes": list(self.nodes),
            "detail": self.detail,
            "groups": [list(group) for group in self.groups],
        }


@attrs.frozen
class ClientOp:
    """One client operation. `index` is its position in `Record.operations`, which is its
    id for the checker: operations are in order of invocation, as the history file has
    them (`chaos.checker.History.operations`).

    `input`, `output`, `key` and `error` are JSON values, kept frozen (lists as tuples,
    see chaos.checker.values). `complete_ms` is when the answer came: required for ok and
    fail, and for info the time the client gave up, if it did (the operation is pending to
    the end of the run either way). `node` is the node that answered, when known.
    """

    index: int
    process: int
    f: str
    input: Frozen = attrs.field(converter=rd.frozen_json)
    output: Frozen = attrs.field(converter=rd.frozen_json)
    type: OpType
    invoke_ms: Millis
    complete_ms: Millis | None
    node: int | None = None
    key: Frozen = attrs.field(default=None, converter=rd.frozen_json)
    error: Frozen = attrs.field(default=None, converter=rd.frozen_json)

    def __attrs_post_init__(self) -> None:
        rd.check_times(self, "invoke_ms", "complete_ms")
        if self.complete_ms is None:
            rd.require(self.type is OpType.INFO, "complete_ms", f"an {self.type.value} needs it")
        else:
            rd.require(self.complete_ms >= self.invoke_ms, "complete_ms", "is before invoke_ms")

    @classmethod
    def from_json(cls, data: Any, path: str) -> ClientOp:
        f = rd.Fields(data, path)
        return f.build(
            cls,
            index=f.get("index", rd.count),
            process=f.get("process", rd.signed),
            f=f.get("f", rd.name),
            input=f.get("input", rd.json_value, None),
            output=f.get("output", rd.json_value, None),
            type=f.get("type", rd.choice(OpType)),
            invoke_ms=f.get("invoke_ms", rd.millis),
            complete_ms=f.get("complete_ms", rd.optional(rd.millis)),
            node=f.get("node", rd.optional(rd.node_id), None),
            key=f.get("key", rd.json_value, None),
            error=f.get("error", rd.json_value, None),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "process": self.process,
            "f": self.f,
            "input": thaw(self.input),
            "output": thaw(self.output),
            "type": self.type.value,
            "invoke_ms": self.invoke_ms,
            "complete_ms": self.complete_ms,
            "node": self.node,
            "key": thaw(self.key),
            "error": thaw(self.error),
        }


_ids = rd.list_of(rd.count, MAX_OPERATIONS)


def _descriptions(value: Any, path: str) -> tuple[tuple[int, str], ...]:
    """`{"12": "read() -> 2", ...}`: keys are operation indexes."""
    pairs = rd.mapping(rd.text)(value, path)
    for key, _ in pairs:
        if not key.isdigit() or len(key) > 18:
            raise RecordError(f"{path}.{key}", "keys must be operation indexes")
    return tuple((int(key), text) for key, text in pairs)


@attrs.frozen
class LinearizabilityWitness:
    """The checker's witness (chaos.checker.Witness, docs/checker.md), as data.

    Operations are named by index. `prefix`: the longest linearizable prefix found, in
    linearized order; `state`: the model's state after it (as the model describes it);
    `candidates`: the operations that could come next, every one illegal in `state`;
    `blocked`: the one whose return came first among them. `core`, when searched for, is
    a set that stays illegal with every other operation relaxed (`core_minimal`: no
    smaller one does). `descriptions` gives the model's words for each named operation
    (`read() -> 2`), `explanation` the checker's sentence.
    """

    partition: int
    prefix: tuple[int, ...]
    state: Frozen = attrs.field(converter=rd.frozen_json)
    blocked: int
    candidates: tuple[int, ...]
    core: tuple[int, ...] | None
    core_minimal: bool
    explanation: str
    descriptions: tuple[tuple[int, str], ...] = attrs.field(default=(), converter=rd.sorted_pairs)

    def __attrs_post_init__(self) -> None:
        rd.require(self.blocked in self.candidates, "blocked", "must be one of the candidates")
        named = self.named
        rd.require(
            all(index in named for index, _ in self.descriptions),
            "descriptions",
            "describes an operation the witness does not name",
        )

    @property
    def named(self) -> frozenset[int]:
        """Every operation index the witness names."""
        return frozenset(self.prefix) | frozenset(self.candidates) | frozenset(self.core or ())

    def description(self, index: int) -> str | None:
        return dict(self.descriptions).get(index)

    @classmethod
    def from_checker(cls, witness: Any) -> LinearizabilityWitness:
        """From a `chaos.checker.Witness` (or its `to_json()`), as `check` returned it."""
        data = witness if isinstance(witness, Mapping) else witness.to_json()
        return cls(
            partition=data["partition"],
            prefix=tuple(data["prefix"]),
            state=freeze(data["state"]),
            blocked=data["blocked"],
            candidates=tuple(data["candidates"]),
            core=None if data["core"] is None else tuple(data["core"]),
            core_minimal=data["core_minimal"],
            explanation=data["explanation"],
            descriptions=tuple(
                (int(k), str(op["description"])) for k, op in data["operations"].items()
            ),
        )

    @classmethod
    def from_json(cls, data: Any, path: str) -> LinearizabilityWitness:
        f = rd.Fields(data, path)
        return f.build(
            cls,
            partition=f.get("partition", rd.count),
            prefix=f.get("prefix", _ids),
            state=f.get("state", rd.json_value, None),
            blocked=f.get("blocked", rd.count),
            candidates=f.get("candidates", _ids),
            core=f.get("core", rd.optional(_ids), None),
            core_minimal=f.get("core_minimal", rd.boolean, False),
            explanation=f.get("explanation", rd.text, ""),
            descriptions=f.get("descriptions", _descriptions, ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "prefix": list(self.prefix),
            "state": thaw(self.state),
            "blocked": self.blocked,
            "candidates": list(self.candidates),
            "core": None if self.core is None else list(self.core),
            "core_minimal": self.core_minimal,
            "explanation": self.explanation,
            "descriptions": {str(k): v for k, v in self.descriptions},
        }


@attrs.frozen
class Violation:
    """Something a checker found. `kind` is open (KNOWN_VIOLATION_KINDS are ours);
    `time_ms` when it happened or was seen (None when it has no one instant); `ops` the
    operation indexes involved; `witness` for a linearizability violation."""

    kind: str
    message: str
    time_ms: Millis | None = None
    nodes: tuple[int, ...] = attrs.field(default=(), converter=rd.int_tuple)
    ops: tuple[int, ...] = ()
    witness: LinearizabilityWitness | None = None

    def __attrs_post_init__(self) -> None:
        rd.check_times(self, "time_ms")

    @classmethod
    def linearizability(cls, result: CheckResult, operations: tuple[ClientOp, ...]) -> Violation:
        """The violation an illegal `chaos.checker.check` result stands for: at the blocked
        operation's answer, on the node that answered it, naming the core (or, without
        one, the candidates). `operations` are the record's, indexed as the check's."""
        assert result.witness is not None, "only an illegal result has a violation"
        witness = LinearizabilityWitness.from_checker(result.witness)
        blocked = operations[witness.blocked]
        return cls(
            kind="linearizability",
            message=f"not linearizable ({result.model} model): operation #{blocked.index} "
            f"{witness.description(blocked.index)} cannot follow the longest linearizable "
            f"prefix ({len(witness.prefix)} operations)",
            time_ms=blocked.complete_ms,
            nodes=() if blocked.node is None else (blocked.node,),
            ops=witness.core if witness.core is not None else witness.candidates,
            witness=witness,
        )

    @classmethod
    def from_json(cls, data: Any, path: str) -> Violation:
        f = rd.Fields(data, path)
        return f.build(
            cls,
            kind=f.get("kind", rd.name),
            message=f.get("message", rd.text),
            time_ms=f.get("time_ms", rd.optional(rd.millis), None),
            nodes=f.get("nodes", rd.node_ids, ()),
            ops=f.get("ops", _ids, ()),
            witness=f.get("witness", rd.optional(LinearizabilityWitness.from_json), None),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "time_ms": self.time_ms,
            "nodes": list(self.nodes),
            "ops": list(self.ops),
            "witness": None if self.witness is None else self.witness.to_json(),
        }


CHECK_VERDICTS: Final = {
    Verdict.OK: RunVerdict.OK,
    Verdict.ILLEGAL: RunVerdict.VIOLATION,
    Verdict.UNKNOWN: RunVerdict.UNKNOWN,
}


def _options(value: Any) -> Frozen:
    if not isinstance(value, dict | JsonObject):
        raise RecordError("options", f"must be an object, not {rd.kind_of(value)}")
    return rd.frozen_json(value)


def _read_options(value: Any, path: str) -> Frozen:
    try:
        return _options(rd.json_value(value, path))
    except RecordError as e:
        raise RecordError(path, e.reason) from None


@attrs.frozen
class CheckerRun:
    """One checker that ran: `name` (`linearizability`, `election-safety`...), its
    verdict, and for the linearizability checker the `model` and its `options` (so the
    report can print the `raftcluster chaos check` command). `reason` says why a verdict
    is unknown. Its time taken is wall-clock: it goes in `run.wall`."""

    name: str
    verdict: RunVerdict
    model: str | None = None
    options: Frozen = attrs.field(default=freeze({}), converter=_options)
    reason: str = ""

    @classmethod
    def linearizability(cls, result: CheckResult) -> CheckerRun:
        """From a `chaos.checker.check` result (its time goes in `run.wall`, not here)."""
        return cls(
            "linearizability",
            CHECK_VERDICTS[result.verdict],
            result.model,
            result.options,
            result.reason,
        )

    @classmethod
    def from_json(cls, data: Any, path: str) -> CheckerRun:
        f = rd.Fields(data, path)
        return f.build(
            cls,
            name=f.get("name", rd.name),
            verdict=f.get("verdict", rd.choice(RunVerdict)),
            model=f.get("model", rd.optional(rd.name), None),
            options=f.get("options", _read_options, freeze({})),
            reason=f.get("reason", rd.text, ""),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "model": self.model,
            "options": thaw(self.options),
            "reason": self.reason,
        }


@attrs.frozen
class Record:
    """A whole run (module docstring). Cross-references are checked when it is built:
    nodes named anywhere are the run's, operation indexes name operations, and the run's
    verdict is `violation` exactly when there are violations."""

    run: RunInfo
    intervals: tuple[Interval, ...] = ()
    faults: tuple[Fault, ...] = ()
    operations: tuple[ClientOp, ...] = ()
    violations: tuple[Violation, ...] = ()
    checkers: tuple[CheckerRun, ...] = ()
    trace_hash: str = ""
    notes: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        self._check_nodes()
        self._check_operations()
        found = bool(self.violations)
        rd.require(
            found == (self.run.verdict is RunVerdict.VIOLATION),
            "run.verdict",
            f"is {self.run.verdict.value} but the record holds {len(self.violations)} violations",
        )

    def _check_nodes(self) -> None:
        known = set(self.run.nodes)

        def check(nodes: Iterable[int | None], path: str) -> None:
            for node in nodes:
                rd.require(node is None or node in known, path, f"node {node} is not in run.nodes")

        for i, interval in enumerate(self.intervals):
            check([interval.node], f"intervals[{i}].node")
        for i, fault in enumerate(self.faults):
            check(fault.nodes, f"faults[{i}].nodes")
        for i, op in enumerate(self.operations):
            check([op.node], f"operations[{i}].node")
        for i, violation in enumerate(self.violations):
            check(violation.nodes, f"violations[{i}].nodes")

    def _check_operations(self) -> None:
        """In order of invocation, and one operation in flight per process (as a history
        file must have them: an operation never answered keeps its process busy)."""
        last = 0.0
        busy: dict[int, ClientOp] = {}  # process -> its latest operation
        for i, op in enumerate(self.operations):
            path = f"operations[{i}]"
            rd.require(op.index == i, f"{path}.index", f"must be its position, {i}")
            rd.require(
                op.invoke_ms >= last,
                f"{path}.invoke_ms",
                "is before the call of the operation before it (they must be in order of call)",
            )
            last = op.invoke_ms
            prior = busy.get(op.process)
            if prior is not None:
                rd.require(
                    prior.complete_ms is not None and prior.complete_ms <= op.invoke_ms,
                    f"{path}.invoke_ms",
                    f"process {op.process} calls this while its operation {prior.index} is "
                    "still in flight",
                )
            busy[op.process] = op
        count = len(self.operations)
        for i, violation in enumerate(self.violations):
            named = set(violation.ops) | (violation.witness.named if violation.witness else set())
            bad = sorted(index for index in named if index >= count)
            rd.require(
                not bad,
                f"violations[{i}]",
                f"names operation {bad[0] if bad else 0}, but there are {count} operations",
            )

    @property
    def end_ms(self) -> Millis:
        """The end of the run's time axis: its duration, or later if anything ends later."""
        ends: list[Millis] = [self.run.duration_ms]
        ends.extend(i.end_ms for i in self.intervals)
        ends.extend(f.end_ms if f.end_ms is not None else f.start_ms for f in self.faults)
        ends.extend(o.complete_ms or o.invoke_ms for o in self.operations)
        ends.extend(v.time_ms for v in self.violations if v.time_ms is not None)
        return max(ends)

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Validate a parsed JSON document; raises `RecordError(path, reason)`."""
        f = rd.Fields(data, "")
        version = f.get("format", rd.integer(0))
        if version != FORMAT:
            raise RecordError("format", f"this reader knows format {FORMAT}, not {version}")
        return f.build(
            cls,
            run=f.get("run", RunInfo.from_json),
            intervals=f.get("intervals", rd.list_of(Interval.from_json, MAX_INTERVALS)),
            faults=f.get("faults", rd.list_of(Fault.from_json, MAX_FAULTS)),
            operations=f.get("operations", rd.list_of(ClientOp.from_json, MAX_OPERATIONS)),
            violations=f.get("violations", rd.list_of(Violation.from_json, MAX_VIOLATIONS)),
            checkers=f.get("checkers", rd.list_of(CheckerRun.from_json), ()),
            trace_hash=f.get("trace_hash", rd.string(empty=True), ""),
            notes=f.get("notes", rd.list_of(rd.text), ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "run": self.run.to_json(),
            "intervals": [i.to_json() for i in self.intervals],
            "faults": [f.to_json() for f in self.faults],
            "operations": [o.to_json() for o in self.operations],
            "violations": [v.to_json() for v in self.violations],
            "checkers": [c.to_json() for c in self.checkers],
            "trace_hash": self.trace_hash,
            "notes": list(self.notes),
        }


def _compact(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def dumps(record: Record) -> str:
    """The record's canonical text: sorted keys, one list item per line, ending in a newline.

    The same record always gives the same text (floats as Python's shortest repr), and a
    one-operation change is a one-line diff.
    """
    lines = ["{"]
    data = record.to_json()
    keys = sorted(data)
    for n, key in enumerate(keys):
        comma = "," if n < len(keys) - 1 else ""
        value = data[key]
        if isinstance(value, list) and value:
            lines.append(f"{_compact(key)}:[")
            lines.extend(
                _compact(item) + ("," if i < len(value) - 1 else "") for i, item in enumerate(value)
            )
            lines.append("]" + comma)
        else:
            lines.append(f"{_compact(key)}:{_compact(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def loads(text: str | bytes) -> Record:
    """A record from its JSON text; raises `RecordError` (invalid JSON included)."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError("", f"not valid JSON: {e}") from None
    return Record.from_json(data)


def _reject_constant(name: str) -> Any:
    raise RecordError("", f"not valid JSON: {name} is not a number")
