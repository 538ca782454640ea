"""`raftcluster chaos live`: a real 3-node cluster under partitions and kill -9, its
history checked; the same pipeline catches a stale read planted in a live history, and
a live run with stale reads planted in the cluster's clients ends in a violation; no
node process outlives the command, Ctrl-C included.

Three live runs: partitions and kills (about 15 s on a quiet machine), planted stale
reads (about 10 s), Ctrl-C (about 4 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaos.checker import Event
from chaos.live import LiveConfig, Observations, judge
from chaos.report import Record, RunVerdict, read_record, write_report

ROOT = Path(__file__).resolve().parent.parent
SEED = 3  # isolates the leader, then kills the leader (chaos.live.schedule.plan)
DURATION_S = 9
WAIT_S = 120


@attrs.frozen
class Run:
    code: int
    answer: dict[str, Any]
    report: Path
    cluster: Path
    stderr: str


def live(*args: str, timeout: float = WAIT_S) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "raftcluster", "chaos", "live", *args]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_a_live_run_under_partitions_and_kills(tmp_path: Path) -> None:
    """One run, looked at four ways (one test, so that `pytest -n 2` runs it once)."""
    run = _run(tmp_path)
    _is_ok(run)
    _the_report_holds_the_run(run)
    _no_node_process_outlives_the_run(run)
    _the_live_pipeline_catches_a_stale_read_planted_in_the_history(run)


def _run(base: Path) -> Run:
    done = live(
        "--nodes", "3", "--duration", str(DURATION_S), "--seed", str(SEED),
        "--nemesis", "partition,kill", "--clients", "4",
        "--report", str(base / "report"), "--keep", str(base / "cluster"), "--json",
    )  # fmt: skip
    answer = json.loads(done.stdout) if done.stdout.strip() else {}
    return Run(done.returncode, answer, base / "report", base / "cluster", done.stderr)


def _is_ok(run: Run) -> None:
    assert run.code == 0, (run.answer, run.stderr)
    answer = run.answer
    assert answer["verdict"] == "ok"
    assert answer["checks"] == {
        "linearizability": "ok", "liveness": "ok", "convergence": "ok", "stats": "ok"
    }  # fmt: skip
    assert answer["proved_nothing"] == []
    counts = answer["counts"]
    assert counts["ops.ok"] >= 100, counts
    assert counts["faults.partition"] >= 1, counts
    assert counts["faults.kill"] >= 1, counts
    assert counts.get("faults.failed", 0) == 0, answer["notes"]
    assert answer["after_heal_ms"]["write_committed"] is not None


def _the_report_holds_the_run(run: Run) -> None:
    record = read_record(run.report)
    assert record.run.verdict is RunVerdict.OK
    assert record.run.mode.value == "live"
    kinds = {f.kind for f in record.faults}
    assert {"partition", "kill"} <= kinds
    crashed = [i for i in record.intervals if i.kind.value == "crashed"]
    killed = {n for f in record.faults if f.kind == "kill" for n in f.nodes}
    assert {i.node for i in crashed} == killed
    assert any(i.kind.value == "leader" for i in record.intervals)
    assert len(record.operations) == len(_events(run.report)) // 2 or any(
        op.complete_ms is None for op in record.operations
    )
    trace = [json.loads(line) for line in (run.report / "trace.jsonl").read_text().splitlines()]
    assert [t["action"] for t in trace] == ["inject", "heal"] * len(record.faults)
    html = (run.report / "report.html").read_text()
    assert "kill -9 node" in html


def _no_node_process_outlives_the_run(run: Run) -> None:
    pids = [pid for pids in run.answer["pids"].values() for pid in pids]
    assert len(pids) >= 3 + run.answer["counts"]["faults.kill"]  # restarts are new pids
    assert not _running(pids)
    assert not _processes_using(run.cluster)


def _the_live_pipeline_catches_a_stale_read_planted_in_the_history(run: Run) -> None:
    record = read_record(run.report)
    events = _events(run.report)
    honest = judge(_observations(record, events), replay="test")
    assert honest.verdict is RunVerdict.OK  # the pipeline agrees with the run
    doctored, read = _plant_stale_read(events)
    ops = list(record.operations)
    ops[read] = attrs.evolve(ops[read], output=doctored[_answer_line(events, read)].value)
    found = judge(_observations(record, doctored, tuple(ops)), replay="test")
    assert found.verdict is RunVerdict.VIOLATION
    (violation,) = found.record.violations
    assert violation.kind == "linearizability"
    assert violation.witness is not None
    assert read in (*violation.ops, violation.witness.blocked)
    paths = write_report(run.report.parent / "doctored", found.record, _lines(doctored), "")
    assert "VIOLATION" in paths.html.read_text()


def test_a_live_run_with_stale_reads_planted_ends_in_a_violation(tmp_path: Path) -> None:
    """The planted bug: reads ask a random node for its own copy. Seed 16 isolates the
    leader twice in 6 s; each time the cut-off node falls behind and a read from it
    returns a value older than a write the majority already acknowledged."""
    done = live(
        "--duration", "6", "--seed", "16", "--nemesis", "partition", "--stale-reads",
        "--report", str(tmp_path / "report"), "--json",
    )  # fmt: skip
    assert done.returncode == 1, (done.stdout, done.stderr)
    answer = json.loads(done.stdout)
    assert answer["checks"] == {
        "linearizability": "violation", "liveness": "ok", "convergence": "ok", "stats": "ok"
    }  # fmt: skip
    record = read_record(tmp_path / "report")
    (violation,) = record.violations
    assert violation.witness is not None
    blocked = record.operations[violation.witness.blocked]
    assert blocked.f == "read"
    assert not _running([p for pids in answer["pids"].values() for p in pids])


def test_ctrl_c_stops_every_node(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster"
    command = [
        sys.executable, "-m", "raftcluster", "chaos", "live", "--duration", "60",
        "--nemesis", "partition", "--keep", str(cluster), "--json",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while len(_processes_using(cluster)) < 3 and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        nodes = _processes_using(cluster)
        assert len(nodes) == 3, nodes
        time.sleep(2)  # into the run: clients and the nemesis are busy
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert not _running(nodes)
    assert not _processes_using(cluster)


# -- helpers -------------------------------------------------------------------------------


def _events(report: Path) -> list[Event]:
    out = []
    for line in (report / "history.jsonl").read_text().splitlines():
        e = json.loads(line)
        out.append(
            Event(e["process"], e["type"], e["f"], e.get("value"), e.get("key"),
                  time=e.get("time"), error=e.get("error"))
        )  # fmt: skip
    return out


def _lines(events: list[Event]) -> list[str]:
    return [e.to_json_line(i) + "\n" for i, e in enumerate(events)]


def _observations(
    record: Record, events: list[Event], ops: tuple[Any, ...] | None = None
) -> Observations:
    config = LiveConfig(
        nodes=len(record.run.nodes), duration_ms=DURATION_S * 1000, seed=record.run.seed,
        nemeses=record.run.nemeses, workload=record.run.workload,
    )  # fmt: skip
    return Observations(
        config, tuple(events), ops if ops is not None else record.operations, record.faults,
        record.intervals, dict(record.run.counts), (), 0.0, 1.0, 1.0, "",
        record.run.duration_ms, {}, record.run.nodes, (),
    )  # fmt: skip


def _answer_line(events: list[Event], op: int) -> int:
    """The line that answers operation `op` (operations are numbered by invoke)."""
    invokes = [i for i, e in enumerate(events) if e.type == "invoke"]
    at = invokes[op]
    return next(i for i in range(at + 1, len(events)) if events[i].process == events[at].process)


def _plant_stale_read(events: list[Event]) -> tuple[list[Event], int]:
    """Find writes w1, w2 and a read r, each ok, with w1 answered before w2 was called
    and w2 answered before r was called; make r return w1's value (a stale read: every
    value is written once). Returns the doctored events and r's operation number."""
    ops = _ok_operations(events)
    writes = [o for o in ops if o["f"] == "write"]
    for read in (o for o in ops if o["f"] == "read"):
        before = [w for w in writes if w["answer"] < read["call"]]
        for w2 in reversed(before):
            older = [w for w in before if w["answer"] < w2["call"]]
            if older:
                stale = older[-1]["value"]
                doctored = list(events)
                doctored[read["answer"]] = attrs.evolve(events[read["answer"]], value=stale)
                return doctored, read["op"]
    raise AssertionError("no write, write, read sequence in the live history")


def _ok_operations(events: list[Event]) -> list[dict[str, Any]]:
    calls: dict[Any, tuple[int, int]] = {}
    out = []
    op = 0
    for line, e in enumerate(events):
        if e.type == "invoke":
            calls[e.process] = (line, op)
            op += 1
        elif e.type == "ok":
            call, number = calls.pop(e.process)
            value = events[call].value if e.f == "write" else e.value
            out.append({"f": e.f, "call": call, "answer": line, "op": number, "value": value})
        else:
            calls.pop(e.process)
    return out


def _running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def _processes_using(cluster: Path) -> list[int]:
    """Processes whose command line names `cluster` (the node processes of that run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        args = cmdline.split(b"\0")
        if b"node" in args and any(a.startswith(str(cluster).encode()) for a in args):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--nemesis", "partition,flood"], "'flood' is not one of"), (["--nodes", "0"], "--nodes")],
)
def test_bad_flags_exit_2_before_starting_anything(flags: list[str], message: str) -> None:
    done = live(*flags, "--json")
    assert done.returncode == 2
    assert message in json.loads(done.stdout)["error"]["message"]
