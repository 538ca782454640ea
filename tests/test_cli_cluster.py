"""The operator's commands as an operator runs them: `init`, `up`, `status`, `node`, and
their messages for a bad config, a taken port, a missing or wrong secret, a cluster
that is not running."""

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

from raftcluster.config import init_cluster

ROOT = Path(__file__).resolve().parent.parent
FAST = {"timing.election_timeout_ms": 600, "timing.heartbeat_interval_ms": 60}
WAIT_S = 45.0


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftcluster", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(condition, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"waited {WAIT_S} s for {what}")


def test_up_supervises_status_reports_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=3, settings=FAST)
    log = (tmp_path / "up.out").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "raftcluster", "up", str(tmp_path)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> dict | None:  # type: ignore[type-arg]
            done = cli("status", "--cluster", str(tmp_path), "--json")
            if done.returncode != 0:
                return None
            summary = json.loads(done.stdout)
            return summary if summary["leader"] and summary["answered"] == 3 else None

        summary = wait_for(healthy, "a leader and three nodes answering")
        wait_for(lambda: "leader: node" in (tmp_path / "up.out").read_text(), "up to see it")
        assert [n["id"] for n in summary["nodes"]] == [1, 2, 3]
        for node in summary["nodes"]:
            assert node["reachable"] and node["pid"] > 0 and node["term"] >= 1
            assert node["role"] in ("leader", "follower")
            assert node["commit_index"] >= node["applied_index"] >= 0
        # The same through --endpoints, in text.
        addresses = ",".join(str(n.addresses[0]) for n in cluster.nodes)
        text = cli(
            "status", "--endpoints", addresses, "--secret-file", str(cluster.client_secret_file),
            "--cluster-id", cluster.cluster_id,
        )  # fmt: skip
        assert text.returncode == 0, text.stderr
        assert "quorum reachable (3 of 3 voters answered)" in text.stdout
        assert "leader" in text.stdout and "follower" in text.stdout
        # A second `up` of the same cluster is refused: its ports are taken.
        again = cli("up", str(tmp_path))
        assert again.returncode == 1 and "is already in use" in again.stderr
        # A node that dies is reported with the end of its log.
        leader_pid = next(n["pid"] for n in summary["nodes"] if n["role"] == "leader")
        os.kill(leader_pid, signal.SIGKILL)
        wait_for(lambda: "killed by SIGKILL" in (tmp_path / "up.out").read_text(), "the report")
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=WAIT_S) == 1  # one node did not stop cleanly: it was killed
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    out = (tmp_path / "up.out").read_text()
    assert "SIGINT: stopping every node" in out
    assert out.count("exited with status 0") == 2, out
    assert "stays down (run with --restart" in out


def test_status_of_a_cluster_that_is_not_running_exits_2(tmp_path: Path) -> None:
    init_cluster(tmp_path, nodes=3)
    done = cli("status", "--cluster", str(tmp_path), "--timeout-ms", "500")
    assert done.returncode == 2
    assert "NO QUORUM REACHABLE (0 of 3 voters answered, 2 needed)" in done.stdout
    assert "unreachable" in done.stdout and "are they running" in done.stdout


def test_status_with_a_wrong_secret_says_so(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path / "c", nodes=1, settings=FAST)
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "raftcluster",
            "node",
            "run",
            "--config",
            str(cluster.path),
            "--id",
            "1",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: cli("status", "--cluster", str(tmp_path / "c")).returncode == 0, "node")
        wrong = tmp_path / "wrong-secret"
        wrong.write_bytes(b"w" * 32)
        wrong.chmod(0o600)
        done = cli(
            "status", "--json", "--endpoints", str(cluster.nodes[0].addresses[0]),
            "--secret-file", str(wrong), "--cluster-id", cluster.cluster_id,
        )  # fmt: skip
        assert done.returncode == 2
        summary = json.loads(done.stdout)
        assert summary["nodes"][0]["problem"] == "wrong-secret"
        assert summary["problems"] == {"wrong-secret": 1}
        other = cli(
            "status", "--endpoints", str(cluster.nodes[0].addresses[0]),
            "--secret-file", str(cluster.client_secret_file), "--cluster-id", "another",
        )  # fmt: skip
        assert other.returncode == 2 and "wrong-cluster" in other.stdout
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=WAIT_S) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    assert node.stderr is not None
    log = node.stderr.read()
    assert "[node 1] WARNING raftcluster.transport: node 1: refused a connection from" in log
    assert "stopped (applied" in log


