"""A simulator run as a report: the record follows the trace, and one seed gives the same
report bytes (but for `run.wall`) in any process."""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import attrs
import pytest

from chaos.campaign import sim_record
from chaos.campaign.sim_timeline import SimTimeline
from chaos.report import Fault, IntervalKind, RunVerdict, read_record
from chaos.report.record import KNOWN_VIOLATION_KINDS
from chaos.sim import KvWorkload, ScriptedFaults, SimConfig, simulate
from chaos.sim import simulator as simulator_module
from chaos.sim.events import FaultInjected
from chaos.sim.faults import (
    ClockDrift,
    ClockJump,
    Crash,
    CutLinks,
    HealNetwork,
    NetworkConditions,
    Partition,
    Pause,
    Restart,
)
from chaos.sim.faults import Fault as SimFault
from raftcluster.cli import main
from tests.sim.plant import send_everything_early

FILES = ("history.jsonl", "trace.jsonl", "report.html")
RUN = ["chaos", "run", "--seed", "5", "--nodes", "3", "--duration", "10"]


def report_in_subprocess(directory: Path, hash_seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-m", "raftcluster", *RUN, "--report", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_one_seed_gives_the_same_report_bytes_but_for_run_wall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert main([*RUN, "--report", str(first)]) == 0  # in this process
    report_in_subprocess(second, "123")  # in another, with another hash seed
    capsys.readouterr()
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    a, b = (json.loads((d / "summary.json").read_text()) for d in (first, second))
    assert set(a["run"]["wall"]) == {"elapsed_s"}
    del a["run"]["wall"], b["run"]["wall"]
    assert a == b
    assert sorted(p.name for p in first.iterdir()) == sorted([*FILES, "summary.json"])


def test_the_record_follows_the_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*RUN, "--report", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    record = read_record(tmp_path)
    assert record.trace_hash == data["trace_hash"]
    assert (
        record.run.replay
        == data["replay"]
        == "raftcluster chaos run --seed 5 --nodes 3 --duration 10"
    )
    assert record.run.verdict is RunVerdict.OK and record.violations == ()
    # Every counter flows through, flattened.
    assert record.run.count("elections") == data["counts"]["elections"]
    assert record.run.count("network.sent") == data["counts"]["network"]["sent"]
    # Terms that had a leader are the elections the simulator counted, one leader each.
    leaders = [i for i in record.intervals if i.kind is IntervalKind.LEADER]
    assert len({i.term for i in leaders}) == data["counts"]["elections"]
    assert all(
        len({i.node for i in leaders if i.term == t}) == 1 for t in {i.term for i in leaders}
    )
    # Each node has one role at a time, from the start to the end of the run.
    for node in record.run.nodes:
        roles = sorted(
            (i.start_ms, i.end_ms) for i in record.intervals if i.node == node and i.kind.is_role
        )
        assert roles[0][0] == 0 and all(a[1] <= b[0] for a, b in itertools.pairwise(roles))
    history = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(record.operations) == sum(1 for line in history if '"invoke"' in line) > 10
    lines = (tmp_path / "trace.jsonl").read_text().splitlines()
    assert len(lines) == data["trace_records"]


def scripted_record() -> tuple[list[Fault], list[tuple[int, str, float, float]]]:
    events = [
        (1_000, Partition(((1,), (2, 3)))),
        (2_000, HealNetwork()),
        (2_500, CutLinks(((1, 2),))),
        (3_000, Partition(((1, 2),))),  # node 3 in no group: cut from everyone
        (3_500, HealNetwork()),
        (4_000, Crash(2)),
        (5_000, Restart(2)),
        (6_000, Pause(3, 500)),
        (7_000, ClockJump(1, 1_500)),
        (7_500, ClockDrift(2, 30_000)),
        (8_000, NetworkConditions(loss=0.1, duplicate=0.05, max_delay_ms=200)),
        (9_000, NetworkConditions()),
    ]
    config = SimConfig(seed=2, nodes=3, duration_ms=10_000, keep_trace=True)
    result = simulate(config, ScriptedFaults(events), KvWorkload(), check_timeout_s=10)
    assert result.ok, result.violation
    record = sim_record(result, replay="replay", wall={})
    faults = [(f.kind, f.start_ms, f.end_ms, f.nodes, f.detail, f.groups) for f in record.faults]
    conditions = [
        (i.node, i.kind.value, i.start_ms, i.end_ms) for i in record.intervals if not i.kind.is_role
    ]
    return faults, conditions  # type: ignore[return-value]


def test_scripted_faults_become_bars_and_node_conditions() -> None:
    faults, conditions = scripted_record()
    # How much node 2 had not synced when it crashed is the engine's business (its sync
    # policy); that the bar says so is the report's (tests/campaign/test_sim_timeline.py).
    faults = [
        (k, s, e, n, re.sub(r"; [\d,]+ unsynced bytes lost(; a record torn)?$", "", d), g)
        for k, s, e, n, d, g in faults
    ]
    assert faults == [
        ("partition", 1_000, 2_000, (1, 2, 3), "{1} | {2,3}", ((1,), (2, 3))),
        ("link-cut", 2_500, 3_000, (1, 2), "links cut: 1→2", ()),
        ("partition", 3_000, 3_500, (1, 2, 3), "{1,2} | {3}", ((1, 2), (3,))),
        ("kill", 4_000, 5_000, (2,), "node 2 crashed", ()),
        ("pause", 6_000, 6_500, (3,), "node 3 paused for 500 ms", ()),
        ("clock-skew", 7_000, 7_000, (1,), "node 1's clock jumps +1,500 ms", ()),
        ("clock-skew", 7_500, None, (2,), "node 2's clock drifts +30,000 ppm", ()),
        ("duplicate", 8_000, 9_000, (1, 2, 3), "5.0% of node-to-node messages duplicated", ()),
        ("loss", 8_000, 9_000, (1, 2, 3), "10.0% of messages lost", ()),
        ("slow-link", 8_000, 9_000, (1, 2, 3), "delays 1–200 ms (messages reorder)", ()),
    ]
    assert sorted(conditions) == [
        (1, "isolated", 1_000, 2_000),
        (2, "crashed", 4_000, 5_000),
        (3, "isolated", 3_000, 3_500),
        (3, "paused", 6_000, 6_500),
    ]


@attrs.frozen
class Unplug(SimFault):
    """A fault kind the report's reader has never heard of."""

    node: int
    why: str

    @property
    def kind(self) -> str:
        return "unplug"


def test_a_fault_kind_the_reader_does_not_know_is_an_instant_naming_its_nodes() -> None:
    timeline = SimTimeline((1, 2, 3), SimConfig(seed=1).base_network)
    timeline.add(FaultInjected(500, Unplug(3, "x")))
    _, faults = timeline.finish(1_000)
    assert faults == [Fault("unplug", 500, 500, (3,), "node=3, why=x")]


def test_a_violation_is_in_the_record_and_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    send_everything_early(monkeypatch)
    args = ["chaos", "run", "--seed", "1", "--nodes", "5", "--duration", "60"]
    assert main([*args, "--report", str(tmp_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    record = read_record(tmp_path)
    assert record.run.verdict is RunVerdict.VIOLATION
    (violation,) = record.violations
    assert violation.kind == data["violation"]["invariant"].replace(" ", "-")
    assert violation.time_ms == data["violation"]["time_ms"]
    page = (tmp_path / "report.html").read_text()
    assert "VIOLATION" in page and violation.kind in page


def test_a_run_that_broke_off_is_an_error_violation_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: object, fault: object) -> None:
        raise ValueError("the harness broke")

    monkeypatch.setattr(simulator_module.Simulator, "_inject", broken)
    config = SimConfig(seed=3, nodes=3, duration_ms=20_000, keep_trace=True)
    result = simulate(config, check_timeout_s=None)
    assert result.verdict == "error"
    record = sim_record(result, replay="replay", wall={})
    (violation,) = record.violations
    assert violation.kind == "error" and "ValueError: the harness broke" in violation.message
    assert violation.time_ms == result.error["time_ms"]  # type: ignore[index]
    assert any(note.startswith("Traceback:") and "_inject" in note for note in record.notes)


def check_names(root: Path) -> set[str]:
    """The names the simulator's checks fail under: the first argument of every
    `fail(...)`, `find(...)` and `SafetyViolation(...)`, each module's `INVARIANT`, and
    what an engine's `healed()` says is missing."""
    names: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args:
                called = ast.unparse(node.func).rsplit(".", 1)[-1]
                if called in ("fail", "_fail", "find", "SafetyViolation"):
                    names |= _strings(node.args[:1])
            elif isinstance(node, ast.Assign) and "INVARIANT" in map(ast.unparse, node.targets):
                names |= _strings([node.value])
            elif isinstance(node, ast.FunctionDef) and node.name == "healed":
                returned = [r.value for r in ast.walk(node) if isinstance(r, ast.Return)]
                names |= _strings(v.elts[0] for v in returned if isinstance(v, ast.Tuple))
    return names


def _strings(nodes: Iterable[ast.expr]) -> set[str]:
    return {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_every_check_of_the_simulator_is_a_known_violation_kind() -> None:
    names = check_names(Path(__file__).resolve().parents[2] / "chaos" / "sim")
    assert {"election safety", "commit rule", "stale-read", "wire"} <= names  # it reads them
    missing = {name.replace(" ", "-") for name in names} - set(KNOWN_VIOLATION_KINDS)
    assert not missing, f"teach chaos.report.record.KNOWN_VIOLATION_KINDS: {sorted(missing)}"


def test_every_kind_of_finding_is_a_violation_saying_how_many_more() -> None:
    """An engine that records every finding (pysyncobj's) gives the first of each kind."""
    config = SimConfig(seed=1, nodes=3, duration_ms=2_000, keep_trace=True)
    result = simulate(config, check_timeout_s=None)
    stale = {"invariant": "stale-read", "message": "node 2 read x", "step": 9, "time_ms": 700,
             "nodes": [2, 7]}  # fmt: skip
    two = {"invariant": "two-leaders-in-a-term", "message": "nodes 1 and 3 led term 4",
           "step": 5, "time_ms": 400, "nodes": [1, 3]}  # fmt: skip
    found = {**two, "findings": {"stale-read": 3, "two-leaders-in-a-term": 1},
             "first": {"stale-read": stale, "two-leaders-in-a-term": two}}  # fmt: skip
    record = sim_record(attrs.evolve(result, violation=found), replay="r", wall={})
    assert [(v.kind, v.message, v.time_ms, v.nodes) for v in record.violations] == [
        ("stale-read", "node 2 read x (step 9; 2 more found)", 700, (2,)),
        ("two-leaders-in-a-term", "nodes 1 and 3 led term 4 (step 5)", 400, (1, 3)),
    ]
    assert record.run.verdict is RunVerdict.VIOLATION


def test_a_planted_bug_is_named_in_the_notes() -> None:
    config = SimConfig(seed=1, nodes=3, duration_ms=2_000, keep_trace=True)
    result = simulate(config, check_timeout_s=None, plant="lying-fsync")
    notes = sim_record(result, replay="r", wall={}).notes
    assert notes[0] == "A planted bug ran instead of the real engine part: lying-fsync."
    plain = sim_record(attrs.evolve(result, plant=None), replay="r", wall={}).notes
    assert not any("planted" in note for note in plain)
