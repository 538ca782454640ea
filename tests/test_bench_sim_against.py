"""`python -m bench.sim_against COMMIT` runs the default seed on an older tree and on this
one, in fresh processes, and reports both and their ratio; a bad commit is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import sim_against


def test_it_measures_both_trees_and_their_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    head = subprocess.run(
        ["git", "-C", str(sim_against.HERE), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert sim_against.main([head, "--rounds", "1", "--duration", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["then_commit"] == head and result["rounds"] == 1
    for tree in ("then", "now"):
        assert result[tree]["virtual_s_per_wall_s"] > 0
        assert len(result[tree]["each_per_wall_s"]) == 1
    then, now = result["then"], result["now"]
    ratio = now["virtual_s_per_wall_s"] / then["virtual_s_per_wall_s"]
    assert abs(result["ratio_virtual_s_per_wall_s"] - ratio) < 1e-9
    for tree in ("then", "now"):  # the best round is at least as good as the median
        assert result[tree]["best_virtual_s_per_cpu_s"] >= result[tree]["virtual_s_per_cpu_s"]
    best = now["best_virtual_s_per_cpu_s"] / then["best_virtual_s_per_cpu_s"]
    assert abs(result["ratio_best_virtual_s_per_cpu_s"] - best) < 1e-9


def test_an_unknown_commit_is_one_line_and_status_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.sim_against", "no-such-commit", "--rounds", "1"],
        capture_output=True, text=True, cwd=sim_against.HERE,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "no-such-commit" in done.stderr
