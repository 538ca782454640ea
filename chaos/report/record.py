"""The run record: what one chaos run leaves behind, for reports and for campaigns.

The simulator, the live mode and the pysyncobj engine all write this one schema
(docs/report.md), `"format": 1`. It is a tree of frozen attrs classes:

    Record
      format                    1
      run: RunInfo              seed, engine and its settings, mode, nodes, verdict,
                                counts, replay, wall
      intervals: Interval...    what each node was (leader of a term, crashed...) and when
      faults: Fault...          what the nemeses did and when
      operations: ClientOp...   the client history, indexed as the checker numbers it
      violations: Violation...  what the checkers found (a linearizability witness)
      checkers: CheckerRun...   which checkers ran and what they said
      trace_hash, notes

`Record.from_json(data)` validates a parsed JSON document and raises only `RecordError`
(path, reason); `record.to_json()` gives it back, and `dumps(record)` gives its canonical
text. Both directions go through `chaos.report.convert`, which follows each class's
fields and types (`chaos.report.reading`); a field that needs more says so in its
metadata (`convert.meta`). The classes also check their own invariants when built in
Python (an interval that ends before it starts, an operation index that names nothing),
so a writer cannot produce a record that a reader would refuse.

Every time is in milliseconds of the run's own clock (virtual in the simulator, since
the start in live mode). Wall-clock facts (when the run started, how long it and the
checker took) live only in `run.wall`, so two runs of one seed differ nowhere else.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final

import attrs

from chaos.checker.values import Frozen, JsonObject, freeze
from chaos.checker.verdict import CheckResult, Verdict
from chaos.report import convert
from chaos.report import reading as rd
from chaos.report.errors import RecordError
from chaos.report.reading import (
    MAX_FAULTS,
    MAX_INTERVALS,
    MAX_NODES,
    MAX_OPERATIONS,
    MAX_VIOLATIONS,
    JsonValue,
    Limit,
    Millis,
    NodeIds,
    OpIds,
    Pairs,
    Scalar,
    Signed,
    Text,
    Value,
)

FORMAT: Final = 1

# The fault kinds the harness writes (the page colours each); any other is shown too.
KNOWN_FAULT_KINDS: Final = (
    "partition",
    "link-cut",
    "kill",
    "pause",
    "clock-skew",
    "loss",
    "duplicate",
    "reorder",
    "slow-link",
    "truncate",
    "disk",
    "membership",
)
# What our checkers find: the simulator's invariants and checks (their names, spaces
# written as dashes), the pysyncobj engine's findings, the linearizability checker, and
# `error` for a run that broke off.
KNOWN_VIOLATION_KINDS: Final = (
    "linearizability",
    "election-safety",
    "log-matching",
    "state-machine-safety",
    "leader-completeness",
    "leader-append-only",
    "commit-rule",
    "persist-before-send",
    "durable-quorum",  # chaos/sim/durable_quorum.py
    "read-freshness",  # chaos/sim/read_freshness.py
    "acknowledged-writes",
    "monotonic-progress",
    "exactly-once",
    "convergence",
    "liveness",
    "availability",
    "wire",
    "durability",
    "one-owner",  # the cluster service (chaos/sim/groups/)
    "epochs",
    "failback",
    "event-streams",
    "groups",
    "message-storm",
    "assertion",
    "part-invariant",  # a user part's check_invariants() (chaos/sim/part_invariants.py)
    "stale-read",
    "committed-entry-truncated",
    "two-leaders-in-a-term",
    "applied-index-regressed",
    "acknowledged-write-lost",
    "applied-entries-diverge",
    "node-exception",
    "error",
)


class Engine(enum.Enum):
    RAFTCLUSTER = "raftcluster"
    PYSYNCOBJ = "pysyncobj"


class Mode(enum.Enum):
    SIM = "sim"
    LIVE = "live"


class RunVerdict(enum.Enum):
    """A run's verdict, and each checker's: `violation` whenever anything was found;
    `vacuous` when nothing was, but some kind of operation never succeeded under the
    faults or after healing, so the run proved nothing (`chaos.checker.stats`)."""

    OK = "ok"
    VIOLATION = "violation"
    UNKNOWN = "unknown"
    VACUOUS = "vacuous"


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
    `checker_s`...) and nothing else; `settings` the engine's settings for the run
    (`election_timeout_ms`, `pre_vote`...: what the seed drew). All three are given as
    mappings and kept sorted.
    """

    seed: Signed
    engine: Engine
    mode: Mode
    nodes: NodeIds = attrs.field(converter=rd.int_tuple)
    duration_ms: Millis
    nemeses: tuple[str, ...]
    workload: str
    replay: Text  # the exact command line that replays the run
    verdict: RunVerdict
    counts: Pairs[str, int] = attrs.field(
        default=(), converter=rd.sorted_pairs, metadata=convert.meta(required=True)
    )
    wall: Pairs[str, Scalar] = attrs.field(
        default=(), converter=rd.sorted_pairs, metadata=convert.meta(required=True)
    )
    settings: Pairs[str, Scalar] = attrs.field(default=(), converter=rd.sorted_pairs)

    def __attrs_post_init__(self) -> None:
        rd.check_times(self, "duration_ms")
        rd.require(bool(self.nodes), "nodes", "must name at least one node")
        rd.require(len(set(self.nodes)) == len(self.nodes), "nodes", "must not repeat a node")
        for field, pairs in (
            ("counts", self.counts),
            ("wall", self.wall),
            ("settings", self.settings),
        ):
            keys = [key for key, _ in pairs]
            rd.require(len(set(keys)) == len(keys), field, "must not repeat a name")

    def count(self, name: str) -> int:
        """The counter `name`, 0 when absent."""
        return dict(self.counts).get(name, 0)


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
    nodes: NodeIds = attrs.field(converter=rd.int_tuple)
    detail: Text = ""
    groups: Annotated[tuple[NodeIds, ...], Limit(MAX_NODES)] = attrs.field(
        default=(), converter=_groups
    )

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
    process: Signed
    f: str
    input: JsonValue = attrs.field(converter=rd.frozen_json, metadata=convert.meta(missing=None))
    output: JsonValue = attrs.field(converter=rd.frozen_json, metadata=convert.meta(missing=None))
    type: OpType
    invoke_ms: Millis
    complete_ms: Millis | None
    node: int | None = None
    key: JsonValue = attrs.field(default=None, converter=rd.frozen_json)
    error: JsonValue = attrs.field(default=None, converter=rd.frozen_json)

    def __attrs_post_init__(self) -> None:
        rd.check_times(self, "invoke_ms", "complete_ms")
        if self.complete_ms is None:
            rd.require(self.type is OpType.INFO, "complete_ms", f"an {self.type.value} needs it")
        else:
            rd.require(self.complete_ms >= self.invoke_ms, "complete_ms", "is before invoke_ms")


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
    prefix: OpIds
    state: JsonValue = attrs.field(converter=rd.frozen_json, metadata=convert.meta(missing=None))
    blocked: int
    candidates: OpIds
    core: OpIds | None = attrs.field(metadata=convert.meta(missing=None))
    core_minimal: bool = attrs.field(metadata=convert.meta(missing=False))
    explanation: Text = attrs.field(metadata=convert.meta(missing=""))
    # Keys are operation indexes (`{"12": "read() -> 2"}` in JSON).
    descriptions: Pairs[int, Text] = attrs.field(default=(), converter=rd.sorted_pairs)

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


