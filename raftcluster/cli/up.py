"""`raftcluster up DIR [--restart]`: run every node of DIR/cluster.toml and supervise them.

The user parts of `[state] parts` are imported first: one that does not load stops `up`
before any node starts. Each node is a child process (`raftcluster node run ...
--supervised`) in a process group of its own, logging to `node.log` in its data
directory. In the foreground the supervisor prints who leads whenever that changes, and
reports a node that exits (with the end of its log); with `--restart` it starts it again
(after 1 s, doubling up to 30 s while it keeps failing within a minute). Ctrl-C or
SIGTERM stops every node gracefully (SIGTERM, then SIGKILL after 15 s). Exit status 0 when
every node stopped cleanly.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

import trio

from raftcluster.cli.processes import NodeProcesses, describe_exit
from raftcluster.cli.status import summarize
from raftcluster.client.probe import Poller, Target
from raftcluster.config import ClusterFile, ConfigError, client_transport_config, load_cluster
from raftcluster.config.init import port_is_free
from raftcluster.config.settings import cluster_parts

POLL_INTERVAL_S = 0.5
PROBE_TIMEOUT_MS = 1000
RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
STABLE_S = 60.0  # a node that ran this long resets its restart back-off


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "up",
        help="start every node of a cluster and supervise them (Ctrl-C stops them)",
        description="Start every node of DIR/cluster.toml as a child process and supervise "
        "them in the foreground. Ctrl-C or SIGTERM stops them all.",
    )
    parser.add_argument("directory", metavar="DIR", help="the directory `raftcluster init` wrote")
    parser.add_argument("--restart", action="store_true",
                        help="restart a node that exits (default: report it only)")  # fmt: skip
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"))  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cluster = load_cluster(args.directory)
    cluster_parts(cluster)  # a part that does not load stops us before any node starts
    check_ports(cluster)
    supervisor = Supervisor(cluster, restart=args.restart, log_level=args.log_level)
    return trio.run(supervisor.run)


def check_ports(cluster: ClusterFile) -> None:
    """Refuse to start when a node's address is taken (the cluster may be running)."""
    for node in cluster.nodes:
        for address in node.addresses:
            if not port_is_free(address.host, address.port):
                raise ConfigError(
                    cluster.path, 0, f"nodes[id={node.id}].addresses",
                    f"{address} is already in use: is the cluster already running "
                    f"(raftcluster status --cluster {cluster.path.parent})?",
                )  # fmt: skip


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


class Supervisor:
    def __init__(self, cluster: ClusterFile, *, restart: bool, log_level: str = "info") -> None:
        self.cluster = cluster
        self.restart = restart
        self.processes = NodeProcesses(cluster, log_level=log_level)
        self.stopping = False
        self._leader: tuple[int, int] | None = None  # (leader, term) last shown

    async def run(self) -> int:
        """Start the nodes and supervise them until SIGINT/SIGTERM; then stop them.
        Returns the exit status. Cancellation kills the nodes (`NodeProcesses.close`)."""
        processes = self.processes
        try:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    for node in self.cluster.nodes:
                        await self._start(node.id)
                        nursery.start_soon(self._watch_child, node.id)
                    nursery.start_soon(self._watch_leader)
                    say(f"cluster {self.cluster.cluster_id} up; Ctrl-C stops it")
                    async for signum in signals:
                        say(f"{signal.Signals(signum).name}: stopping every node")
                        break
                    self.stopping = True
                    nursery.cancel_scope.cancel()
                codes = await processes.stop_all()
        finally:
            await processes.close()
        clean = True
        for node_id, code in sorted(codes.items()):
            if code is None:
                continue
            clean = clean and code == 0
            say(f"node {node_id} {describe_exit(code)}")
        return 0 if clean else 1

    async def _start(self, node_id: int) -> None:
        process = await self.processes.start(node_id)
        log = self.processes.log_path(node_id)
        say(f"node {node_id} started: pid {process.pid}, log {log}")

    async def _watch_child(self, node_id: int) -> None:
        delay = RESTART_DELAY_S
        while True:
            started = time.monotonic()
            code = await self.processes.wait(node_id)
            if self.stopping:
                return
            say(f"node {node_id} {describe_exit(code)}; the end of its log:")
            for line in self.processes.tail(node_id):
                print(f"    {line}", file=sys.stdout, flush=True)
            if not self.restart:
                say(f"node {node_id} stays down (run with --restart to restart nodes)")
                return
            if time.monotonic() - started >= STABLE_S:
                delay = RESTART_DELAY_S
            say(f"restarting node {node_id} in {delay:.0f} s")
            await trio.sleep(delay)
            delay = min(MAX_RESTART_DELAY_S, delay * 2)
            await self._start(node_id)

    async def _watch_leader(self) -> None:
        targets = [Target(n.id, n.addresses) for n in self.cluster.nodes]
        config = client_transport_config(self.cluster)
        async with Poller.open(targets, config) as poller:
            while True:
                probes = await poller.poll(timeout_ms=PROBE_TIMEOUT_MS)
                summary = summarize(self.cluster.cluster_id, probes)
                shown = (summary["leader"], summary["leader_term"])
                if shown != self._leader:
                    self._leader = shown
                    answered = sum(p.reachable for p in probes)
                    count = f"{answered} of {len(targets)} nodes answer"
                    if shown[0]:
                        say(f"leader: node {shown[0]} (term {shown[1]}; {count})")
                    else:
                        say(f"no leader ({count})")
                await trio.sleep(POLL_INTERVAL_S)
