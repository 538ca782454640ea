"""`python -m raftcluster demo` really runs: the live demo passes every check (its cluster
survives the loss of its leader; its group fails over and back), and the
in-process one (`--in-process`) shows the replicas agree and the retry deduplicated."""

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
        timeout=180,
        check=False,
    )


def test_the_live_demo_survives_the_loss_of_its_leader(tmp_path: Path) -> None:
    done = demo("--dir", str(tmp_path / "cluster"))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in range(1, 12):
        assert f"step {step}: " in out
    assert "killed by SIGKILL" in out and "FAIL" not in out
    assert "acknowledged writes read back" in out and "caught up: applied index" in out
    assert "the page answers: 'served by node 1 (epoch 1)'" in out
    assert "web fails over to node" in out and "web is back on node 1" in out
    # the events, one line each as `raftcluster events` prints them
    assert "  group web  placed on node 1 by start (epoch 1): " in out
    assert "  node 1  DOWN\n" in out and "  group web  defined\n" in out
    assert out.count("exited with status 0") == 3
    assert out.rstrip().endswith("demo passed: 9 of 9 checks")
    assert not (tmp_path / "cluster").exists()  # removed unless --keep


def test_the_live_demo_reports_in_json(tmp_path: Path) -> None:
    done = demo("--json", "--dir", str(tmp_path / "cluster"), "--keep")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] is True and summary["passed"] == summary["checks"] == 9
    assert (tmp_path / "cluster" / "cluster.toml").exists()


def test_the_in_process_demo_prints_what_happens_and_exits_zero() -> None:
    done = demo("--in-process")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "succeeded=True, two writes in revision 5" in out
    assert "answered from the session cache, applied once: True (host version 2)" in out
    assert "reading revision 2 now raises Compacted" in out
    assert "a fourth replica starts from replica 1's snapshot" in out
    assert "identical: True" in out
    assert done.stderr == ""


def test_the_in_process_demo_json_reports_four_identical_snapshots() -> None:
    done = demo("--in-process", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["identical"] is True and summary["deduplicated"] is True
    assert len(summary["snapshot_hashes"]) == 4 and len(set(summary["snapshot_hashes"])) == 1
    assert summary["entries"] == 8
