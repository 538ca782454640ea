"""Ask nodes who they are and how they are doing (`GetNodeInfo`), one connection each.

Used by `raftcluster status` (`probe_all`: a connection per node, closed after), and
`raftcluster up`, the demo and the tests (`Poller`: connections kept open between
polls). A probe never raises for an unreachable or refusing node: its `Probe` says what
went wrong (`problem` is one of the `PROBLEMS`, `error` the message).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager

import attrs
import trio

from raftcluster.client.links import Links
from raftcluster.node.admin import GetNodeInfo, NodeInfo
from raftcluster.node.protocol import Refused
from raftcluster.transport import (
    Address,
    AuthenticationFailed,
    HandshakeFailed,
    PeerUnreachable,
    RefusalReason,
    RpcConnection,
    RpcFailed,
    connect_rpc,
)
from raftcluster.transport import ClientConfig as TransportClientConfig
from raftcluster.transport.scope import Unwrapped

PROBLEMS = ("unreachable", "wrong-secret", "wrong-cluster", "wrong-node", "refused", "timeout")


@attrs.frozen
class Target:
    """A node to probe: its id from the cluster file (0: unknown) and its addresses."""

    node_id: int
    addresses: tuple[Address, ...]


@attrs.frozen
class Probe:
    target: Target
    info: NodeInfo | None = None
    problem: str = ""  # "" when `info` is set
    error: str = ""

    @property
    def reachable(self) -> bool:
        return self.info is not None


async def probe(target: Target, config: TransportClientConfig, *, timeout_ms: int) -> Probe:
    """Connect to `target` (each address in turn) and ask for its NodeInfo, all within
    `timeout_ms`. Cancellation: closes the connection; nothing else is left."""
    result = Probe(target, problem="timeout", error=f"no answer within {timeout_ms} ms")
    with trio.move_on_after(timeout_ms / 1000):
        for address in target.addresses:
            result = await _probe_one(target, address, config, timeout_ms)
            if result.reachable or result.problem not in ("unreachable", "timeout"):
                break
    return result


async def probe_all(
    targets: Sequence[Target], config: TransportClientConfig, *, timeout_ms: int
) -> list[Probe]:
    """Probe every target at once; results in the targets' order. Cancellation closes
    every connection it opened; nothing else is left."""
    results: list[Probe | None] = [None] * len(targets)

    async def one(i: int) -> None:
        results[i] = await probe(targets[i], config, timeout_ms=timeout_ms)

    async with trio.open_nursery() as nursery:
        for i in range(len(targets)):
            nursery.start_soon(one, i)
    return [r for r in results if r is not None]


class Poller:
    """Asks a fixed set of nodes for their NodeInfo again and again, over connections it
    keeps open (so a supervisor polling twice a second opens no new connection each time).
    """

    def __init__(self, targets: Sequence[Target], links: Links) -> None:
        self.targets = tuple(targets)
        self._links = links

    @classmethod
    def open(
        cls, targets: Sequence[Target], config: TransportClientConfig
    ) -> AbstractAsyncContextManager[Poller]:
        """``async with Poller.open(targets, config) as poller``; leaving closes every
        connection. Cancellation of the block does the same."""
        return Unwrapped(cls._running(targets, config))

    @classmethod
    @contextlib.asynccontextmanager
    async def _running(
        cls, targets: Sequence[Target], config: TransportClientConfig
    ) -> AsyncIterator[Poller]:
        async with trio.open_nursery() as nursery:
            nodes = {i: (t.node_id, t.addresses) for i, t in enumerate(targets)}
            try:
                yield cls(targets, Links(nursery, config, nodes))
            finally:
                nursery.cancel_scope.cancel()

    async def poll(self, *, timeout_ms: int) -> list[Probe]:
        """Probe every target at once (each within `timeout_ms`); in the targets' order.
        Cancellation: leaves the connections open for the next poll."""
        results: list[Probe] = [
            Probe(t, problem="timeout", error=f"no answer within {timeout_ms} ms")
            for t in self.targets
        ]

        async def one(i: int) -> None:
            with trio.move_on_after(timeout_ms / 1000):
                results[i] = await self._poll_one(i, timeout_ms)

        async with trio.open_nursery() as nursery:
            for i in range(len(self.targets)):
                nursery.start_soon(one, i)
        return results

    async def _poll_one(self, i: int, timeout_ms: int) -> Probe:
        target = self.targets[i]
        address = ", ".join(str(a) for a in target.addresses)
        try:
            connection = await self._links.get(i)
        except (HandshakeFailed, PeerUnreachable) as e:
            return _failed(target, address, e)
        result = await _ask(target, str(connection.address), connection, timeout_ms)
        if not result.reachable:
            self._links.release(i)
        return result


async def _probe_one(
    target: Target, address: Address, config: TransportClientConfig, timeout_ms: int
) -> Probe:
    try:
        async with connect_rpc(address, config, expected_node_id=target.node_id) as connection:
            return await _ask(target, str(address), connection, timeout_ms)
    except (HandshakeFailed, PeerUnreachable) as e:
        return _failed(target, str(address), e)


async def _ask(target: Target, address: str, connection: RpcConnection, timeout_ms: int) -> Probe:
    try:
        reply = await connection.call(GetNodeInfo(), timeout_ms=timeout_ms)
    except PeerUnreachable as e:
        return Probe(target, problem="unreachable", error=str(e))
    except RpcFailed as e:
        return Probe(target, problem="timeout", error=f"{address}: {e}")
    if isinstance(reply, NodeInfo):
        return Probe(target, info=reply)
    if isinstance(reply, Refused):
        return Probe(target, problem="refused", error=f"{address}: {reply.message}")
    return Probe(target, problem="refused", error=f"{address}: unexpected {type(reply).__name__}")


def _failed(target: Target, address: str, e: HandshakeFailed | PeerUnreachable) -> Probe:
    if isinstance(e, AuthenticationFailed):
        return Probe(target, problem="wrong-secret", error=f"{address} refused our secret")
    if isinstance(e, HandshakeFailed):
        problem = {
            RefusalReason.WRONG_CLUSTER: "wrong-cluster",
            RefusalReason.WRONG_NODE: "wrong-node",
        }.get(e.reason, "refused")
        return Probe(target, problem=problem, error=f"{address}: {e}")
    return Probe(target, problem="unreachable", error=str(e))
