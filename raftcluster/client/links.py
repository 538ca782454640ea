"""Client connections to nodes, opened on demand and kept open for later requests.

`connect_rpc` is an async context manager, so each connection is held open by a task of
the owner's nursery until it is released (a failed call, or the owner closing). `get`
dials the node's addresses in turn; `release` drops a connection so the next `get`
dials again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import trio

from raftcluster.transport import (
    Address,
    HandshakeFailed,
    PeerUnreachable,
    RefusalReason,
    RpcConnection,
    connect_rpc,
)
from raftcluster.transport import ClientConfig as TransportClientConfig

# Refusals no retry can fix: the client's own configuration is wrong.
FATAL_REFUSALS = (
    RefusalReason.BAD_PROOF,
    RefusalReason.WRONG_CLUSTER,
    RefusalReason.VERSION,
    RefusalReason.CERT_MISMATCH,  # our certificate does not fit our credential: no retry helps
)


@attrs.define
class _Link:
    expected_id: int  # 0: any node may answer
    addresses: tuple[Address, ...]
    connection: RpcConnection | None = None
    release: trio.Event = attrs.Factory(trio.Event)
    lock: trio.Lock = attrs.Factory(trio.Lock)


class Links:
    def __init__(
        self,
        nursery: trio.Nursery,
        config: TransportClientConfig,
        nodes: Mapping[int, tuple[int, Sequence[Address]]],
    ) -> None:
        """`nodes`: a key (the node id, or any number) -> (the node id expected there, 0
        for any; its addresses).
        Connections live in `nursery`: cancelling it closes them all."""
        self._nursery = nursery
        self._config = config
        self._links = {key: _Link(node_id, tuple(addrs)) for key, (node_id, addrs) in nodes.items()}

    async def get(self, key: int) -> RpcConnection:
        """An open connection to the node at `key`, dialing its addresses in turn if
        needed. Raises PeerUnreachable, or HandshakeFailed (the last address's refusal, or
        at once for a wrong secret or cluster). Cancellation leaves nothing half-open."""
        link = self._links[key]
        async with link.lock:
            if link.connection is not None and link.connection.open:
                return link.connection
            self.release(key)
            failure: Exception = PeerUnreachable(f"{key}: no address")
            for address in link.addresses:
                try:
                    connection: RpcConnection = await self._nursery.start(
                        self._hold, address, link.expected_id, link.release
                    )
                except (PeerUnreachable, HandshakeFailed) as e:
                    if isinstance(e, HandshakeFailed) and e.reason in FATAL_REFUSALS:
                        raise
                    failure = e
                    continue
                link.connection = connection
                return connection
            raise failure

    def open_connection(self, key: int) -> RpcConnection | None:
        """The connection to `key` if one is open now (no waiting, no dialling)."""
        connection = self._links[key].connection
        return connection if connection is not None and connection.open else None

    def release(self, key: int) -> None:
        """Close the connection to `key` (if any); the next `get` dials again."""
        link = self._links[key]
        link.release.set()
        link.release = trio.Event()
        link.connection = None

    async def _hold(
        self,
        address: Address,
        expected_id: int,
        release: trio.Event,
        *,
        task_status: trio.TaskStatus[RpcConnection] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with connect_rpc(address, self._config, expected_node_id=expected_id) as connection:
            task_status.started(connection)
            await release.wait()