@attrs.frozen
class Violation:
    """Something a checker found. `kind` is open (KNOWN_VIOLATION_KINDS are ours);
    `time_ms` when it happened or was seen (None when it has no one instant); `ops` the
    operation indexes involved; `witness` for a linearizability violation."""

    kind: str
    message: Text
    time_ms: Millis | None = None
    nodes: NodeIds = attrs.field(default=(), converter=rd.int_tuple)
    ops: OpIds = ()
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
    """Any JSON value below, but an object at the top (a model's options by name)."""
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
    options: JsonValue = attrs.field(
        default=freeze({}), converter=_options, metadata=convert.meta(_read_options)
    )
    reason: Text = ""

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


def _read_format(value: Any, path: str) -> int:
    version: int = rd.integer(0)(value, path)
    if version != FORMAT:
        raise RecordError(path, f"this reader knows format {FORMAT}, not {version}")
    return version


_REQUIRED: Final = convert.meta(required=True)  # in JSON, though empty by default here


@attrs.frozen
class Record:
    """A whole run (module docstring). Cross-references are checked when it is built:
    nodes named anywhere are the run's, operation indexes name operations, and the run's
    verdict is `violation` exactly when there are violations."""

    # First, so that a reader meets it first; the document must say it.
    format: int = attrs.field(
        default=FORMAT, kw_only=True, metadata=convert.meta(_read_format, required=True)
    )
    run: RunInfo
    intervals: Annotated[tuple[Interval, ...], Limit(MAX_INTERVALS)] = attrs.field(
        default=(), metadata=_REQUIRED
    )
    faults: Annotated[tuple[Fault, ...], Limit(MAX_FAULTS)] = attrs.field(
        default=(), metadata=_REQUIRED
    )
    operations: Annotated[tuple[ClientOp, ...], Limit(MAX_OPERATIONS)] = attrs.field(
        default=(), metadata=_REQUIRED
    )
    violations: Annotated[tuple[Violation, ...], Limit(MAX_VIOLATIONS)] = attrs.field(
        default=(), metadata=_REQUIRED
    )
    checkers: tuple[CheckerRun, ...] = ()
    trace_hash: Annotated[str, Value(rd.string(empty=True))] = ""
    notes: tuple[Text, ...] = ()

    def __attrs_post_init__(self) -> None:
        _read_format(self.format, "format")
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
        return convert.from_json(cls, data)

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON data (`dumps` gives its canonical text)."""
        data: dict[str, Any] = convert.to_json(self)
        return data


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
