"""`python -m bench.sm_against COMMIT` measures the apply and query path of an older tree
and of this one, in fresh processes, with calls per operation; a bad commit is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import sm_against


def test_it_measures_both_trees_with_their_calls(capsys: pytest.CaptureFixture[str]) -> None:
    head = subprocess.run(
        ["git", "-C", str(sm_against.HERE), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert sm_against.main([head, "--rounds", "1", "--count", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["then_commit"] == head and result["rounds"] == 1 and result["count"] == 300
    then, now = result["then"], result["now"]
    for tree in (then, now):
        for op in ("put", "get"):
            assert tree[f"{op}_us_best"] > 0 and tree[f"{op}_us_median"] >= tree[f"{op}_us_best"]
            # A put goes through decode, the session table, kv, two encodes: dozens of calls.
            assert tree[f"{op}_calls"] > 20
    # The committed tree is this one's code (a clean checkout): calls are deterministic.
    assert then["put_calls"] == now["put_calls"] and then["get_calls"] == now["get_calls"]
    ratio = then["put_us_best"] / now["put_us_best"]
    assert abs(result["ratio_put_us_best"] - ratio) < 1e-9


def test_an_unknown_commit_is_one_line_and_status_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.sm_against", "no-such-commit", "--rounds", "1"],
        capture_output=True, text=True, cwd=sm_against.HERE,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "no-such-commit" in done.stderr
