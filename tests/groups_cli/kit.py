"""One real 3-node cluster per test module, and the command line run against it.

`cluster_up(directory)` writes a cluster file (the live tests' fast timings), runs
`raftcluster up DIR` as a child process (it starts every node with `raftcluster node run`)
and, once a leader answers, makes every node a member of the cluster service; leaving the
block stops `up` with SIGINT (it stops its nodes) and waits for it. A module-scoped
fixture built on it lets every test of a module share one cluster: each test uses group
names of its own. `cli(cluster, ...)` runs a command line in this process (its output
captured), `cli_process` as `python -m raftcluster ...`.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

import raftcluster
from raftcluster import ClientOptions, SyncClient
from raftcluster.cli import main
from raftcluster.config import ClusterFile, init_cluster
from statemachine.groups.messages import GroupList, JoinNode, ListGroups
from tests.live_kit import SETTINGS, WAIT_S

PATIENT = ClientOptions(
    connect_timeout_ms=int(WAIT_S * 1000), request_timeout_ms=int(WAIT_S * 1000)
)


@attrs.frozen
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


def cli(cluster: ClusterFile, *args: str) -> Ran:
    """`raftcluster ARGS --cluster DIR` in this process (`raftcluster.cli.main`: the command
    line's own code, over real TCP, without a new interpreter's start-up for each call)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--cluster", str(cluster.path)])
    return Ran(code, out.getvalue(), err.getvalue())


def cli_process(cluster: ClusterFile, *args: str, timeout_s: float = WAIT_S) -> Ran:
    """`python -m raftcluster ARGS --cluster DIR` as a child process."""
    command = [sys.executable, "-m", "raftcluster", *args, "--cluster", str(cluster.path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    return Ran(done.returncode, done.stdout, done.stderr)


def join_nodes_until_the_node_does_it(client: SyncClient, nodes: tuple[int, ...]) -> None:
    """Make `nodes` members of the cluster service (JoinNode), as each node will do itself
    once the node runtime wires the cluster service; then this helper goes. A node that is
    already a member is left as it is."""
    members = {info.node for info in client.nodes.list()}
    for node in nodes:
        if node not in members:
            client.write(JoinNode(node, time.time_ns() // 1_000_000))


def groups_revision(client: SyncClient) -> int:
    listing = client.read(ListGroups())
    assert isinstance(listing, GroupList)
    return listing.revision


@contextlib.contextmanager
def cluster_up(directory: Path) -> Iterator[ClusterFile]:
    cluster = init_cluster(directory, nodes=3, settings=SETTINGS)
    log_path = directory / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "raftcluster", "up", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with raftcluster.connect_sync(cluster, options=PATIENT) as client:
            join_nodes_until_the_node_does_it(client, cluster.node_ids)
        yield cluster
    except BaseException:
        print(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
