"""The report directory: what it holds, that `raftcluster chaos check` reads its history
back with the record's verdict, atomic writes, and same seed, same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from chaos.checker.values import thaw
from chaos.report import directory
from chaos.report.directory import (
    check_history,
    history_events,
    history_lines,
    read_record,
    write_report,
)
from chaos.report.errors import RecordError
from chaos.report.example import Example, build
from chaos.report.record import ClientOp, OpType, Record, RunVerdict
from tests.report_records import minimal_record, records

FILES = {"summary.json", "history.jsonl", "trace.jsonl", "report.html"}


@pytest.fixture(scope="module")
def illegal() -> Example:
    return build(7)


@pytest.fixture(scope="module")
def linearizable() -> Example:
    return build(7, violation=False)


def chaos_check(history: Path, record: Record) -> subprocess.CompletedProcess[str]:
    (checker,) = record.checkers
    assert checker.model is not None
    args = ["--model", checker.model]
    for key, value in sorted(thaw(checker.options).items()):
        args += ["--option", f"{key}={json.dumps(value)}"]
    return subprocess.run(
        [sys.executable, "-m", "raftcluster", "chaos", "check", str(history), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "status", "verdict"), [("illegal", 1, "illegal"), ("linearizable", 0, "ok")]
)
def test_the_history_checks_back_with_the_records_verdict(
    name: str, status: int, verdict: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    example: Example = request.getfixturevalue(name)
    paths = write_report(tmp_path / "run", example.record, example.history, example.trace)
    assert {p.name for p in paths.directory.iterdir()} == FILES
    run = chaos_check(paths.history, example.record)
    assert run.returncode == status, run.stderr
    answer: dict[str, Any] = json.loads(run.stdout)
    assert answer["verdict"] == verdict
    assert answer["operations"]["total"] == len(example.record.operations)
    expected = RunVerdict.VIOLATION if verdict == "illegal" else RunVerdict.OK
    assert example.record.run.verdict is expected
    if verdict == "illegal":
        (violation,) = example.record.violations
        assert violation.witness is not None
        assert answer["witness"]["blocked"] == violation.witness.blocked
        assert answer["witness"]["prefix"] == list(violation.witness.prefix)


def test_files_read_back(illegal: Example, tmp_path: Path) -> None:
    paths = write_report(tmp_path, illegal.record, illegal.history, illegal.trace)
    assert read_record(tmp_path) == illegal.record
    assert paths.history.read_text() == "".join(illegal.history)
    assert paths.trace.read_text() == "".join(illegal.trace)
    assert paths.html.read_text().startswith("<!DOCTYPE html>")
    assert oct(paths.summary.stat().st_mode & 0o777) == "0o644"


def test_same_seed_same_bytes_except_wall_clock(tmp_path: Path) -> None:
    """Two builds of one seed: identical history, trace and page; summaries that differ in
    `run.wall` alone."""
    first, second = build(3), build(3)
    a = write_report(tmp_path / "a", first.record, first.history, first.trace)
    b = write_report(tmp_path / "b", second.record, second.history, second.trace)
    for name in ("history.jsonl", "trace.jsonl", "report.html"):
        assert (a.directory / name).read_bytes() == (b.directory / name).read_bytes(), name
    summaries = [json.loads(p.read_text()) for p in (a.summary, b.summary)]
    for summary in summaries:
        assert summary["run"].pop("wall").keys() == {"checker_s"}
    assert summaries[0] == summaries[1]


def test_a_history_that_is_not_the_records_is_refused_before_writing(
    illegal: Example, linearizable: Example, tmp_path: Path
) -> None:
    with pytest.raises(RecordError) as caught:
        write_report(tmp_path / "run", illegal.record, linearizable.history, illegal.trace)
    assert caught.value.path.startswith("history.jsonl:")
    assert "in the history but" in caught.value.reason
    assert not (tmp_path / "run").exists()
    count = len(illegal.record.operations)
    with pytest.raises(RecordError, match=f"holds 2 operations, the record {count}$"):
        write_report(tmp_path / "run", illegal.record, illegal.history[:2], illegal.trace)
    with pytest.raises(RecordError, match=r"history.jsonl:1: not valid JSON"):
        write_report(tmp_path / "run", illegal.record, "{\n", illegal.trace)
    assert not (tmp_path / "run").exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    illegal: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_report(tmp_path, illegal.record, illegal.history, illegal.trace)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(directory.os, "replace", broken_replace)
    changed = attrs.evolve(illegal.record, notes=("changed",))
    with pytest.raises(OSError, match="No space"):
        write_report(tmp_path, changed, illegal.history, ["other\n"])
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # every file still the old one, no temporary left


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_any_record_has_a_history_file_that_holds_its_operations(record: Record) -> None:
    check_history(record, "".join(history_lines(record)).encode())


def test_history_order_at_equal_times() -> None:
    """An answer at the instant of another call comes first; an operation that takes no
    time is answered after its own call; a process's next call follows its answer."""
    record = minimal_record(
        operations=(
            ClientOp(0, 1, "write", 1, None, OpType.OK, 0, 10),
            ClientOp(1, 2, "read", None, 1, OpType.OK, 10, 10),
            ClientOp(2, 2, "read", None, 1, OpType.OK, 10, 12),
            ClientOp(3, 1, "write", 2, None, OpType.INFO, 10, None),
        )
    )
    events = [(e.process, e.type) for e in history_events(record)]
    assert events == [
        (1, "invoke"),
        (1, "ok"),  # at 10, before the calls at 10
        (2, "invoke"),
        (2, "ok"),  # its own call first
        (2, "invoke"),
        (1, "invoke"),
        (2, "ok"),
    ]


def test_the_example_command_writes_a_report(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "chaos.report.example", str(tmp_path / "ex"), "--seed", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("violation: ") and run.stdout.strip().endswith("report.html")
    record = read_record(tmp_path / "ex")
    kinds = {f.kind for f in record.faults}
    assert {"partition", "kill"} <= kinds
    assert {op.type for op in record.operations} == set(OpType)
    assert len({i.term for i in record.intervals if i.kind.value == "leader"}) == 2
    assert record.violations[0].kind == "linearizability"
    assert "--seed 2" in record.run.replay


@pytest.mark.parametrize("seed", range(1, 13))
def test_every_example_seed_shows_what_the_docs_promise(seed: int) -> None:
    """A partition, a leader change, a crash, every outcome, and a linearizability
    violation; without the planted bug, a linearizable history."""
    record = build(seed).record
    assert {f.kind for f in record.faults} >= {"partition", "kill"}
    assert any(i.kind.value == "crashed" for i in record.intervals)
    assert len({i.node for i in record.intervals if i.kind.value == "leader"}) == 2
    assert {op.type for op in record.operations} == set(OpType)
    assert [v.kind for v in record.violations] == ["linearizability"]
    assert build(seed, violation=False).record.run.verdict is RunVerdict.OK
