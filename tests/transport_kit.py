"""Helpers for the transport tests: messages, configs, local clusters, a link proxy."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from raftcluster.transport import (
    Address,
    BondMode,
    Caller,
    ClientConfig,
    Limits,
    StaticClientKeys,
    Transport,
    TransportConfig,
)
from statemachine.codec import Message, max_len, tagged

SECRET = b"correct horse battery staple 0123"  # the nodes' (cluster) secret
CLIENT_SECRET = b"client horse battery staple 4567"  # what clients prove
CLUSTER = "test-cluster"
LOCAL = Address("127.0.0.1", 0)


@tagged(9100)
@attrs.frozen
class Note(Message):
    """A stand-in for a raft message."""

    seq: int
    text: str = attrs.field(default="", validator=max_len(1 << 24, "characters"))


@tagged(9101)
@attrs.frozen
class Ask(Message):
    """An RPC request: `op` selects what the test handler does."""

    op: str
    value: int = 0


@tagged(9102)
@attrs.frozen
class Answer(Message):
    value: int
    served_by: int


def node_config(node_id: int, **overrides: Any) -> TransportConfig:
    fields: dict[str, Any] = {
        "cluster_id": CLUSTER,
        "node_id": node_id,
        "secret": SECRET,
        "listen": (LOCAL,),
        "clients": StaticClientKeys(CLIENT_SECRET),
    }
    fields.update(overrides)
    return TransportConfig(**fields)


def client_config(client_id: int = 501, **overrides: Any) -> ClientConfig:
    fields: dict[str, Any] = {
        "cluster_id": CLUSTER,
        "client_id": client_id,
        "secret": CLIENT_SECRET,
    }
    fields.update(overrides)
    return ClientConfig(**fields)


def fast_limits(**overrides: Any) -> Limits:
    """Short timeouts so failures are detected quickly in real time."""
    fields: dict[str, Any] = {
        "handshake_timeout_ms": 2000,
        "keepalive_interval_ms": 100,
        "idle_timeout_ms": 600,
    }
    fields.update(overrides)
    return Limits(**fields)


def echo_handler(node_id: int) -> Callable[[Caller, Message], Awaitable[Message]]:
    """`Ask("add", n)` -> Answer(n + 1); `Ask("fail")` raises; `Ask("sleep", ms)` sleeps."""

    async def handle(caller: Caller, request: Message) -> Message:
        assert isinstance(request, Ask), request
        if request.op == "fail":
            raise RuntimeError("handler asked to fail")
        if request.op == "sleep":
            await trio.sleep(request.value / 1000)
        if request.op == "not-a-message":
            return "oops"  # type: ignore[return-value]
        return Answer(request.value + 1, node_id)

    return handle


def make_node(node_id: int, *, seed: int = 0, **overrides: Any) -> Transport:
    return Transport(
        node_config(node_id, **overrides),
        rng=random.Random(seed * 1000 + node_id),
        rpc_handler=echo_handler(node_id),
    )


class Running:
    """A transport serving in a test's nursery, stoppable on its own."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.stopped = trio.Event()

    async def stop(self) -> None:
        """Cancel it and wait until its listeners are closed (so its ports are free)."""
        self.scope.cancel()
        await self.stopped.wait()


async def start(nursery: trio.Nursery, transport: Transport) -> Running:
    """Serve `transport` in `nursery`; the returned handle stops it alone."""
    running = Running()

    async def serve(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with running.scope:
                await transport.serve(task_status=task_status)
        finally:
            running.stopped.set()

    await nursery.start(serve)
    return running


async def start_nodes(
    nursery: trio.Nursery, count: int, *, seed: int = 0, **overrides: Any
) -> list[Transport]:
    """Start nodes 1..count on port 0 and tell each the others' addresses."""
    nodes = [make_node(node_id, seed=seed, **overrides) for node_id in range(1, count + 1)]
    for node in nodes:
        await start(nursery, node)
    wire(nodes)
    return nodes


def wire(nodes: list[Transport]) -> None:
    for node in nodes:
        for other in nodes:
            if other is not node:
                node.set_peer(other.node_id, other.listen_addresses)


async def until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    """Wait for `predicate` to hold; fail the test (TooSlowError) if it never does."""
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.005)


def connected(*nodes: Transport) -> Callable[[], bool]:
    def check() -> bool:
        return all(node.is_connected(peer) for node in nodes for peer in node.peer_ids)

    return check


async def receive_notes(transport: Transport, count: int, timeout_s: float = 10.0) -> list[Any]:
    got = []
    with trio.fail_after(timeout_s):
        for _ in range(count):
            got.append(await transport.inbox.receive())
    return got


class LinkProxy:
    """A TCP forwarder standing for one network link between a dialer and a listener.

    `cut()` closes its connections and refuses new ones (a link that went down);
    `blackhole()` keeps connections open but stops forwarding (a silent failure);
    `restore()` brings it back.
    """

    def __init__(self, target: Address) -> None:
        self.target = target
        self.address = LOCAL
        self.state = "up"
        self.accepted = 0
        self.seen = bytearray()  # everything forwarded, both ways (to check what is visible)
        self._scope = trio.CancelScope()
        self._connections: trio.Nursery | None = None

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.address = Address("127.0.0.1", listeners[0].socket.getsockname()[1])
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self.address)
            while True:
                stream = await listeners[0].accept()
                if self.state != "up":
                    await trio.aclose_forcefully(stream)
                    continue
                self.accepted += 1
                nursery.start_soon(self._forward, stream, self._scope)

    async def _forward(self, downstream: trio.SocketStream, scope: trio.CancelScope) -> None:
        with scope:
            try:
                upstream = await trio.open_tcp_stream(self.target.host, self.target.port)
            except OSError:
                await trio.aclose_forcefully(downstream)
                return
            async with downstream, upstream, trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, downstream, upstream, nursery.cancel_scope)
                nursery.start_soon(self._pump, upstream, downstream, nursery.cancel_scope)

    async def _pump(
        self, source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        try:
            while data := await source.receive_some(65536):
                while self.state == "blackhole":
                    await trio.sleep(0.01)
                self.seen += data
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()

    def cut(self) -> None:
        self.state = "down"
        self._scope.cancel()
        self._scope = trio.CancelScope()

    def blackhole(self) -> None:
        self.state = "blackhole"

    def restore(self) -> None:
        self.state = "up"


async def bonded_pair(
    nursery: trio.Nursery,
    mode: BondMode = BondMode.ACTIVE_BACKUP,
    limits: Limits | None = None,
) -> tuple[Transport, Transport, list[LinkProxy]]:
    """Node 1 reaches node 2 over two links, each through a proxy that can fail; returns
    once both links are up on both sides (`limits` defaults to fast_limits())."""
    nodes = [
        Transport(
            node_config(i, limits=limits or fast_limits(), bond_mode=mode),
            rng=random.Random(i),
            rpc_handler=echo_handler(i),
        )
        for i in (1, 2)
    ]
    for node in nodes:
        await start(nursery, node)
    one, two = nodes
    proxies = [LinkProxy(two.listen_addresses[0]) for _ in range(2)]
    for proxy in proxies:
        await nursery.start(proxy.run)
    two.set_peer(1, one.listen_addresses)
    one.set_peer(2, [proxy.address for proxy in proxies])
    await until(lambda: both_links_up(one, 2) and both_links_up(two, 1))
    return one, two, proxies


def both_links_up(node: Transport, peer: int) -> bool:
    links = node.stats().peer(peer).links
    return len(links) == 2 and all(link.connected for link in links)
