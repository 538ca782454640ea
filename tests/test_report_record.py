"""The run record schema: round trips, canonical text, and typed errors that say where."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checker import check, history_from_events, make_model
from chaos.report.directory import history_events
from chaos.report.errors import RecordError
from chaos.report.record import (
    FORMAT,
    CheckerRun,
    ClientOp,
    Interval,
    IntervalKind,
    LinearizabilityWitness,
    OpType,
    Record,
    RunVerdict,
    Violation,
    dumps,
    loads,
)
from tests.report_records import minimal_record, records

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Fields whose value is any JSON: nothing below them has a schema.
FREE = {"input", "output", "key", "error", "state"}
# Objects whose keys are names, not fields.
MAPS = {"counts", "wall", "settings", "options", "descriptions"}


Keys = tuple[str | int, ...]


def paths(value: Any, path: str = "", keys: Keys = ()) -> Iterator[tuple[str, Keys, Any]]:
    """(path, keys, value) of every value below the top: `path` as RecordError.path
    writes it, `keys` the exact way there (names in maps may hold dots)."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            yield here, (*keys, key), item
            if key not in FREE:
                yield from paths(item, here, (*keys, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield f"{path}[{i}]", (*keys, i), item
            yield from paths(item, f"{path}[{i}]", (*keys, i))


def keys_of(path: str) -> Keys:
    """The keys of a simple path (no dots or brackets in names): `operations[0].index`."""
    return tuple(
        int(token[1:-1]) if token.startswith("[") else token
        for token in path.replace("[", ".[").split(".")
    )


def replace(data: dict[str, Any], keys: Keys, new: Any) -> dict[str, Any]:
    """A copy of `data` with the value at `keys` replaced (deleted when `new` is DELETE)."""
    data = copy.deepcopy(data)
    parent: Any = data
    for key in keys[:-1]:
        parent = parent[key]
    if new is DELETE:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = new
    return data


DELETE = object()
DEEP: list[Any] = [1]
for _ in range(33):
    DEEP = [DEEP]


def within(error: RecordError, path: str) -> bool:
    return error.path == path or error.path.startswith((path + ".", path + "["))


@SETTINGS
@given(records())
def test_round_trip_through_json_text(record: Record) -> None:
    text = dumps(record)
    assert loads(text) == record
    assert dumps(loads(text)) == text
    assert Record.from_json(json.loads(text)) == record
    assert json.loads(text) == json.loads(json.dumps(record.to_json()))


def typed(path: str) -> bool:
    """Whether the value at `path` has a type in the schema (not any JSON)."""
    return path.rsplit(".", 1)[-1] not in FREE and ".options." not in path


@SETTINGS
@given(records(), st.data())
def test_a_wrong_value_is_named_by_its_path(record: Record, data: st.DataObject) -> None:
    document = record.to_json()
    path, keys = data.draw(
        st.sampled_from(sorted((p, k) for p, k, _ in paths(document) if typed(p)))
    )
    # A list of objects fits no typed field: scalars, lists of ids, maps and objects all
    # refuse it, at its path or at the first item inside it.
    with pytest.raises(RecordError) as caught:
        Record.from_json(replace(document, keys, [{"x": [1]}]))
    assert within(caught.value, path), (path, caught.value)
    assert str(caught.value).startswith(caught.value.path)


@SETTINGS
@given(records(), st.data())
def test_an_unknown_field_is_refused_where_it_is(record: Record, data: st.DataObject) -> None:
    document = record.to_json()
    objects = [("", ())] + [
        (p, k)
        for p, k, v in paths(document)
        if isinstance(v, dict) and typed(p) and k[-1] not in MAPS
    ]
    path, keys = data.draw(st.sampled_from(sorted(objects, key=str)))
    changed = copy.deepcopy(document)
    target = changed
    for key in keys:
        target = target[key]
    target["surprise"] = 1
    with pytest.raises(RecordError) as caught:
        Record.from_json(changed)
    assert caught.value.path == (f"{path}.surprise" if path else "surprise")
    assert caught.value.reason == "is not a field of this object"


@SETTINGS
@given(records(), st.data())
def test_a_missing_field_is_named_or_defaulted(record: Record, data: st.DataObject) -> None:
    document = record.to_json()
    fields = [
        (p, k)
        for p, k, _ in paths(document)
        if isinstance(k[-1], str) and not (len(k) > 1 and k[-2] in MAPS | FREE)
    ]
    path, keys = data.draw(st.sampled_from(sorted(fields, key=str)))
    try:
        Record.from_json(replace(document, keys, DELETE))
    except RecordError as e:
        # Either the field is required, or its default breaks an invariant elsewhere.
        assert e.path == path and e.reason == "is missing" or e.reason != "is missing", e


REQUIRED = [
    "format",
    "run",
    "intervals",
    "faults",
    "operations",
    "violations",
    "run.seed",
    "run.engine",
    "run.nodes",
    "run.duration_ms",
    "run.verdict",
    "run.counts",
    "run.wall",
    "operations[0].index",
    "operations[0].type",
    "operations[0].invoke_ms",
    "operations[0].complete_ms",
    "intervals[0].kind",
    "faults[0].end_ms",
]


@pytest.mark.parametrize("path", REQUIRED)
def test_required_fields(path: str) -> None:
    document = _sample().to_json()
    with pytest.raises(RecordError) as caught:
        Record.from_json(replace(document, keys_of(path), DELETE))
    assert (caught.value.path, caught.value.reason) == (path, "is missing")


def _sample() -> Record:
    from chaos.report.record import Fault

    ops = (
        ClientOp(0, 1, "write", 1, None, OpType.OK, 10, 20, 1),
        ClientOp(1, 2, "read", None, 1, OpType.OK, 30, 40, 2),
    )
    return minimal_record(
        intervals=(Interval(1, IntervalKind.LEADER, 100, 500, 1),),
        faults=(Fault("kill", 100, 200, (2,), "kill node 2"),),
        operations=ops,
    )


@pytest.mark.parametrize(
    ("path", "value", "error_path", "words"),
    [
        ("format", 2, "format", "knows format 1, not 2"),
        ("run.nodes", [1, 1], "run.nodes", "must not repeat a node"),
        ("run.nodes", [], "run.nodes", "at least one node"),
        ("run.duration_ms", -1, "run.duration_ms", "non-negative"),
        ("run.duration_ms", True, "run.duration_ms", "not a boolean"),
        ("run.seed", 2**63, "run.seed", "between"),
        ("run.engine", "etcd", "run.engine", "one of raftcluster, pysyncobj"),
        ("run.counts", {"elections": -1}, "run.counts.elections", "between 0"),
        ("run.wall", {"started": [1]}, "run.wall.started", "string, number, boolean or null"),
        ("run.settings", {"pre_vote": [1]}, "run.settings.pre_vote", "string, number, boolean"),
        ("run.settings", {"": 1}, "run.settings", "must not be empty"),
        ("run.workload", "", "run.workload", "must not be empty"),
        ("run.workload", "w" * 201, "run.workload", "over the limit of 200"),
        ("intervals[0].end_ms", 0, "intervals[0].end_ms", "before start_ms"),
        ("intervals[0].term", None, "intervals[0].term", "needs its term"),
        ("intervals[0].node", 9, "intervals[0].node", "node 9 is not in run.nodes"),
        ("faults[0].groups", [[2], [2]], "faults[0].groups[1]", "shares a node"),
        ("faults[0].groups", [[3]], "faults[0].groups[0]", "not in nodes"),
        ("operations[1].index", 5, "operations[1].index", "must be its position, 1"),
        ("operations[1].invoke_ms", 5, "operations[1].invoke_ms", "in order of call"),
        ("operations[0].complete_ms", None, "operations[0].complete_ms", "an ok needs it"),
        ("operations[0].complete_ms", 5, "operations[0].complete_ms", "before invoke_ms"),
        ("operations[0].node", 7, "operations[0].node", "node 7 is not in run.nodes"),
        ("operations[0].input", DEEP, "operations[0].input" + "[0]" * 33, "nested deeper"),
        ("operations[0].input", {"a": float("inf")}, "operations[0].input.a", "finite"),
        ("run.verdict", "violation", "run.verdict", "holds 0 violations"),
        ("trace_hash", 5, "trace_hash", "must be a string, not an integer"),
    ],
)
def test_invalid_values(path: str, value: Any, error_path: str, words: str) -> None:
    document = _sample().to_json()
    with pytest.raises(RecordError) as caught:
        Record.from_json(replace(document, keys_of(path), value))
    assert caught.value.path == error_path
    assert words in caught.value.reason, caught.value.reason


def test_a_process_has_one_operation_in_flight() -> None:
    document = _sample().to_json()
    document["operations"][1]["process"] = 1  # process 1's write is answered at 20 ms
    document["operations"][1]["invoke_ms"] = 15
    with pytest.raises(RecordError, match=r"operations\[1\].invoke_ms: process 1 calls this"):
        Record.from_json(document)
    document["operations"][0].update(type="info", complete_ms=None)  # never answered
    document["operations"][1].update(invoke_ms=500, complete_ms=510)
    with pytest.raises(RecordError, match="still in flight"):
        Record.from_json(document)


def test_violations_name_existing_operations_and_set_the_verdict() -> None:
    record = _sample()
    run = attrs.evolve(record.run, verdict=RunVerdict.VIOLATION)
    witness = LinearizabilityWitness(0, (0,), 1, 1, (1,), None, False, "why", {1: "read() -> 1"})
    found = Violation("x", "m", 40, (), (1,), witness)
    Record(run, operations=record.operations, violations=(found,))
    with pytest.raises(RecordError, match=r"violations\[0\]: names operation 2, but there are 2"):
        Record(run, operations=record.operations, violations=(Violation("x", "m", ops=(2,)),))
    with pytest.raises(RecordError, match="run.verdict: is ok but the record holds 1 violations"):
        Record(record.run, violations=(Violation("x", "m"),))
    with pytest.raises(RecordError, match="blocked: must be one of the candidates"):
        LinearizabilityWitness(0, (), None, 1, (0,), None, False, "")
    with pytest.raises(RecordError, match="describes an operation the witness does not name"):
        LinearizabilityWitness(0, (), None, 0, (0,), None, False, "", {5: "x"})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{", "not valid JSON"),
        ('{"format": NaN}', "NaN is not a number"),
        ("[]", "must be an object, not a list"),
        (b"\xff", "not valid JSON"),
    ],
)
def test_loads_refuses_what_is_not_a_record(text: str | bytes, words: str) -> None:
    with pytest.raises(RecordError, match=words):
        loads(text)


def test_canonical_text_is_one_item_a_line_and_sorted() -> None:
    text = dumps(_sample())
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and text.endswith("}\n")
    keys = [
        json.loads("{" + line.rstrip(",").rstrip("[") + "0}")
        for line in lines
        if line.startswith('"') and line.endswith("[")
    ]
    assert keys  # lists open on their own line
    assert [line for line in lines if line.startswith('{"complete_ms":20')]  # one op a line
    top = [line.split(":")[0] for line in lines if line.startswith('"')]
    assert top == sorted(top)
    assert json.loads(text)["format"] == FORMAT


def test_built_from_a_check_result() -> None:
    """The checker's witness and verdict carry over into the record, indexes and all."""
    record = minimal_record(
        operations=(
            ClientOp(0, 1, "write", 1, None, OpType.OK, 0, 10, 1),
            ClientOp(1, 2, "read", None, 0, OpType.OK, 20, 30, 2),  # a stale read
        )
    )
    result = check(
        history_from_events(history_events(record)),
        make_model("register", {"initial": 0}),
        core_timeout_s=5,
    )
    violation = Violation.linearizability(result, record.operations)
    checker = CheckerRun.linearizability(result)
    assert checker.verdict is RunVerdict.VIOLATION and checker.model == "register"
    assert violation.witness is not None and violation.witness.blocked == 1
    assert violation.time_ms == 30 and violation.nodes == (2,) and 1 in violation.ops
    assert violation.witness.description(1) == "read() -> 0"
    assert "read() -> 0" in violation.message
    done = attrs.evolve(
        record,
        run=attrs.evolve(record.run, verdict=RunVerdict.VIOLATION),
        violations=(violation,),
        checkers=(checker,),
    )
    assert loads(dumps(done)) == done
