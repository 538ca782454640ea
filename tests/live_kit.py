"""Real node processes on 127.0.0.1 for the live tests.

`live_cluster(tmp_path)` writes a cluster file (`raftcluster init`), starts every node
as a child process (`NodeProcesses`, as `raftcluster up` does), and yields a `Live` that
can kill, stop and restart nodes, follow the cluster with a `Poller`, and open clients
(`CoreRunner`: sessions and retries of the client core). Waits poll the cluster until a
condition holds, with generous deadlines: the machine may be loaded. When a test
fails, the end of every node's log is printed.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import attrs
import trio

from raftcluster.cli.processes import NodeProcesses
from raftcluster.cli.status import summarize
from raftcluster.client.core import ClientConfig
from raftcluster.client.probe import Poller, Probe, Target
from raftcluster.client.runner import CoreRunner
from raftcluster.config import ClusterFile, client_transport_config, endpoints, init_cluster
from raftcluster.node.admin import NodeInfo
from raftcluster.node.protocol import (
    Consistency,
    NotLeader,
    Query,
    QueryResult,
    RefuseCode,
    Refused,
)
from raftcluster.transport import connect_rpc
from statemachine.codec import Message, decode, encode

SETTINGS: dict[str, int | bool] = {
    "timing.election_timeout_ms": 600,
    "timing.heartbeat_interval_ms": 60,
    "cluster.allow_fault_injection": True,
}
WAIT_S = 45.0  # the longest any wait below may take on a loaded machine
_TRANSIENT = (RefuseCode.TIMED_OUT, RefuseCode.UNAVAILABLE, RefuseCode.OVERLOADED)


@attrs.frozen
class Ran:
    """A command line's exit status and output."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        """Its output as JSON lines (a `--json` stream)."""
        return [json.loads(line) for line in self.out.splitlines()]


class Live:
    def __init__(self, cluster: ClusterFile, processes: NodeProcesses, poller: Poller) -> None:
        self.cluster = cluster
        self.processes = processes
        self.poller = poller

    # -- following the cluster -----------------------------------------------------------

    async def all_answer(self) -> dict[int, NodeInfo]:
        """The info of every node, once all of them answer one poll."""
        found = await self.until("every node to answer", lambda i: i if len(i) == len(
            self.cluster.nodes) else None)  # fmt: skip
        assert isinstance(found, dict)
        return found

    async def poll(self) -> dict[int, NodeInfo]:
        probes: list[Probe] = await self.poller.poll(timeout_ms=2_000)
        return {p.info.node_id: p.info for p in probes if p.info is not None}

    async def until(self, what: str, check: Callable[[dict[int, NodeInfo]], object]) -> object:
        """Poll until `check(infos)` is truthy; return it. Fails after WAIT_S."""
        with trio.move_on_after(WAIT_S):
            while True:
                found = check(await self.poll())
                if found:
                    return found
                await trio.sleep(0.05)
        raise AssertionError(f"waited {WAIT_S} s for {what}")

    async def leader(self, other_than: int = 0) -> int:
        def check(infos: dict[int, NodeInfo]) -> int:
            leaders = [i for i in infos.values() if i.status.role == "leader"]
            if not leaders:
                return 0
            best = max(leaders, key=lambda i: i.status.term)
            return best.node_id if best.node_id != other_than else 0

        found = await self.until("a leader", check)
        assert isinstance(found, int)
        return found

    async def converged(self, nodes: tuple[int, ...] | None = None) -> int:
        """Wait until every node in `nodes` (default: all) answers with the same applied
        index, equal to its commit index. Returns that index."""
        wanted = nodes or self.cluster.node_ids

        def check(infos: dict[int, NodeInfo]) -> int:
            if not all(n in infos for n in wanted):
                return 0
            applied = {infos[n].status.applied_index for n in wanted}
            commits = {infos[n].status.commit_index for n in wanted}
            return applied.pop() if len(applied) == 1 and applied == commits else 0

        found = await self.until(f"nodes {wanted} to apply the same index", check)
        assert isinstance(found, int)
        return found

    def summary(self, probes: list[Probe]) -> dict[str, object]:
        return summarize(self.cluster.cluster_id, probes)

    # -- processes -----------------------------------------------------------------------

    async def kill(self, node: int) -> int:
        """kill -9; returns the exit status once it is gone."""
        self.processes.kill(node, signal.SIGKILL)
        return await self.processes.wait(node)

    async def terminate(self, node: int) -> int | None:
        return await self.processes.stop(node, timeout_s=WAIT_S)

    async def start(self, node: int) -> None:
        await self.processes.start(node)

    # -- clients -------------------------------------------------------------------------

    def client(self, **config: int) -> AbstractAsyncContextManager[CoreRunner]:
        core = ClientConfig(nodes=self.cluster.node_ids, **config)  # type: ignore[arg-type]
        return CoreRunner.open(endpoints(self.cluster), client_transport_config(self.cluster), core)

    async def call(self, node: int, request: Message) -> Message:
        """One request straight to `node` (no retries, no leader search)."""
        entry = self.cluster.find(node)
        assert entry is not None
        config = client_transport_config(self.cluster)
        async with connect_rpc(entry.addresses[0], config, expected_node_id=node) as connection:
            return await connection.call(request, timeout_ms=10_000)

    async def query(self, node: int, query: Message, *, stale: bool) -> tuple[int, Message]:
        """`query` answered by `node` itself: (the applied index it read at, the result).
        A linearizable read is asked again while the node cannot serve it (no leader known
        during an election, say: a loaded machine may cause one at any time)."""
        consistency = Consistency.STALE if stale else Consistency.LINEARIZABLE
        with trio.move_on_after(WAIT_S):
            while True:
                reply = await self.call(node, Query(encode(query), consistency))
                if isinstance(reply, QueryResult):
                    return reply.index, decode(reply.result, Message)
                assert isinstance(reply, NotLeader | Refused), reply
                assert not isinstance(reply, Refused) or reply.code in _TRANSIENT, reply
                await trio.sleep(0.05)
        raise AssertionError(f"node {node} did not answer {query!r} within {WAIT_S} s")


@contextlib.asynccontextmanager
async def live_cluster(
    directory: Path, nodes: int = 3, settings: dict[str, int | bool] | None = None
) -> AsyncIterator[Live]:
    cluster = init_cluster(directory, nodes=nodes, settings={**SETTINGS, **(settings or {})})
    processes = NodeProcesses(cluster)
    targets = [Target(n.id, n.addresses) for n in cluster.nodes]
    try:
        for node in cluster.node_ids:
            await processes.start(node)
        async with Poller.open(targets, client_transport_config(cluster)) as poller:
            yield Live(cluster, processes, poller)
    except BaseException:
        for node in cluster.node_ids:
            print(f"--- the end of node {node}'s log ---")
            print("\n".join(processes.tail(node, 40)))
        raise
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(WAIT_S):
                await processes.stop_all(timeout_s=10)
            await processes.close()
