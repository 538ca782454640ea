"""`raftcluster chaos regress`: a seed becomes an entry that the suite replays; a fixed
bug, a lost determinism and a refresh each show as they should."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from chaos.campaign import regress
from raftcluster.cli import main
from tests.sim.plant import send_everything_early

# Fails with the bug of tests/sim/plant.py planted.
FAILING = ["--seed", "1", "--nodes", "5", "--duration", "20"]


def test_the_command_records_a_seed_that_the_suite_then_replays(tmp_path: Path) -> None:
    args = ["--seed", "3", "--nodes", "3", "--duration", "5", "--into", str(tmp_path)]
    for _ in range(2):  # recording the same run again replaces its entry
        done = subprocess.run(
            [sys.executable, "-m", "raftcluster", "chaos", "regress", *args, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    (entry,) = regress.read_entries(tmp_path)
    assert entry.to_json() == answer["entry"]
    assert entry.expect == entry.found == "ok"
    assert entry.spec.replay() == "raftcluster chaos run --seed 3 --nodes 3 --duration 5"
    assert entry.trace_hash == answer["run"]["trace_hash"]
    assert entry.engine == regress.engine_fingerprint()
    assert regress.replay_entry(entry, regress.engine_fingerprint()) == []


def test_a_failing_seed_is_expected_to_fail_until_fixed_then_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    into = ["--into", str(tmp_path)]
    with monkeypatch.context() as patch:
        send_everything_early(patch)  # the bug
        assert main(["chaos", "regress", *FAILING, *into]) == 0
        (entry,) = regress.read_entries(tmp_path)
        assert entry.expect == entry.found != "ok"
        assert "once the bug is fixed" in capsys.readouterr().out
        assert regress.replay_entry(entry, entry.engine) == []  # it still fails the same way
    # The fix is new code: the recorded trace hash no longer applies, the outcome does.
    problems = regress.replay_entry(entry, "new code")
    assert len(problems) == 1 and "Fixed? Record it as a passing seed" in problems[0]
    assert "raftcluster chaos regress --seed 1 --nodes 5 --duration 20" in problems[0]
    assert main(["chaos", "regress", *FAILING, *into]) == 0  # the command it printed
    (fixed,) = regress.read_entries(tmp_path)
    assert fixed.expect == "ok" and fixed.found == entry.found  # what it once found is kept
    assert regress.replay_entry(fixed, regress.engine_fingerprint()) == []


def test_expect_ok_records_a_failing_seed_as_a_test_that_fails_until_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    send_everything_early(monkeypatch)
    assert main(["chaos", "regress", *FAILING, "--into", str(tmp_path), "--expect-ok"]) == 0
    (entry,) = regress.read_entries(tmp_path)
    assert entry.expect == "ok" and entry.found != "ok"
    (problem,) = regress.replay_entry(entry, entry.engine)
    assert f"gave {entry.found!r}, expected 'ok'" in problem


def test_the_trace_hash_is_checked_while_the_code_is_the_same(tmp_path: Path) -> None:
    args = ["--seed", "4", "--nodes", "3", "--duration", "5", "--into", str(tmp_path)]
    assert main(["chaos", "regress", *args]) == 0
    (entry,) = regress.read_entries(tmp_path)
    other = attrs.evolve(entry, trace_hash="0" * 64)
    (problem,) = regress.replay_entry(other, entry.engine)
    assert "no longer a function of its seed" in problem
    assert regress.replay_entry(other, "changed code") == []
    # --refresh records the hashes the current code gives.
    regress.write_entries(tmp_path, [attrs.evolve(other, engine="old")])
    assert main(["chaos", "regress", "--refresh", "--into", str(tmp_path)]) == 0
    assert regress.read_entries(tmp_path) == [entry]


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "regress", "--into", str(tmp_path)]) == 2  # no --seed
    assert main(["chaos", "regress", "--seed", "1", "--nodes", "0", "--into", str(tmp_path)]) == 2
    (tmp_path / "seeds.json").write_text('{"format": 9}')
    assert main(["chaos", "regress", "--seed", "1", "--into", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err
