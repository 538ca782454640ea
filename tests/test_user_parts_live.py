"""A user part on real node processes, end to end: named by import path in cluster.toml,
three nodes started by `raftcluster up`, a client that only imports the part's module;
then a node with another version of the part is refused by the others; and a node
restarted without the part stops at the first entry of it in its log. Both run in
`make soak` only (see the marks)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from raftcluster.client.connect import connect
from raftcluster.client.probe import Target, probe
from raftcluster.config import ClusterFile, client_transport_config, init_cluster, load_cluster
from raftcluster.node.admin import NodeInfo
from tests.user_parts.counter import Add, ReadTotal, Total

ROOT = Path(__file__).resolve().parent.parent
FAST = {"timing.election_timeout_ms": 600, "timing.heartbeat_interval_ms": 60}
WAIT_S = 45.0
COUNTER = '["tests.user_parts.counter:COUNTER"]'
T = TypeVar("T")


def with_parts(directory: Path, parts: str, **settings: int) -> ClusterFile:
    cluster = init_cluster(directory, nodes=3, settings={**FAST, **settings})
    text = cluster.path.read_text().replace("\n[state]\n", f"\n[state]\nparts = {parts}\n")
    cluster.path.write_text(text)
    return load_cluster(cluster.path)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftcluster", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def wait_for(what: str, condition: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"waited {WAIT_S} s for {what}")


def info(cluster: ClusterFile, node_id: int) -> NodeInfo | None:
    """Node `node_id`'s info, if it answers (in this process: no command to start)."""
    entry = cluster.find(node_id)
    assert entry is not None
    config = client_transport_config(cluster)
    found = trio.run(lambda: probe(Target(node_id, entry.addresses), config, timeout_ms=1000))
    return found.info


async def count(cluster: ClusterFile, *adds: int) -> Total:
    async with connect(cluster) as client:
        for by in adds:
            await client.write(Add(by))
        total = await client.read(ReadTotal())
    assert isinstance(total, Total)
    return total


@pytest.mark.soak  # ~40 s of processes; the default run keeps the bank's `up` test
# (tests/bank/test_bank_nodes.py) and the part-set refusal in-process
# (tests/test_user_parts_node.py), so only the refusal between processes waits for soak.
def test_a_user_part_on_three_processes_started_by_up(tmp_path: Path) -> None:
    on_three_processes(tmp_path, replay_without_the_part=False)


@pytest.mark.soak
def test_a_node_restarted_without_the_part_stops_at_its_first_entry(tmp_path: Path) -> None:
    on_three_processes(tmp_path, replay_without_the_part=True)


def on_three_processes(tmp_path: Path, *, replay_without_the_part: bool) -> None:
    cluster = with_parts(tmp_path / "c", COUNTER)
    out = (tmp_path / "up.out").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "raftcluster", "up", str(cluster.path.parent)],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    odd: subprocess.Popen[str] | None = None
    try:
        infos = [wait_for(f"node {i} to answer", lambda i=i: info(cluster, i)) for i in (1, 2, 3)]
        assert trio.run(count, cluster, 4, 3) == Total(7)

        # Node 3, stopped, comes back with version 2 of the part (its own cluster file, a
        # fresh data directory, joining): the others dial it and are refused, all say why.
        os.kill(infos[2].pid, signal.SIGTERM)
        wait_for("node 3 to exit", lambda: "node 3 exited" in (tmp_path / "up.out").read_text())
        other = tmp_path / "v2"
        other.mkdir()
        copy_secrets(cluster, other)
        text = cluster.path.read_text().replace("counter:COUNTER", "counter:COUNTER_V2")
        # Joining takes an incarnation (what `member add --write-config` writes); this one
        # is not in the log, so it could never vote: the handshake refuses it before that.
        text = text.replace('data_dir = "node-3"', 'data_dir = "node-3"\nincarnation = 7')
        (other / "cluster.toml").write_text(text)
        odd = subprocess.Popen(
            [sys.executable, "-m", "raftcluster", "node", "run", "--config",
             str(other / "cluster.toml"), "--id", "3", "--join"],
            cwd=ROOT, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        log_1 = cluster.nodes[0].data_dir / "node.log"
        wait_for(
            "node 1 to log the refusal",
            lambda: "part 'counter' is v1 on node 1, v2 on node 3" in log_1.read_text(),
        )
        assert trio.run(count, cluster, 1) == Total(8)  # nodes 1 and 2 go on
        three = info(cluster, 3)  # it answers clients, but never joined
        assert three is not None and three.status.leader == 0
        assert three.status.applied_index <= 1 and three.status.role != "leader"
        odd.send_signal(signal.SIGTERM)
        _, err = odd.communicate(timeout=WAIT_S)
        assert "node 3: refused a connection from" in err
        assert "part 'counter' is v2 on node 3, v1 on node 1" in err
        if replay_without_the_part:
            replay_without_part(tmp_path, cluster)
        up.send_signal(signal.SIGINT)
        up.wait(timeout=WAIT_S)
    finally:
        for process in (up, odd):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def copy_secrets(cluster: ClusterFile, into: Path) -> None:
    """The cluster's secret and client secret, for a cluster file of its own in `into`."""
    shutil.copy2(cluster.secret_file, into / "secret")
    shutil.copy2(cluster.path.parent / "client-secret", into / "client-secret")


def replay_without_part(tmp_path: Path, cluster: ClusterFile) -> None:
    """Node 3 again on its own data directory, without the part: it replays its log to the
    first counter entry and stops there, naming it (its process does not import the
    part's module, so the entry does not even decode there)."""
    stock = tmp_path / "stock"
    stock.mkdir()
    copy_secrets(cluster, stock)
    text = cluster.path.read_text().replace(COUNTER, "[]")
    text = text.replace('data_dir = "node-', f'data_dir = "{cluster.path.parent}/node-')
    (stock / "cluster.toml").write_text(text)
    done = cli("node", "run", "--config", str(stock / "cluster.toml"), "--id", "3")
    assert done.returncode == 1
    assert "raftcluster: error: committed entry" in done.stderr
    assert "(tag 208) cannot be applied here: it does not decode:" in done.stderr
    assert "unknown tag 10100" in done.stderr
    assert "this node runs groups v1, kv v1, sessions v1" in done.stderr
    assert "stopping: committed entry" in done.stderr  # the node's own log line