def test_a_node_on_a_taken_port_names_the_address(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=2)
    address = cluster.nodes[0].addresses[0]
    with socket.socket() as squatter:
        squatter.bind((address.host, address.port))
        squatter.listen()
        done = cli("node", "run", "--config", str(cluster.path), "--id", "1")
        up = cli("up", str(tmp_path))
    assert done.returncode == 1
    assert f"node 1 cannot listen on {address}: the address is already in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert up.returncode == 1 and f"{address} is already in use" in up.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("# election_timeout_ms = 500", "election_timeout_ms = 150"),
         "timing.election_timeout_ms: 150 must be at least twice heartbeat_interval_ms"),
        (("[limits]", "[limits]\nmax_frame_byte = 1"),
         "limits.max_frame_byte: unknown key"),
        (("[cluster]", "[cluster"), "not valid TOML"),
    ],
)  # fmt: skip
def test_a_node_with_a_bad_config_names_the_file_line_and_key(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    cluster = init_cluster(tmp_path, nodes=1)
    text = cluster.path.read_text()
    old, new = change
    cluster.path.write_text(text.replace(old, new, 1))
    line = text[: text.index(old)].count("\n") + 1 + new.count("\n")
    done = cli("node", "run", "--config", str(cluster.path), "--id", "1")
    assert done.returncode == 1
    assert done.stderr.startswith(f"raftcluster: error: {cluster.path}:{line}: "), done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_a_node_without_its_secret_or_id_says_what_to_do(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=1)
    missing = cli("node", "run", "--config", str(cluster.path), "--id", "7")
    assert missing.returncode == 1 and "no node 7 (the nodes are 1)" in missing.stderr
    cluster.secret_file.unlink()
    done = cli("node", "--config", str(tmp_path), "--id", "1")  # the older form, no `run`
    assert done.returncode == 1
    assert f"cluster.secret_file: {cluster.secret_file}: secret file not found" in done.stderr


def test_init_refuses_to_overwrite_and_reports_what_it_wrote(tmp_path: Path) -> None:
    first = cli("init", str(tmp_path), "--nodes", "2", "--json")
    assert first.returncode == 0, first.stderr
    written = json.loads(first.stdout)
    assert [n["id"] for n in written["nodes"]] == [1, 2]
    again = cli("init", str(tmp_path))
    assert again.returncode == 1 and "use --force" in again.stderr
    forced = cli("init", str(tmp_path), "--force", "--nodes", "1")
    assert forced.returncode == 0 and "wrote" in forced.stdout
    usage = cli("status")
    assert usage.returncode == 1 and "--cluster DIR, or --endpoints" in usage.stderr


def test_nodes_do_not_outlive_a_supervisor_killed_with_sigkill(tmp_path: Path) -> None:
    init_cluster(tmp_path, nodes=1, settings=FAST)
    out = tmp_path / "up.out"
    with out.open("w") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "raftcluster", "up", str(tmp_path)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "leader: node 1" in out.read_text(), "the node to lead")
        up.kill()
        up.wait(timeout=WAIT_S)
        node_log = tmp_path / "node-1" / "node.log"
        wait_for(lambda: "stopped (applied" in node_log.read_text(), "the node to stop")
        assert "standard input closed (the supervisor is gone): stopping" in node_log.read_text()
        done = cli("status", "--cluster", str(tmp_path), "--timeout-ms", "500")
        assert done.returncode == 2 and "unreachable" in done.stdout
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
