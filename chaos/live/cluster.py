"""The real cluster of a live run: node processes on 127.0.0.1 and what the harness
asks them (the shell around the pure parts of `chaos.live`).

`LiveCluster.running(directory, config)` writes a cluster file (fault injection
allowed), starts every node as a child process (`NodeProcesses`, as `raftcluster up`
does) and yields the cluster; leaving the block stops every node (SIGTERM, then
SIGKILL) and reaps it, whatever happened, Ctrl-C included. Every pid ever started is
kept in `pids`, so a caller can check that none outlives the run.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from chaos.live.config import LiveConfig, node_settings
from raftcluster.cli.processes import NodeProcesses
from raftcluster.client.probe import Poller, Target
from raftcluster.config import ClusterFile, client_transport_config, init_cluster
from raftcluster.node.admin import ClearFaults, FaultsState, NodeInfo, SetFaults
from raftcluster.node.protocol import Consistency, Query, QueryResult
from raftcluster.transport import HandshakeFailed, PeerUnreachable, RpcFailed, connect_rpc
from statemachine.codec import Message, decode, encode
from statemachine.errors import ClusterError
from statemachine.kv import Range, RangeResult, prefix_end

ADMIN_TIMEOUT_MS = 2_000
ADMIN_ATTEMPTS = 3
POLL_TIMEOUT_MS = 1_000
STOP_TIMEOUT_S = 5.0


class AdminFailed(ClusterError):
    """A node did not take a request sent straight to it (it is down, did not answer in
    time, or refused it)."""


class LiveCluster:
    def __init__(self, cluster: ClusterFile, processes: NodeProcesses, poller: Poller) -> None:
        self.cluster = cluster
        self.processes = processes
        self.poller = poller
        self.pids: dict[int, list[int]] = {n: [] for n in cluster.node_ids}
        self._transport = client_transport_config(cluster)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, directory: Path, config: LiveConfig) -> AsyncIterator[LiveCluster]:
        """Cancellation (Ctrl-C included): every node is stopped and reaped before the
        exception goes on (shielded, at most STOP_TIMEOUT_S, then SIGKILL). The cluster
        directory (data, logs) is left for the caller to keep or remove."""
        cluster = init_cluster(
            directory, nodes=config.nodes, settings=node_settings(config.workload)
        )
        processes = NodeProcesses(cluster)
        try:
            targets = [Target(n.id, n.addresses) for n in cluster.nodes]
            async with Poller.open(targets, client_transport_config(cluster)) as poller:
                live = cls(cluster, processes, poller)
                for node in cluster.node_ids:
                    await live.start(node)
                yield live
        finally:
            with trio.CancelScope(shield=True):
                for node in cluster.node_ids:  # a paused node could not take its SIGTERM
                    processes.kill(node, signal.SIGCONT)
                with trio.move_on_after(STOP_TIMEOUT_S * 2):
                    await processes.stop_all(timeout_s=STOP_TIMEOUT_S)
                await processes.close()

    @property
    def nodes(self) -> tuple[int, ...]:
        return self.cluster.node_ids

    # -- processes -----------------------------------------------------------------------

    async def start(self, node: int) -> None:
        process = await self.processes.start(node)
        self.pids[node].append(process.pid)

    async def restart(self, node: int, timeout_s: float) -> bool:
        """Start `node` again and wait (at most `timeout_s`) until it answers a poll;
        whether it did. Cancellation: the process is started and recorded anyway."""
        await self.start(node)
        with trio.move_on_after(timeout_s):
            while node not in await self.poll():
                await trio.sleep(0.05)
            return True
        return False

    async def kill(self, node: int) -> None:
        """kill -9, and wait until it is gone. Cancellation: the signal is sent; the
        process is reaped when the cluster closes."""
        self.processes.kill(node, signal.SIGKILL)
        await self.processes.wait(node)

    def signal(self, node: int, signum: int) -> None:
        """Send `signum` to the node's process (SIGSTOP / SIGCONT: a pause), if it runs."""
        self.processes.kill(node, signum)

    def alive(self, node: int) -> bool:
        return self.processes.alive(node)

    def log_tail(self, node: int, lines: int = 20) -> list[str]:
        return self.processes.tail(node, lines)

    # -- asking the nodes ----------------------------------------------------------------

    async def poll(self) -> dict[int, NodeInfo]:
        """Every node that answers, within POLL_TIMEOUT_MS. Cancellation leaves nothing."""
        probes = await self.poller.poll(timeout_ms=POLL_TIMEOUT_MS)
        return {p.info.node_id: p.info for p in probes if p.info is not None}

    async def call(self, node: int, request: Message) -> Message:
        """One request straight to `node`, on a connection of its own. Raises
        AdminFailed. Cancellation closes the connection; the node may have acted."""
        entry = self.cluster.find(node)
        assert entry is not None, node
        try:
            async with connect_rpc(
                entry.addresses[0], self._transport, expected_node_id=node
            ) as connection:
                return await connection.call(request, timeout_ms=ADMIN_TIMEOUT_MS)
        except (PeerUnreachable, HandshakeFailed, RpcFailed) as e:
            raise AdminFailed(f"node {node}: {e}") from e

    async def set_faults(self, node: int, request: SetFaults | ClearFaults) -> None:
        """Set (or clear) faults on `node`, trying ADMIN_ATTEMPTS times (both requests
        are idempotent, and a loaded machine may miss a deadline). Raises AdminFailed
        (a refusal is not retried). Cancellation: the node may have set the faults."""
        for attempt in range(1, ADMIN_ATTEMPTS + 1):
            try:
                reply = await self.call(node, request)
                break
            except AdminFailed:
                if attempt == ADMIN_ATTEMPTS:
                    raise
                await trio.sleep(0.1 * attempt)
        if not isinstance(reply, FaultsState):
            raise AdminFailed(f"node {node} refused {type(request).__name__}: {reply!r}")

    async def stale_range(self, node: int, prefix: str) -> tuple[int, tuple[tuple[str, str], ...]]:
        """`node`'s own copy of every key under `prefix`: (its applied index, the pairs).
        Raises AdminFailed. Cancellation leaves nothing behind."""
        start = prefix.encode()
        index, result = await self._stale(node, Range(start, prefix_end(start)))
        return index, tuple((kv.key.decode(), kv.value.decode()) for kv in result.kvs)

    async def stale_value(self, node: int, key: str) -> bytes | None:
        """`node`'s own copy of `key` (None: absent there), however far behind it is.
        Raises AdminFailed. Cancellation leaves nothing behind."""
        _, result = await self._stale(node, Range(key.encode()))
        return result.kvs[0].value if result.kvs else None

    async def _stale(self, node: int, query: Range) -> tuple[int, RangeResult]:
        reply = await self.call(node, Query(encode(query), Consistency.STALE))
        if not isinstance(reply, QueryResult):
            raise AdminFailed(f"node {node} did not read: {reply!r}")
        result = decode(reply.result, Message)
        assert isinstance(result, RangeResult), result
        return reply.index, result


def leader_of(infos: dict[int, NodeInfo]) -> int:
    """The leader of the highest term among those answering (0: none)."""
    leaders = [i for i in infos.values() if i.status.role == "leader"]
    return max(leaders, key=lambda i: i.status.term).node_id if leaders else 0
