"""The probe and the groups judge of live chaos: real probe processes on a real lock
file and port (a double run made on purpose, a SIGKILL, a SIGTERM), and the judge on
hand-written logs (a double run, a clean failover, a killed owner, epochs going back)
and on the end of a run (every group back)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos.live.config import LiveConfig
from chaos.live.groups.judge import (
    Answer,
    Instance,
    ProbeLogDamaged,
    failovers,
    judge_back,
    judge_log,
    parse_log,
    read_log,
)
from chaos.live.groups.record import judge_groups
from chaos.live.groups.run import GroupsObservations
from chaos.report import Fault, RunVerdict, read_record, write_report
from raftcluster.config.init import free_ports
from statemachine.groups.messages import Decision, GroupInfo, GroupSpec, GroupState

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 20.0


def free_port() -> int:
    return free_ports(1)[0]


def ask(port: int) -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.makefile().readline().strip() or None
    except OSError:
        return None


def until(what: str, check: object) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()  # type: ignore[operator]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"waited {WAIT_S} s for {what}")


def probe(tmp_path: Path, port: int, node: int, epoch: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, "RAFTCLUSTER_GROUP": "web", "RAFTCLUSTER_NODE": str(node),
        "RAFTCLUSTER_EPOCH": str(epoch), "RAFTCLUSTER_PROBE_LOG": str(tmp_path / "log"),
    }  # fmt: skip
    command = [sys.executable, "-m", "chaos.live.groups.probe", "--port", str(port),
               "--lock", str(tmp_path / "web.lock")]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env)


def records(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_two_probes_of_one_group_never_serve_at_once_and_the_second_is_a_double_run(
    tmp_path: Path,
) -> None:
    port = free_port()
    first = probe(tmp_path, port, node=1, epoch=4)
    second = None
    try:
        assert until("the first probe to answer", lambda: ask(port)) == f"web 1 4 {first.pid}"
        second = probe(tmp_path, port, node=2, epoch=5)
        until("the double run record", lambda: any("double_run" in r for r in records(tmp_path)))
        time.sleep(0.3)
        assert ask(port) == f"web 1 4 {first.pid}"  # the second waits for the lock
        first.kill()  # SIGKILL: no end record; the kernel releases the lock
        first.wait()
        assert until("the second probe", lambda: ask(port) == f"web 2 5 {second.pid}")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=WAIT_S) == 0
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    log = records(tmp_path)
    assert [r.get("event", "double_run") for r in log] == ["start", "double_run", "start", "end"]
    verdict = judge_log(read_log(tmp_path / "log"))
    assert verdict.double_runs == 1
    (finding,) = verdict.findings
    assert finding.kind == "double-run" and finding.nodes == (1, 2)
    assert f"pid {first.pid}" in finding.message and f"pid {second.pid}" in finding.message
    first_run, second_run = verdict.runs
    assert (first_run.instance.node, first_run.ended) == (1, "next")  # killed: no end record
    assert (second_run.instance.node, second_run.ended) == (2, "end")
    assert verdict.gaps == ()  # a killed instance's end is unknown


def test_a_probe_that_is_alone_starts_answers_and_ends_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    one = probe(tmp_path, port, node=3, epoch=9)
    try:
        line = until("the probe to answer", lambda: ask(port))
        assert Answer.parse(str(line)) == Answer("web", 3, 9, one.pid)
        one.send_signal(signal.SIGTERM)
        assert one.wait(timeout=WAIT_S) == 0
    finally:
        if one.poll() is None:
            one.kill()
            one.wait()
    start, end = records(tmp_path)
    assert start["event"] == "start" and end["event"] == "end" and end["served"] is True
    assert start["pid"] == one.pid and start["epoch"] == 9
    verdict = judge_log(read_log(tmp_path / "log"))
    assert verdict.findings == () and verdict.double_runs == 0
    assert verdict.runs[0].ended == "end"


def _line(event: str, node: int, epoch: int, pid: int, at: int, group: str = "web") -> str:
    return json.dumps({"event": event, "group": group, "node": node, "epoch": epoch,
                       "pid": pid, "mono_ns": at})  # fmt: skip


def test_a_clean_failover_has_no_finding_and_its_gap() -> None:
    log = parse_log([
        _line("start", 1, 3, 100, 1_000_000_000),
        _line("end", 1, 3, 100, 2_000_000_000),
        _line("start", 2, 4, 200, 2_750_000_000),
        _line("start", 1, 1, 300, 2_800_000_000, group="db"),
    ])  # fmt: skip
    verdict = judge_log(log)
    assert verdict.findings == ()
    (gap,) = verdict.gaps
    assert gap.gap_ms == 750.0
    assert (gap.before.node, gap.after.node) == (1, 2)
    assert [r.ended for r in verdict.starts("web")] == ["end", "open"]
    assert [r.instance.group for r in verdict.runs] == ["db", "web", "web"]


def test_a_killed_owner_then_a_new_start_is_clean() -> None:
    verdict = judge_log(parse_log([_line("start", 1, 3, 100, 10), _line("start", 2, 4, 200, 20)]))
    assert verdict.findings == ()
    assert verdict.runs[0].end_ns == 20 and verdict.runs[0].ended == "next"


def test_failovers_are_timed_from_the_fault_on_the_old_node_else_from_its_stop() -> None:
    verdict = judge_log(
        parse_log(
            [
                _line("start", 1, 3, 100, 1_000_000_000),
                _line("start", 2, 4, 200, 3_000_000_000),  # 1 killed at 1.8 s
                _line("end", 2, 4, 200, 5_000_000_000),
                _line("start", 3, 5, 300, 5_400_000_000),  # a planned move: from the stop
                _line("start", 3, 6, 301, 6_000_000_000),  # the same node: no failover
            ]
        )  # fmt: skip
    )
    faults = [(1_800_000_000, (1,)), (2_500_000_000, (3,)), (500_000_000, (1,))]
    found = failovers(verdict, faults)
    assert [(f.from_node, f.to_node, f.ms, f.since) for f in found] == [
        (1, 2, 1200.0, "fault"), (2, 3, 400.0, "stop"),
    ]  # fmt: skip


def test_a_restart_in_place_under_the_same_epoch_is_clean() -> None:
    verdict = judge_log(parse_log([_line("start", 1, 3, 100, 10), _line("start", 1, 3, 101, 20)]))
    assert verdict.findings == ()


def test_epochs_going_back_are_a_violation() -> None:
    verdict = judge_log(
        parse_log(
            [
                _line("start", 1, 7, 100, 10),
                _line("end", 1, 7, 100, 20),
                _line("start", 2, 6, 200, 30),
            ]
        )  # fmt: skip
    )
    (finding,) = verdict.findings
    assert finding.kind == "epoch-back" and finding.nodes == (1, 2)
    assert "epoch 6" in finding.message and "epoch 7" in finding.message


def test_a_double_run_without_a_holder_names_the_instance_still_serving() -> None:
    double = {"double_run": {"group": "web", "node": 2, "epoch": 5, "pid": 200, "mono_ns": 30,
                             "holder": None}}  # fmt: skip
    verdict = judge_log(parse_log([_line("start", 1, 4, 100, 10), json.dumps(double)]))
    (finding,) = verdict.findings
    assert finding.kind == "double-run" and finding.nodes == (1, 2)
    assert "web on node 1 (epoch 4, pid 100)" in finding.message


@pytest.mark.parametrize("line", ["not json", '{"event": "begin"}', '{"event": "start"}'])
def test_a_damaged_log_is_an_error(line: str) -> None:
    with pytest.raises(ProbeLogDamaged):
        parse_log([line])


def _info(name: str, state: GroupState, owner: int, epoch: int) -> GroupInfo:
    return GroupInfo(GroupSpec(name), state, owner, epoch, True, 0, (),
                     Decision(name, owner, "start", ""))  # fmt: skip


def test_every_group_back_online_where_it_answered() -> None:
    groups = [_info("web", GroupState.ONLINE, 2, 8), _info("db", GroupState.ONLINE, 1, 9)]
    answers = {"web": Answer("web", 2, 8, 1), "db": Answer("db", 1, 9, 2)}
    assert judge_back(["web", "db"], answers, groups) == ()


def test_a_group_not_back_is_named_with_what_is_wrong() -> None:
    groups = [
        _info("web", GroupState.ONLINE, 2, 8), _info("db", GroupState.STARTING, 1, 9),
        _info("mq", GroupState.ONLINE, 3, 4),
    ]  # fmt: skip
    answers = {"web": None, "db": Answer("db", 1, 9, 2), "mq": Answer("mq", 3, 3, 5)}
    found = {f.group: f.message for f in judge_back(["web", "db", "mq"], answers, groups)}
    assert found == {
        "web": "group web did not answer on its port",
        "db": "group db answered from node 1 but the state says STARTING",
        "mq": "group mq answered from node 3 under epoch 3 but the state says owner 3, epoch 4",
    }


def test_an_answer_is_parsed_or_refused() -> None:
    assert Answer.parse(b"web 1 2 3\n") == Answer("web", 1, 2, 3)
    with pytest.raises(ProbeLogDamaged):
        Answer.parse("web one 2 3")
    assert Instance("web", 1, 2, 3).node == 1


def test_a_groups_run_with_a_double_run_is_a_violation_in_its_report(tmp_path: Path) -> None:
    double = {"double_run": {"group": "web", "node": 2, "epoch": 5, "pid": 200,
                             "mono_ns": 3_000_000_000, "holder": None}}  # fmt: skip
    records = parse_log([
        _line("start", 1, 4, 100, 1_000_000_000), json.dumps(double),
        _line("start", 2, 5, 200, 4_000_000_000),
    ])  # fmt: skip
    fault = Fault("kill", 1_500.0, 2_500.0, (1,), "kill -9 node 1 (node)")
    observed = GroupsObservations(
        LiveConfig(workload="groups", nemeses=("kill",)), ("web",), {"web": 1}, records,
        (), 10.0, {"web": Answer("web", 2, 5, 200)}, (fault,), (), {"faults.kill": 1}, (),
        5_000.0, 6_000.0, 0, {1: (10,)}, (1, 2, 3), (), (), 900.0,
    )  # fmt: skip
    judgement = judge_groups(observed, "raftcluster chaos live --workload groups")
    assert judgement.verdict is RunVerdict.VIOLATION
    checks = {c.name: c.verdict for c in judgement.record.checkers}
    assert checks == {"double-runs": RunVerdict.VIOLATION, "epochs": RunVerdict.OK,
                      "groups-back": RunVerdict.OK}  # fmt: skip
    (failover,) = judgement.failovers
    assert (failover.from_node, failover.to_node, failover.ms, failover.since) == (
        1, 2, 2500.0, "fault"
    )  # fmt: skip
    assert judgement.record.run.count("groups.double_runs") == 1
    paths = write_report(tmp_path / "report", judgement.record, [], "")
    assert "VIOLATION" in paths.html.read_text()
    assert read_record(tmp_path / "report").violations[0].kind == "double-run"
