"""The bank on the chaos command line, as a user runs it (docs/your-state-machine.md):
`chaos run --part --workload` (and its report), `chaos check --model`, `chaos regress`,
a bad path's one-line error before the run, and the vacuous verdict's exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.campaign import regress
from chaos.checker import load_history
from raftcluster.cli import main

BANK = ["--part", "examples.bank:BANK", "--workload", "examples.bank:BankWorkload"]
SHORT = ["--nodes", "3", "--duration", "5"]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["chaos", "run", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_chaos_run_runs_the_bank_and_writes_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.jsonl"
    report = tmp_path / "report"
    code, data = run_json(
        capsys, "--seed", "4", *SHORT, *BANK, "--history", str(history), "--report", str(report)
    )
    assert code == 0 and data["verdict"] == "ok", data
    assert data["checks"]["stats"] == "ok" and data["checks"]["linearizable"] == "ok"
    assert data["counts"]["part_invariant_checks"] > 0
    assert data["replay"].endswith(
        "--workload examples.bank:BankWorkload --part examples.bank:BANK"
    ), data["replay"]
    html = (report / "report.html").read_text()
    assert '<span class="pill v-ok">ok</span> stats' in html
    assert "chaos check history.jsonl --model examples.bank:BankModel" in html
    # The recorded history checks again from the command line, with the model by path.
    assert main(["chaos", "check", str(history), "--model", "examples.bank:BankModel"]) == 0
    assert "OK" in capsys.readouterr().out.upper()
    assert load_history(history).operations


def test_the_planted_bug_is_found_and_named(capsys: pytest.CaptureFixture[str]) -> None:
    buggy = ["--part", "examples.bank.buggy:BANK", "--workload", "examples.bank:BankWorkload"]
    code, data = run_json(capsys, "--seed", "1", *SHORT, *buggy)
    assert code == 1 and data["verdict"] == "violation"
    assert data["violation"]["invariant"] == "part-invariant"
    assert "--part examples.bank.buggy:BANK" in data["replay"]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--part", "examples.bank:NOPE"], "examples.bank:NOPE: examples.bank has no attribute"),
        (["--workload", "nowhere_xyz:W"], "nowhere_xyz:W: no module named 'nowhere_xyz'"),
        (["--model", "examples.bank:BANK"], "examples.bank:BANK"),
        (["--part", "not a path"], "not an import path"),
    ],
)
def test_a_bad_path_is_one_line_and_exit_2_before_the_run(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chaos", "run", "--seed", "1", *SHORT, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and says in err, err


def test_a_vacuous_run_exits_3_unless_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    refused = [*BANK[:2], "--workload", "tests.bank.refused:RefusedTransfers"]
    args = ["chaos", "run", "--seed", "2", *SHORT, "--heal-timeout", "4", *refused]
    assert main(args) == 3
    out = capsys.readouterr().out
    assert out.startswith("seed 2: VACUOUS")
    assert "proved nothing: no transfer succeeded while the faults were on; " in out
    assert "stats failed" in out
    assert main([*args, "--allow-vacuous"]) == 0
    capsys.readouterr()


def test_regress_records_the_paths_and_replays_the_seed(tmp_path: Path) -> None:
    args = ["chaos", "regress", "--seed", "5", *SHORT, *BANK, "--into", str(tmp_path)]
    assert main(args) == 0
    (entry,) = regress.read_entries(tmp_path)
    assert entry.spec.parts == ("examples.bank:BANK",)
    assert entry.spec.workload == "examples.bank:BankWorkload"
    assert entry.expect == "ok"
    assert regress.replay_entry(entry, regress.engine_fingerprint()) == []
