"""`raftcluster chaos live --workload groups`: real nodes run four probe groups under
kill -9 and SIGSTOP pauses (partitions too under soak); no group ever runs twice at
once (the probes' lock), epochs never go back, every group comes back where the state
says, and no process of the run outlives the command.

The default-suite run: 20 s of faults on 3 nodes (about 35 s in all on a quiet machine).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaos.live.groups.declare import LIVE_GROUP_NAMES
from chaos.live.groups.run import processes_naming
from chaos.live.schedule import plan
from chaos.report import read_record

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 240


def live_groups(tmp_path: Path, *flags: str) -> tuple[int, dict[str, Any], str]:
    command = [
        sys.executable, "-m", "raftcluster", "chaos", "live", "--workload", "groups",
        "--keep", str(tmp_path / "cluster"), "--report", str(tmp_path / "report"), "--json",
        *flags,
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S, check=False
    )
    answer = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, answer, done.stderr


def _is_clean(tmp_path: Path, code: int, answer: dict[str, Any], stderr: str) -> None:
    assert code == 0, (answer, stderr[-3000:])
    assert answer["checks"] == {"double-runs": "ok", "epochs": "ok", "groups-back": "ok"}
    assert answer["double_runs"] == 0
    assert set(answer["groups"]) == set(LIVE_GROUP_NAMES)
    assert all(a is not None for a in answer["groups"].values()), answer["groups"]
    assert answer["counts"]["groups.starts"] >= len(LIVE_GROUP_NAMES)
    assert answer["after_heal_ms"]["groups_back"] is not None
    record = read_record(tmp_path / "report")
    assert record.run.workload == "groups" and record.run.verdict.value == "ok"
    log = (tmp_path / "cluster" / "probes.jsonl").read_text().splitlines()
    assert not any("double_run" in line for line in log)
    assert answer["leftovers"] == [], answer["notes"]  # every probe ended with its node
    assert not processes_naming(tmp_path / "cluster")  # no node, watchdog or probe left


def test_the_cluster_service_under_kill_and_pause(tmp_path: Path) -> None:
    code, answer, stderr = live_groups(
        tmp_path, "--nodes", "3", "--duration", "20", "--seed", "5", "--nemesis", "kill,pause"
    )
    _is_clean(tmp_path, code, answer, stderr)
    counts = answer["counts"]
    assert counts["faults.kill"] >= 1 and counts["faults.pause"] >= 1, counts
    assert counts.get("faults.failed", 0) == 0, answer["notes"]
    kinds = {f.split()[0] for f in answer["faults"]}
    assert {"kill", "pause"} <= kinds


@pytest.mark.soak
def test_the_cluster_service_under_partitions_kills_and_pauses(tmp_path: Path) -> None:
    code, answer, stderr = live_groups(
        tmp_path, "--nodes", "3", "--duration", "120", "--seed", "11",
        "--nemesis", "partition,kill,pause",
    )  # fmt: skip
    _is_clean(tmp_path, code, answer, stderr)
    assert answer["counts"]["groups.failovers"] >= 1, answer


def test_a_pause_is_planned_on_the_leader_or_a_seeded_node() -> None:
    steps = plan(random.Random(2), ["pause"], (1, 2, 3), duration_ms=30_000, warmup_ms=1_000)
    assert steps and {s.nemesis for s in steps} == {"pause"}
    assert {s.target for s in steps} <= {"leader", "node"}
    assert all(s.node in (1, 2, 3) for s in steps)
