"""`python -m raftcluster demo` really runs: replicas agree, the retry is deduplicated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftcluster", "demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_prints_what_happens_and_exits_zero() -> None:
    done = demo()
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "succeeded=True, two writes in revision 5" in out
    assert "answered from the session cache, applied once: True (host version 2)" in out
    assert "reading revision 2 now raises Compacted" in out
    assert "a fourth replica starts from replica 1's snapshot" in out
    assert "identical: True" in out
    assert done.stderr == ""


def test_demo_json_reports_four_identical_snapshots() -> None:
    done = demo("--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["identical"] is True and summary["deduplicated"] is True
    assert len(summary["snapshot_hashes"]) == 4 and len(set(summary["snapshot_hashes"])) == 1
    assert summary["entries"] == 8
