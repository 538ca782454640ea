"""`raftcluster chaos check`, end to end as a subprocess: verdicts, exit statuses, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.hard_histories import CASES, recorded
from chaos.checker.corpus import find_corpus
from chaos.commands.check import parse_options
from tests.checker_reference import hard_register_history

CORPUS = find_corpus()
OK_FILE = CORPUS / "etcd-register" / "etcd_005.jsonl"
ILLEGAL_FILE = CORPUS / "etcd-register" / "etcd_000.jsonl"
ETCD = ["--model", "register", "--option", "initial=null", "--option", "fail=definite"]


def chaos_check(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftcluster", "chaos", "check", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def answer(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run.stdout)
    return data


def test_ok_history() -> None:
    run = chaos_check(OK_FILE, *ETCD, "--json", "--linearization")
    assert run.returncode == 0, run.stderr
    data = answer(run)
    assert data["verdict"] == "ok" and data["witness"] is None and data["reason"] is None
    assert data["operations"]["total"] == 79 and data["partitions"]["count"] == 1
    assert data["options"] == {"initial": None, "fail": "definite", "read_nil": "only-while-absent"}
    assert isinstance(data["elapsed_s"], float) and data["file"] == str(OK_FILE)
    assert len(data["linearizations"]) == 1
    human = chaos_check(OK_FILE, *ETCD)
    assert human.returncode == 0 and ": OK (register; 79 operations" in human.stdout


def test_illegal_history_with_its_witness() -> None:
    run = chaos_check(ILLEGAL_FILE, *ETCD, "--json")
    assert run.returncode == 1, run.stderr
    data = answer(run)
    assert data["verdict"] == "illegal"
    witness = data["witness"]
    assert witness["blocked"] in witness["candidates"]
    assert witness["core"] and witness["core_minimal"] is True
    named = set(witness["prefix"]) | set(witness["candidates"]) | set(witness["core"])
    assert {int(k) for k in witness["operations"]} == named
    blocked = witness["operations"][str(witness["blocked"])]
    assert blocked["description"] == "read() -> 2" and blocked["status"] == "ok"
    human = chaos_check(ILLEGAL_FILE, *ETCD, "--core-timeout", "0")
    assert human.returncode == 1
    assert "ILLEGAL" in human.stdout and "none of these can follow" in human.stdout
    assert "core" not in human.stdout  # --core-timeout 0 skips it


def test_unknown_when_the_budget_runs_out(tmp_path: Path) -> None:
    # The search looks at the clock every 512 configurations; this history needs ~24,000.
    hard = tmp_path / "hard.jsonl"
    hard.write_text("".join(json.dumps(e) + "\n" for e in hard_register_history(12)))
    run = chaos_check(hard, "--model", "register", "--timeout", "1e-9", "--json")
    assert run.returncode == 2
    data = answer(run)
    assert data["verdict"] == "unknown" and "time budget ran out" in data["reason"]


def test_the_memory_budget_stops_the_search_at_the_same_place_in_any_process(
    tmp_path: Path,
) -> None:
    """The search and what it counts are a function of the history: not of the hash seed
    (string hashes differ from process to process), the allocator or the machine."""
    case = next(c for c in CASES if c.name == "kv-c50-k10-n40-p05-s1")  # 36 MiB to decide
    hard = tmp_path / "hard.jsonl"
    hard.write_text("".join(json.dumps(e) + "\n" for e in recorded(case)))
    runs = [
        chaos_check(
            hard, "--model", "kv", "--max-memory", "12", "--json", env={"PYTHONHASHSEED": seed}
        )
        for seed in ("1", "2")
    ]
    assert [run.returncode for run in runs] == [2, 2]
    first, second = (answer(run) for run in runs)
    assert first["verdict"] == "unknown" and "memory budget (12.0 MiB) reached" in first["reason"]
    for field in ("configurations", "memory_mib", "reason", "operations", "partitions"):
        assert first[field] == second[field], field


@pytest.mark.parametrize(
    ("args", "kind", "words"),
    [
        (["missing.jsonl", "--model", "register"], "history", "cannot read"),
        (["BAD", "--model", "register"], "history", ":2: not valid JSON"),
        ([OK_FILE, "--model", "queue"], "model", "unknown model"),
        (
            [OK_FILE, "--model", "register", "--option", "colour=red"],
            "model",
            "unknown option colour",
        ),
        (
            [OK_FILE, "--model", "register", "--option", "fail=sometimes"],
            "model",
            "fail must be one of",
        ),
        ([OK_FILE, "--model", "register", "--option", "initial"], "usage", "expected KEY=VALUE"),
        (
            [OK_FILE, "--model", "register", "--option", "initial=1", "--option", "initial=2"],
            "usage",
            "given twice",
        ),
        ([OK_FILE, "--model", "register", "--timeout", "0"], "usage", "--timeout must be positive"),
        ([OK_FILE, "--model", "kv"], "model", "line 1: read needs a key"),
    ],
)
def test_bad_input_gives_a_clear_error(
    tmp_path: Path, args: list[Any], kind: str, words: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"process": 0, "type": "invoke", "f": "read"}\n{"process": 0, "type": "ok",\n')
    paths = {"BAD": bad, "missing.jsonl": tmp_path / "missing.jsonl"}
    run = chaos_check(*[paths.get(a, a) if isinstance(a, str) else a for a in args], "--json")
    assert run.returncode == 2
    assert words in run.stderr and run.stderr.startswith("raftcluster chaos check: error: ")
    data = answer(run)
    assert (
        data["verdict"] is None
        and data["error"]["kind"] == kind
        and words in data["error"]["message"]
    )
    if kind == "history":
        assert data["error"]["line"] == (2 if "BAD" in args else 0)


def test_usage_errors_from_argparse_also_exit_2() -> None:
    run = chaos_check(OK_FILE)  # no --model
    assert run.returncode == 2 and "--model" in run.stderr


def test_option_values_are_json_when_they_parse() -> None:
    assert parse_options(["initial=null", "a=0", "b=definite", "c=[1, 2]", 'd="x"', "e=a=b"]) == {
        "initial": None,
        "a": 0,
        "b": "definite",
        "c": [1, 2],
        "d": "x",
        "e": "a=b",
    }
