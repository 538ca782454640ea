"""`raftcluster chaos run --report DIR` for each engine, as a user runs it: the report
directory is written, names the engine that ran and its settings, and shows what the
nemesis did (the crashes as kill bars and crashed intervals, one for each crash counted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chaos.report import IntervalKind, Record, RunVerdict, read_record

FILES = {"summary.json", "history.jsonl", "trace.jsonl", "report.html"}
ROOT = Path(__file__).resolve().parents[2]  # `-m raftcluster` imports this checkout's code


def run_report(directory: Path, *args: str) -> tuple[int, Record]:
    """`python -m raftcluster chaos run ... --report DIR` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-m", "raftcluster", "chaos", "run", *args, "--report", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 2: the run broke off, or bad arguments
    assert {p.name for p in directory.iterdir()} == FILES
    record = read_record(directory)
    expected = RunVerdict.OK if done.returncode == 0 else RunVerdict.VIOLATION
    assert record.run.verdict is expected, done.stdout
    assert f"report: {directory / 'report.html'}" in done.stdout
    return done.returncode, record


def trace_kinds(directory: Path) -> list[str]:
    lines = (directory / "trace.jsonl").read_text().splitlines()
    return [json.loads(line)["kind"] for line in lines]


def check_crashes(record: Record, directory: Path) -> None:
    """Every crash is a kill bar and a crashed interval on its node, from the crash to
    the restart (or the end)."""
    crashes = record.run.count("crashes")
    kills = [f for f in record.faults if f.kind == "kill"]
    crashed = [i for i in record.intervals if i.kind is IntervalKind.CRASHED]
    assert crashes > 0 and len(kills) == len(crashed) == crashes
    assert trace_kinds(directory).count("crash") == crashes
    for kill in kills:
        (node,) = kill.nodes
        assert any(i.node == node and i.start_ms == kill.start_ms for i in crashed), kill
    page = (directory / "report.html").read_text()
    assert page.count('class="fault k-kill"') == crashes


def test_a_pysyncobj_run_with_the_kill_nemesis(tmp_path: Path) -> None:
    args = ["--engine", "pysyncobj", "--nemesis", "kill", "--seed", "3", "--nodes", "3"]
    _, record = run_report(tmp_path, *args, "--duration", "20")
    run = record.run
    assert run.engine.value == "pysyncobj" and run.nemeses == ("kill",)
    assert dict(run.settings)["raft_min_timeout_ms"] > 0  # pysyncobj's own settings
    assert run.replay == "raftcluster chaos run --seed 3 --nodes 3 --duration 20 " + (
        "--nemesis kill --engine pysyncobj"
    )
    check_crashes(record, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "<title>seed 3 \u00b7 " in page and " \u00b7 pysyncobj chaos run</title>" in page
    assert '<p class="facts settings">pysyncobj settings: ' in page
    assert {"engine", "start", "crash", "role", "end"} <= set(trace_kinds(tmp_path))


def test_our_engine_with_the_figure8_nemesis(tmp_path: Path) -> None:
    args = ["--nemesis", "figure8", "--seed", "1", "--nodes", "3", "--duration", "20"]
    _, record = run_report(tmp_path, *args)
    run = record.run
    assert run.engine.value == "raftcluster" and run.nemeses == ("figure8",)
    assert {"election_timeout_ms", "pre_vote", "check_quorum"} <= dict(run.settings).keys()
    check_crashes(record, tmp_path)
    partitions = [f for f in record.faults if f.kind == "partition"]
    assert len(partitions) == run.count("faults.partition") > 0
    assert all(f.groups for f in partitions)  # each with its sides
    page = (tmp_path / "report.html").read_text()
    assert '<p class="facts settings">raftcluster settings: ' in page
