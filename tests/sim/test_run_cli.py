"""`raftcluster chaos run`: JSON and text output, files, exit statuses (a violation's exit
status 1: tests/sim/test_mutants.py, where each found seed is replayed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.checker import load_history
from raftcluster.cli import main


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["chaos", "run", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_output_has_the_verdict_hash_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "--seed", "3", "--nodes", "3", "--duration", "10")
    assert code == 0 and data["verdict"] == "ok"
    assert len(str(data["trace_hash"])) == 64
    counts = data["counts"]
    assert isinstance(counts, dict)
    for key in (
        "elections",
        "leaders",
        "proposals_committed",
        "acknowledged_writes",
        "faults",
        "crashes",
        "network",
    ):
        assert key in counts
    assert set(counts["network"]) >= {"sent", "lost", "cut", "duplicated", "delivered"}
    assert data["replay"] == "raftcluster chaos run --seed 3 --nodes 3 --duration 10"


def test_text_output_says_the_verdict_and_how_to_replay(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "run", "--seed", "4", "--nodes", "3", "--duration", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("seed 4: OK")
    assert "replay: raftcluster chaos run --seed 4 --nodes 3 --duration 5" in out


def test_history_and_trace_files_are_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history, trace = tmp_path / "history.jsonl", tmp_path / "trace.jsonl"
    args = [
        "--seed",
        "5",
        "--nodes",
        "3",
        "--duration",
        "5",
        "--history",
        str(history),
        "--trace",
        str(trace),
    ]
    code, data = run_json(capsys, *args)
    assert code == 0
    assert len(load_history(history).operations) > 10
    lines = trace.read_text().splitlines()
    assert len(lines) == data["trace_records"] and json.loads(lines[-1])["kind"] == "end"
    assert main(["chaos", "check", str(history), "--model", "kv"]) == 0  # the checker agrees


@pytest.mark.parametrize(
    "bad", [["--nodes", "0"], ["--duration", "-1"], ["--nemesis", "nope"], ["--workload", "nope"]]
)
def test_bad_arguments_exit_2(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "run", *bad]) == 2
    assert "error" in capsys.readouterr().err
