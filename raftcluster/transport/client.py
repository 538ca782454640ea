"""The client side: one authenticated RPC connection to one node.

Clients prove a client credential (the cluster's client secret or a named client key,
never the cluster secret) the way nodes prove the cluster secret, and speak the RPC
channel only. Choosing a node, retrying elsewhere and reconnecting belong to the
client API built on top; this module gives it a connection that fails cleanly.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

from raftcluster.transport.config import Address, ClientConfig
from raftcluster.transport.connection import Connection, LinkCounters, Outcome, describe
from raftcluster.transport.errors import PeerUnreachable, RpcFailed
from raftcluster.transport.scope import Unwrapped
from raftcluster.transport.transport import open_and_dial
from raftcluster.transport.wire import NONCE_BYTES, PROTOCOL_VERSION, Hello, PeerKind
from statemachine.codec import Message
from statemachine.errors import InvalidArgument


class RpcConnection:
    """An open client connection to node `node_id` at `address`."""

    def __init__(self, connection: Connection, address: Address, max_pending_calls: int) -> None:
        self._connection = connection
        self._slots = trio.Semaphore(max_pending_calls)
        self.address = address
        self.node_id = connection.session.peer_id

    @property
    def open(self) -> bool:
        return self._connection.open

    @property
    def closed_reason(self) -> str | None:
        """Why the connection closed (None while it is open)."""
        return None if self._connection.open else describe(self._connection.failure)

    @property
    def counters(self) -> LinkCounters:
        return self._connection.counters

    async def call(self, request: Message, *, timeout_ms: int) -> Message:
        """Send `request` to the node and return its response.

        Raises PeerUnreachable (connection closed, or no call slot within the
        timeout: never sent), RpcTimeout or ConnectionLost (sent, outcome unknown),
        RemoteError, LimitExceeded. Cancellation: a request already sent may still
        run on the node; its answer is discarded.
        """
        if timeout_ms <= 0:
            raise InvalidArgument("timeout_ms", f"{timeout_ms} must be positive")
        deadline = trio.current_time() + timeout_ms / 1000
        try:
            self._slots.acquire_nowait()  # the usual case, without a cancel scope
        except trio.WouldBlock:
            with trio.move_on_at(deadline) as waiting:
                await self._slots.acquire()
            if waiting.cancelled_caught:  # trio: a cancelled acquire() acquired nothing
                raise PeerUnreachable(f"node {self.node_id}: too many calls in flight") from None
        try:
            return await self._connection.call(request, deadline=deadline)
        finally:
            self._slots.release()

    def send_call(self, request: Message, *, timeout_ms: int, on_outcome: Outcome) -> bool:
        """Send `request` without waiting for the answer; `on_outcome(response or
        RpcFailed)` is called once, later (see `Connection.send_call`). False, and
        nothing sent, when every call slot is taken (use `call`, which waits for one).
        Raises PeerUnreachable (the connection is closed: not sent), LimitExceeded.
        """
        if timeout_ms <= 0:
            raise InvalidArgument("timeout_ms", f"{timeout_ms} must be positive")
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            return False

        def settled(outcome: Message | RpcFailed) -> None:
            self._slots.release()
            on_outcome(outcome)

        deadline = trio.current_time() + timeout_ms / 1000
        try:
            self._connection.send_call(request, deadline=deadline, on_outcome=settled)
        except BaseException:
            self._slots.release()
            raise
        return True


async def _connect(address: Address, config: ClientConfig, expected_node_id: int) -> Connection:
    hello = Hello(
        version=PROTOCOL_VERSION,
        cluster_id=config.cluster_id,
        kind=PeerKind.CLIENT,
        sender_id=config.client_id,
        expected_id=expected_node_id,
        link=0,
        incarnation=secrets.randbits(63),
        nonce=secrets.token_bytes(NONCE_BYTES),
        credential=config.key_name,
    )
    try:
        session, stream, parser, sealer = await open_and_dial(
            address, hello, config.secret, config.limits, config.tls
        )
    except (OSError, trio.TooSlowError, trio.BrokenResourceError) as e:
        raise PeerUnreachable(f"cannot connect to {address}: {describe(e)}") from e
    connection = Connection(
        stream=stream,
        parser=parser,
        sealer=sealer,
        session=session,
        label=f"node {session.peer_id} ({address})",
        limits=config.limits,
        counters=LinkCounters(connections_opened=1),
        call_ids=itertools.count(1),
        handler=lambda: None,
        on_raft=None,
        budget=None,
    )
    return connection


def connect_rpc(
    address: Address, config: ClientConfig, *, expected_node_id: int = 0
) -> AbstractAsyncContextManager[RpcConnection]:
    """``async with connect_rpc(address, config) as connection:`` -> RpcConnection.

    Connects and authenticates on entry: raises PeerUnreachable (no TCP connection,
    timeout, TLS failure) or HandshakeFailed (AuthenticationFailed for a wrong
    secret, reason WRONG_CLUSTER for another cluster, ...). `expected_node_id`, when
    non-zero, makes the node refuse unless it has that id. Leaving the block closes
    the connection; calls still waiting get ConnectionLost. Cancellation during
    entry leaves nothing open.
    """
    return Unwrapped(_open(address, config, expected_node_id))


@asynccontextmanager
async def _open(
    address: Address, config: ClientConfig, expected: int
) -> AsyncIterator[RpcConnection]:
    connection = await _connect(address, config, expected)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        try:
            yield RpcConnection(connection, address, config.limits.max_pending_calls)
        finally:
            connection.close()
