"""Histories: JSONL events become operations; anything malformed is a HistoryError saying where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.checker import (
    Event,
    HistoryError,
    HistoryLimits,
    Status,
    dump_events,
    freeze,
    history_from_events,
    load_history,
    parse_history,
    thaw,
)
from chaos.checker.values import JSON_FALSE, JSON_TRUE, JsonObject


def lines(*events: dict[str, Any]) -> list[str]:
    return [json.dumps(e) + "\n" for e in events]


def test_pairs_invokes_with_completions_in_invocation_order() -> None:
    history = parse_history(
        lines(
            {"process": 1, "type": "invoke", "f": "write", "value": 3, "time": 10},
            {"process": 2, "type": "invoke", "f": "read", "value": None},
            {"process": "nemesis", "type": "info", "f": "kill", "value": None},
            {"process": 2, "type": "ok", "f": "read", "value": 3},
            {"process": 1, "type": "info", "f": "write", "value": 3, "error": "timed-out"},
            {"process": 3, "type": "invoke", "f": "cas", "value": [3, 4]},
        ),
        source="h.jsonl",
    )
    write, read, cas = history.operations
    assert (write.id, write.process, write.f, write.input) == (0, 1, "write", 3)
    assert (write.status, write.call, write.complete, write.error) == (
        Status.INFO,
        0,
        4,
        "timed-out",
    )
    assert write.pending and write.call_time == 10 and write.line == 1
    assert (read.status, read.output, read.call, read.complete) == (Status.OK, 3, 1, 3)
    assert not read.pending
    # Never answered: pending to the end, like info.
    assert (cas.status, cas.input, cas.complete) == (Status.INFO, (3, 4), None)
    assert history.events == 6 and history.nemesis_events == 1 and history.source == "h.jsonl"


def test_blank_lines_are_skipped_and_bytes_accepted() -> None:
    raw = [
        b'{"process":0,"type":"invoke","f":"read"}\n',
        b"\n",
        b'{"process":0,"type":"fail","f":"read"}\n',
    ]
    (op,) = parse_history(raw).operations
    assert op.status is Status.FAIL and op.complete == 1


@pytest.mark.parametrize(
    ("events", "line", "words"),
    [
        (['{"process": 1, "type": "invoke", "f": "read"'], 1, "not valid JSON"),
        (["[1, 2]"], 1, "must be a JSON object"),
        (['{"process": "client", "type": "invoke", "f": "read"}'], 1, '"process" must be'),
        (['{"process": true, "type": "invoke", "f": "read"}'], 1, '"process" must be'),
        (['{"process": 1, "type": "begin", "f": "read"}'], 1, '"type" must be one of'),
        (['{"process": 1, "type": "invoke", "f": 7}'], 1, '"f" must be a string'),
        (['{"process": 1, "type": "invoke", "f": "get", "key": [1]}'], 1, '"key" must be'),
        (['{"process": 1, "type": "invoke", "f": "read", "time": "now"}'], 1, '"time" must be'),
        (['{"process": 1, "type": "ok", "f": "read", "value": 1}'], 1, "invoked nothing"),
        (
            [
                '{"process": 1, "type": "invoke", "f": "read"}',
                '{"process": 1, "type": "invoke", "f": "write", "value": 2}',
            ],
            2,
            "has not completed",
        ),
        (
            [
                '{"process": 1, "type": "invoke", "f": "read"}',
                '{"process": 1, "type": "ok", "f": "write"}',
            ],
            2,
            "completes write but process 1 invoked read",
        ),
        (
            [
                '{"process": 1, "type": "invoke", "f": "get", "key": "a"}',
                '{"process": 1, "type": "ok", "f": "get", "key": "b", "value": ""}',
            ],
            2,
            "completes key",
        ),
    ],
)
def test_bad_input_names_the_line_and_the_problem(events: list[str], line: int, words: str) -> None:
    with pytest.raises(HistoryError) as caught:
        parse_history(events, source="bad.jsonl")
    error = caught.value
    assert (error.source, error.line) == ("bad.jsonl", line)
    assert words in error.reason
    assert str(error).startswith(f"bad.jsonl:{line}: ")


def test_limits() -> None:
    invoke = '{"process": %d, "type": "invoke", "f": "read"}'
    with pytest.raises(HistoryError, match="more than the limit of 2 operations") as caught:
        parse_history([invoke % p for p in range(3)], limits=HistoryLimits(max_operations=2))
    assert caught.value.line == 3
    long_line = '{"process": 1, "type": "invoke", "f": "read", "pad": "%s"}' % ("x" * 100)
    with pytest.raises(HistoryError, match="longer than the limit of 64 bytes"):
        parse_history([long_line], limits=HistoryLimits(max_line_bytes=64))


def test_load_history_reads_files_and_reports_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text("".join(dump_events([Event(0, "invoke", "read"), Event(0, "ok", "read", 5)])))
    (op,) = load_history(path).operations
    assert op.output == 5 and op.status is Status.OK
    with pytest.raises(HistoryError, match="cannot read") as caught:
        load_history(tmp_path / "missing.jsonl")
    assert caught.value.line == 0
    path.write_text('{"process": 0, "type": "invoke", "f": "read", "pad": "' + "x" * 200 + '"}\n')
    with pytest.raises(HistoryError, match="longer than the limit") as too_long:
        load_history(path, HistoryLimits(max_line_bytes=100))
    assert too_long.value.line == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values)
def test_freeze_is_hashable_and_thaw_inverts_it(value: Any) -> None:
    frozen = freeze(value)
    hash(frozen)
    assert thaw(frozen) == value
    assert freeze(thaw(frozen)) == frozen


def test_frozen_values_keep_json_distinctions() -> None:
    assert freeze(True) is JSON_TRUE and freeze(False) is JSON_FALSE
    assert freeze(True) != 1 and freeze(False) != 0
    assert freeze([1, 2]) == (1, 2)
    assert freeze({"a": 1}) != freeze([["a", 1]])
    assert isinstance(freeze({"b": 1, "a": 2}), JsonObject)
    assert freeze({"b": 1, "a": 2}) == freeze({"a": 2, "b": 1})


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["ok", "fail", "info"]), st.integers(-5, 5)),
        max_size=20,
    )
)
def test_events_written_by_dump_events_read_back(script: list[tuple[int, str, int]]) -> None:
    """Writers (workloads, the simulator) and the parser agree on the format."""
    events: list[Event] = []
    in_flight: set[int] = set()
    for process, outcome, value in script:
        if process in in_flight:
            events.append(Event(process, outcome, "write", value, key="k", time=len(events)))
            in_flight.discard(process)
        else:
            events.append(Event(process, "invoke", "write", value, key="k", time=len(events)))
            in_flight.add(process)
    text = list(dump_events(events))
    from_text = parse_history(text)
    from_memory = history_from_events(events)
    assert from_text.operations == from_memory.operations
    assert len(from_text.operations) == sum(1 for e in events if e.type == "invoke")
