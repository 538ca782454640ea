"""The node side of the transport: listeners, links to peers, the raft and RPC channels.

Who dials: for every pair of nodes, the one with the lower id dials each address
(link) of the other; the higher one only accepts. So there is exactly one
connection per link and no tie-breaking, at the cost that a restarted higher-id
node waits for its lower-id peers' next redial (at most `Backoff.max_ms`).

Raft messages (`send`) are encoded in the caller's task, pass the fault layer, and
join a bounded per-peer queue served by the link the bond mode picks; when no link
is up or the queue is full they are dropped and counted (Raft retransmits). When a
link fails, its queued messages move to the link that takes over. RPCs (`call`) go
on the same connections, each call a flow of its own.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any

import attrs
import trio

from raftcluster.transport import certnames, handshake
from raftcluster.transport.config import (
    Address,
    BondMode,
    Limits,
    TlsConfig,
    TransportConfig,
    check_links,
)
from raftcluster.transport.connection import (
    Connection,
    LinkCounters,
    QueueBudget,
    Queued,
    RpcHandler,
    RpcSubmit,
    describe,
    log,
)
from raftcluster.transport.credentials import ClientKey
from raftcluster.transport.errors import (
    HandshakeFailed,
    IdleTimeout,
    PeerUnreachable,
    ProtocolError,
    RefusalReason,
    TransportError,
    UnknownPeer,
)
from raftcluster.transport.faults import FaultLayer
from raftcluster.transport.framing import FrameParser, FrameSealer
from raftcluster.transport.handshake import MemberCheck, Session
from raftcluster.transport.scope import Unwrapped
from raftcluster.transport.wire import (
    MAX_FLOWS,
    MAX_HANDSHAKE_FRAME_BYTES,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    Hello,
    LinkStats,
    PeerKind,
    PeerStats,
    RaftFrame,
    TransportStats,
)
from statemachine.codec import Message, encode
from statemachine.errors import InvalidArgument, LimitExceeded
from statemachine.partset import NO_PARTS, PartSet

# accept() failures that mean "out of resources for now", not "the listener is broken".
_ACCEPT_RETRY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_RETRY_S = 0.1


@attrs.frozen
class Incoming:
    """A raft message received from peer `peer_id`."""

    peer_id: int
    message: Message


class _Link:
    def __init__(self, index: int, address: str) -> None:
        self.index = index
        self.address = address
        self.counters = LinkCounters()
        self.connection: Connection | None = None
        self.failing = False  # log the first failed dial of a streak loudly, the rest quietly


class _Peer:
    def __init__(self, node_id: int, addresses: tuple[Address, ...], limits: Limits) -> None:
        self.node_id = node_id
        self.addresses = addresses
        self.links: dict[int, _Link] = {}
        self.budget = QueueBudget(limits.raft_queue_frames, limits.raft_queue_bytes)
        self.call_slots = trio.Semaphore(limits.max_pending_calls)
        self.changed = trio.Event()
        self.dialers: trio.CancelScope | None = None
        self.removed = False
        self.raft_sent = 0
        self.raft_received = 0
        self.dropped_queue_full = 0
        self.dropped_no_link = 0
        self.dropped_by_faults = 0
        self.lost_on_close = 0
        self.discarded_out_of_order = 0
        self.next_seq: dict[int, int] = {}  # flow -> seq of the next raft message we queue
        # What we deliver: the peer's incarnation on its newest link, the last seq per flow.
        self.rx_incarnation: int | None = None
        self.rx_last_seq: dict[int, int] = {}

    def link(self, index: int, address: str) -> _Link:
        link = self.links.get(index)
        if link is None:
            link = self.links[index] = _Link(index, address)
        link.address = address
        return link

    def live(self) -> list[Connection]:
        return [
            link.connection
            for _, link in sorted(self.links.items())
            if link.connection is not None and link.connection.open
        ]

    def pick(self, flow: int, mode: BondMode) -> Connection | None:
        if len(self.links) == 1:  # the usual case (once per message sent): nothing to sort
            for link in self.links.values():
                connection = link.connection
                return connection if connection is not None and connection.open else None
        live = self.live()
        if not live:
            return None
        if mode is BondMode.ACTIVE_BACKUP:
            return live[0]
        return live[flow % len(live)]

    def accept_raft(self, connection: Connection, frame: RaftFrame) -> bool:
        """Whether to deliver: from the current incarnation and newer than the flow's last."""
        if connection.session.peer_incarnation != self.rx_incarnation:
            return False
        if frame.seq <= self.rx_last_seq.get(frame.flow, -1):
            return False
        self.rx_last_seq[frame.flow] = frame.seq
        return True

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class Transport:
    """A node's communications manager. Runs inside a nursery; see `serve`.

    Construct, then either ``await nursery.start(transport.serve)`` or
    ``async with transport:``. `rng` drives reconnection jitter and, unless a
    `faults` layer is given, seeds the fault layer's generator.
    """

    def __init__(
        self,
        config: TransportConfig,
        *,
        rng: random.Random,
        rpc_handler: RpcHandler | None = None,
        faults: FaultLayer | None = None,
    ) -> None:
        self.config = config
        self.faults = (
            faults if faults is not None else FaultLayer(random.Random(rng.getrandbits(64)))
        )
        self._rng = rng
        # From the operating system, not `rng`: a restarted node must get a new one even
        # when it is started with the same seed (see RaftFrame).
        self.incarnation = secrets.randbits(63)
        self._handler = rpc_handler
        limits = config.limits
        self._peers = {pid: _Peer(pid, addrs, limits) for pid, addrs in config.peers.items()}
        self._clients: set[Connection] = set()
        self._inbox_send, self._inbox = trio.open_memory_channel[Incoming](limits.inbox_frames)
        self._call_ids = itertools.count(1)
        self._flows = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._listen: tuple[Address, ...] = ()
        self._state = "new"
        self._handshaking = 0
        self._handshakes_refused = 0
        self._connections_failed = 0
        self._inbox_dropped = 0
        self._raft_handler: Callable[[int, Message], None] | None = None
        self._submit: RpcSubmit | None = None
        self._after_reading: Callable[[], None] | None = None
        self._link_down: Callable[[int], None] | None = None
        self._client_requests: Callable[[Message], bool] | None = None
        self._member_check: MemberCheck | None = None
        self._context: Unwrapped[Transport] | None = None

    # -- public: running -----------------------------------------------------------------

    @property
    def node_id(self) -> int:
        return self.config.node_id

    @property
    def listen_addresses(self) -> tuple[Address, ...]:
        """The bound addresses (ports filled in), once `serve` has started."""
        return self._listen

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, dial the peers this node dials, and serve until cancelled.

        `task_status.started(addresses)` is called once every listener is bound, with
        the actual addresses. Raises TransportError if a listen address cannot be
        bound. A Transport serves once.

        Cancellation closes the listeners and every connection, fails calls in
        flight with ConnectionLost, discards queued raft messages and closes the
        inbox (its receive side then raises EndOfChannel once drained).
        """
        if self._state != "new":
            raise TransportError("a Transport serves once")
        self._state = "serving"
        listeners = await self._open_listeners()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for listener in listeners:
                    nursery.start_soon(self._accept_loop, listener)
                for peer in self._peers.values():
                    self._start_dialing(peer)
                task_status.started(self._listen)
        finally:
            self._nursery = None
            self._state = "stopped"
            self._inbox_send.close()
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    async def __aenter__(self) -> Transport:
        """Start serving in a nursery of its own; leaving the block stops it (see `serve`).

        Raises what `serve` raises before it is listening (TransportError). Cancelled
        during entry, it leaves nothing running or bound.
        """
        self._context = Unwrapped(self._running())
        return await self._context.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        """Stop serving (as cancelling `serve` does) and let the block's error through."""
        assert self._context is not None
        return await self._context.__aexit__(exc_type, exc, traceback)

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[Transport]:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.serve)
            try:
                yield self
            finally:
                nursery.cancel_scope.cancel()

    # -- public: peers -------------------------------------------------------------------

    @property
    def peer_ids(self) -> frozenset[int]:
        return frozenset(self._peers)

    def set_peer(self, node_id: int, addresses: Sequence[Address]) -> None:
        """Add a peer or change its addresses (membership changes, tests on port 0).

        Changing the addresses closes the links this node dialed and redials; messages
        queued for the peer are kept.
        """
        links = tuple(addresses)
        check_links(node_id, links)
        if node_id == self.node_id or node_id <= 0:
            raise InvalidArgument("node_id", f"{node_id} cannot be a peer of node {self.node_id}")
        peer = self._peers.get(node_id)
        if peer is None:
            peer = self._peers[node_id] = _Peer(node_id, links, self.config.limits)
        elif peer.addresses == links:
            return
        else:
            peer.addresses = links
            if peer.dialers is not None:
                peer.dialers.cancel()
        self._start_dialing(peer)

    def remove_peer(self, node_id: int) -> None:
        """Forget a peer: close its links; queued messages and waiting calls are dropped."""
        peer = self._peers.pop(node_id, None)
        if peer is None:
            return
        peer.removed = True
        if peer.dialers is not None:
            peer.dialers.cancel()
        for link in peer.links.values():
            if link.connection is not None:
                link.connection.close()
        peer.notify()

    def revalidate_clients(self) -> int:
        """Close every client connection whose credential is no longer the one it proved
        (revoked, replaced, or its rights changed); how many were closed. Call it when
        the credentials changed (`TransportConfig.clients`): a revoked key is refused at
        the next handshake anyway, this ends the connections it already opened."""
        closed = 0
        for connection in list(self._clients):
            used = connection.session.client_key
            if used is not None and self._client_key(used.name) != used:
                log.warning("node %d: closing %s: %s was revoked or changed", self.node_id,
                            connection.label, used.label)  # fmt: skip
                connection.close()
                closed += 1
        return closed

    def is_connected(self, peer_id: int) -> bool:
        return bool(self._require(peer_id).live())

    # -- public: raft channel ------------------------------------------------------------

    @property
    def inbox(self) -> trio.MemoryReceiveChannel[Incoming]:
        """Raft messages from peers, in arrival order per link. Bounded: when the
        runtime falls behind, new messages are dropped and counted (`inbox_dropped`)."""
        return self._inbox

    def set_raft_handler(self, handler: Callable[[int, Message], None] | None) -> None:
        """Hand raft messages to `handler(peer_id, message)` as they are read, instead of
        queueing them in the inbox (None: the inbox again). Messages already in the inbox
        stay there.

        The handler runs in the connection's reader, once per message: it must neither
        block nor raise (a node's replica takes any message and bounds its own queues).
        It saves the runtime a task switch per batch of messages."""
        self._raft_handler = handler

    def send(self, peer_id: int, message: Message, *, flow: int = 0) -> bool:
        """Queue a raft message for `peer_id`; never blocks. True if queued.

        False when it was dropped: by the fault layer, because no link to the peer
        is up, or because the peer's queue is full (each counted in the stats).
        Raises UnknownPeer, InvalidArgument (flow outside 0..63), and LimitExceeded
        if the message does not fit in a frame.

        Each `flow` (0..63) is a FIFO that may lose messages but never reorders or
        duplicates them, whatever happens to the links. In BALANCE_FLOW mode distinct
        flows spread over the links (say heartbeats on one flow, snapshot chunks on
        another, so a large transfer does not hold heartbeats back).
        """
        peer = self._require(peer_id)
        if not 0 <= flow < MAX_FLOWS:
            raise InvalidArgument("flow", f"{flow} is outside 0..{MAX_FLOWS - 1}")
        seq = peer.next_seq.get(flow, 0)
        body = encode(RaftFrame(flow, seq, message))
        if len(body) > self.config.limits.max_frame_bytes:
            raise LimitExceeded("raft message", self.config.limits.max_frame_bytes, len(body))
        verdict = self.faults.decide(peer_id)
        if not verdict.deliver:
            peer.dropped_by_faults += 1
            return False
        connection = peer.pick(flow, self.config.bond_mode)
        if connection is None:
            peer.dropped_no_link += 1
            return False
        if not peer.budget.take(len(body)):
            peer.dropped_queue_full += 1
            return False
        due = trio.current_time() + verdict.delay_ms / 1000 if verdict.delay_ms else 0.0
        connection.outbox.put_raft(Queued(due, body, flow))
        peer.next_seq[flow] = seq + 1
        peer.raft_sent += 1
        return True

    # -- public: rpc channel -------------------------------------------------------------

    def set_rpc_handler(self, handler: RpcHandler | None) -> None:
        """Serve RPCs with `handler(caller, request) -> response` (None: answer NO_HANDLER)."""
        self._handler = handler

    def set_rpc_submit(self, submit: RpcSubmit | None) -> None:
        """Offer each RPC request first to `submit(caller, request, respond)`, which runs
        in the connection's reader: it returns False to leave the request to the RPC
        handler, or True and then calls `respond(response)` exactly once, at once or
        later, from any task. It must not block. It saves a task and a cancel scope per
        request, so it suits requests answered by another loop (a node's client
        requests); it must answer every request it takes, since no deadline is kept
        for them here (a late answer is ignored by a caller that gave up). None: every
        request goes to the handler."""
        self._submit = submit

    def set_client_requests(self, accepts: Callable[[Message], bool] | None) -> None:
        """What a client may ask: a request body from a client for which `accepts(body)`
        is False closes that client's connection (with the reason logged), as does any
        frame but a request or a keepalive (a raft frame, an answer). None: any body."""
        self._client_requests = accepts

    def set_member_check(self, check: MemberCheck | None) -> None:
        """Refuse (STALE_MEMBER) a peer node whose member incarnation `check(node_id,
        incarnation)` objects to, with the reason it returns, in every later handshake, this
        node accepting or dialing (None: no check). It runs in the handshake: it must
        neither block nor raise. Links already up are not re-checked (a removed member's
        links close when it is removed: `remove_peer`)."""
        self._member_check = check

    def set_after_reading(self, hook: Callable[[], None] | None) -> None:
        """Call `hook()` in a connection's reader after each batch of frames it read and
        handed out (to the raft handler, the submit hook, ...; at most
        `Limits.read_batch_frames` of one read), so that the receiver can act once per
        batch on what they brought. It must neither block nor raise."""
        self._after_reading = hook

    def set_link_down_handler(self, handler: Callable[[int], None] | None) -> None:
        """Call `handler(peer_id)` when the last open connection to a peer is closed by
        the peer (end of stream or a reset: its process exited or crashed, and its
        kernel closed its sockets), as opposed to falling silent (an idle timeout), being
        refused, or closed by this side. Runs synchronously in the closing connection's
        task, after its queued raft frames were re-routed: it must neither block nor
        raise. A node's driver takes it as evidence that the peer is gone."""
        self._link_down = handler

    async def call(self, peer_id: int, request: Message, *, timeout_ms: int) -> Message:
        """Send `request` to peer `peer_id` and return its response.

        Waits up to `timeout_ms` in all: for a free call slot, for a live link, for
        the answer. Raises PeerUnreachable (never sent: safe to retry), RpcTimeout or
        ConnectionLost (sent, outcome unknown), RemoteError (the peer's handler
        failed or refused), UnknownPeer, LimitExceeded (request too large).
        Cancellation: if the request was already sent it may still run on the peer;
        its answer is discarded.
        """
        if timeout_ms <= 0:
            raise InvalidArgument("timeout_ms", f"{timeout_ms} must be positive")
        peer = self._require(peer_id)
        deadline = trio.current_time() + timeout_ms / 1000
        flow = next(self._flows)
        with trio.move_on_at(deadline) as waiting:
            await peer.call_slots.acquire()
        if waiting.cancelled_caught:  # trio: a cancelled acquire() acquired nothing
            raise PeerUnreachable(f"node {peer_id}: too many calls in flight")
        try:
            connection = await self._link_for_call(peer, flow, deadline, timeout_ms)
            return await connection.call(request, deadline=deadline, flow=flow)
        finally:
            peer.call_slots.release()

    async def _link_for_call(
        self, peer: _Peer, flow: int, deadline: float, timeout_ms: int
    ) -> Connection:
        while not peer.removed and self._state != "stopped":
            connection = peer.pick(flow, self.config.bond_mode)
            if connection is not None:
                return connection
            with trio.move_on_at(deadline) as waited:
                await peer.changed.wait()
            if waited.cancelled_caught:
                break
        raise PeerUnreachable(f"no link to node {peer.node_id} within {timeout_ms} ms")

    # -- public: stats -------------------------------------------------------------------

    def stats(self) -> TransportStats:
        return TransportStats(
            node_id=self.node_id,
            listen=tuple(str(a) for a in self._listen),
            peers=tuple(self._peer_stats(self._peers[pid]) for pid in sorted(self._peers)),
            clients_connected=len(self._clients),
            handshakes_refused=self._handshakes_refused,
            connections_failed=self._connections_failed,
            inbox_dropped=self._inbox_dropped,
        )

    def _peer_stats(self, peer: _Peer) -> PeerStats:
        links = tuple(
            LinkStats(
                index=link.index,
                address=link.address,
                connected=link.connection is not None and link.connection.open,
                bytes_in=link.counters.bytes_in,
                bytes_out=link.counters.bytes_out,
                frames_in=link.counters.frames_in,
                frames_out=link.counters.frames_out,
                connections_opened=link.counters.connections_opened,
                dial_failures=link.counters.dial_failures,
                last_error=link.counters.last_error,
            )
            for _, link in sorted(peer.links.items())
        )
        active = peer.pick(0, self.config.bond_mode)
        return PeerStats(
            node_id=peer.node_id,
            connected=active is not None,
            link_in_use=active.session.link if active is not None else -1,
            links=links,
            raft_sent=peer.raft_sent,
            raft_received=peer.raft_received,
            dropped_queue_full=peer.dropped_queue_full,
            dropped_no_link=peer.dropped_no_link,
            dropped_by_faults=peer.dropped_by_faults,
            lost_on_close=peer.lost_on_close,
            discarded_out_of_order=peer.discarded_out_of_order,
        )

    # -- internals: peers and links ------------------------------------------------------

    def _require(self, peer_id: int) -> _Peer:
        peer = self._peers.get(peer_id)
        if peer is None:
            raise UnknownPeer(peer_id)
        return peer

    def _deliver(self, peer: _Peer, connection: Connection, frame: RaftFrame) -> None:
        if not peer.accept_raft(connection, frame):
            peer.discarded_out_of_order += 1
            return
        peer.raft_received += 1
        handler = self._raft_handler
        if handler is not None:
            handler(peer.node_id, frame.message)
            return
        try:
            self._inbox_send.send_nowait(Incoming(peer.node_id, frame.message))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._inbox_dropped += 1

    def _connection(
        self, stream: trio.abc.Stream, parser: FrameParser, sealer: FrameSealer, session: Session,
        peer: _Peer | None, label: str, counters: LinkCounters,
    ) -> Connection:  # fmt: skip
        return Connection(
            stream=stream,
            parser=parser,
            sealer=sealer,
            session=session,
            label=label,
            limits=self.config.limits,
            counters=counters,
            call_ids=self._call_ids,
            handler=lambda: self._handler,
            submit=lambda: self._submit,
            after_reading=lambda: self._after_reading,
            client_requests=lambda: self._client_requests,
            on_raft=functools.partial(self._deliver, peer) if peer is not None else None,
            budget=peer.budget if peer is not None else None,
            faults=functools.partial(self.faults.decide, peer.node_id) if peer else None,
            on_closed=functools.partial(self._detach, peer) if peer is not None else None,
        )

    async def _run_link(self, peer: _Peer, link: _Link, connection: Connection) -> None:
        self._attach(peer, link, connection)
        log.info("node %d: link %d to node %d up (%s)", self.node_id, link.index, peer.node_id,
                 link.address)  # fmt: skip
        try:
            await connection.run()
        finally:
            self._closed(connection, link.counters)

    def _attach(self, peer: _Peer, link: _Link, connection: Connection) -> None:
        link.counters.connections_opened += 1
        link.failing = False
        previous, link.connection = link.connection, connection
        if previous is not None:
            previous.close()  # the peer redialed this link: the old connection is stale
        if connection.session.peer_incarnation != peer.rx_incarnation:
            # The peer restarted: its sequence numbers start over. Links from its
            # previous life are dead (half-open at best): close them rather than wait
            # for their idle timeout, and discard whatever still arrives on them.
            peer.rx_incarnation = connection.session.peer_incarnation
            peer.rx_last_seq.clear()
            for other in peer.live():
                if other.session.peer_incarnation != peer.rx_incarnation:
                    other.close()
        self._rebalance(peer)
        peer.notify()

    def _detach(self, peer: _Peer, connection: Connection) -> None:
        """Runs synchronously when `connection` stops being open (see Connection.run)."""
        for link in peer.links.values():
            if link.connection is connection:
                link.connection = None
        # One link fewer changes where *every* flow maps (flow % live links), not only
        # the closed link's flows: a flow queued on a surviving link may now map to
        # another one. Move them all, or a later send on that flow would be written on
        # its new link ahead of the frames still waiting on the old one.
        items = connection.outbox.drain_raft()
        for survivor in peer.live():
            items += survivor.outbox.drain_raft()
        self._reroute(peer, items)
        peer.notify()
        if connection.closed_by_peer and not peer.removed and not peer.live():
            log.info("node %d: node %d closed its last link", self.node_id, peer.node_id)
            if self._link_down is not None:
                self._link_down(peer.node_id)

    def _rebalance(self, peer: _Peer) -> None:
        """Move queued raft frames to the links their flows now map to (a link came up)."""
        for connection in peer.live():
            self._reroute(peer, connection.outbox.drain_raft())

    def _reroute(self, peer: _Peer, items: list[Queued]) -> None:
        # Invariant: all of a flow's queued items sit in one queue, the one its flow
        # maps to (every change of the live set reroutes every queue). So items come in
        # queue order and each flow's items come from one queue, and appending them in
        # this order keeps every flow in order on its new link.
        for item in items:
            target = peer.pick(item.flow, self.config.bond_mode)
            if target is None:
                peer.budget.release(len(item.body))
                peer.lost_on_close += 1
            else:
                target.outbox.put_raft(item)

    def _closed(self, connection: Connection, counters: LinkCounters) -> None:
        failure = connection.failure
        reason = describe(failure)
        if failure is None:
            log.info("node %d: %s closed", self.node_id, connection.label)
            return
        counters.last_error = reason
        if isinstance(failure, ProtocolError | IdleTimeout | TransportError):
            self._connections_failed += 1
        log.warning("node %d: closed %s: %s", self.node_id, connection.label, reason)

    # -- internals: dialing --------------------------------------------------------------

    def _start_dialing(self, peer: _Peer) -> None:
        if self._nursery is None or self.node_id > peer.node_id:
            return
        scope = peer.dialers = trio.CancelScope()
        self._nursery.start_soon(self._dial_peer, peer, scope)

    async def _dial_peer(self, peer: _Peer, scope: trio.CancelScope) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                for index, address in enumerate(peer.addresses):
                    nursery.start_soon(self._dial_link, peer, index, address)

    async def _dial_link(self, peer: _Peer, index: int, address: Address) -> None:
        """Keep one link to `peer` connected, redialing with backoff and jitter."""
        link = peer.link(index, str(address))
        backoff = self.config.backoff
        long_lived_s = self.config.limits.idle_timeout_ms / 1000
        attempt = 0
        while True:
            connection = await self._dial(peer, link, address)
            if connection is None:
                delay_ms = backoff.delay_ms(attempt, self._rng)
                attempt += 1
            else:
                started = trio.current_time()
                await self._run_link(peer, link, connection)
                # A link that keeps dying right after the handshake backs off too.
                attempt = 0 if trio.current_time() - started >= long_lived_s else attempt + 1
                delay_ms = backoff.delay_ms(max(0, attempt - 1), self._rng)
            await trio.sleep(delay_ms / 1000)

    async def _dial(self, peer: _Peer, link: _Link, address: Address) -> Connection | None:
        limits = self.config.limits
        hello = Hello(
            version=PROTOCOL_VERSION,
            cluster_id=self.config.cluster_id,
            kind=PeerKind.NODE,
            sender_id=self.node_id,
            expected_id=peer.node_id,
            link=link.index,
            incarnation=self.incarnation,
            nonce=secrets.token_bytes(NONCE_BYTES),
            parts=self.config.parts.marks,
            member_incarnation=self.config.member_incarnation,
        )
        try:
            session, stream, parser, sealer = await open_and_dial(
                address, hello, self.config.secret, limits, self.config.tls, self.config.parts,
                member_check=self._member_check,
            )  # fmt: skip
        except (OSError, trio.TooSlowError, trio.BrokenResourceError, HandshakeFailed) as e:
            link.counters.dial_failures += 1
            link.counters.last_error = describe(e)
            loud = not link.failing or isinstance(e, HandshakeFailed)
            link.failing = True
            log.log(logging.WARNING if loud else logging.DEBUG,
                    "node %d: cannot connect link %d to node %d at %s: %s",
                    self.node_id, link.index, peer.node_id, address, describe(e))  # fmt: skip
            return None
        label = f"node {peer.node_id} link {link.index}"
        return self._connection(stream, parser, sealer, session, peer, label, link.counters)

    # -- internals: accepting ------------------------------------------------------------

    async def _open_listeners(self) -> list[trio.SocketListener]:
        listeners: list[trio.SocketListener] = []
        bound: list[Address] = []
        try:
            for address in self.config.listen:
                opened = await trio.open_tcp_listeners(address.port, host=address.host)
                listeners.extend(opened)
                port = opened[0].socket.getsockname()[1]
                bound.append(Address(address.host, port))
        except OSError as e:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            raise TransportError(f"node {self.node_id}: cannot listen on {address}: {e}") from e
        self._listen = tuple(bound)
        return listeners

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        assert self._nursery is not None
        while True:
            try:
                stream = await listener.accept()
            except OSError as e:
                if e.errno not in _ACCEPT_RETRY_ERRNOS:
                    raise
                log.error("node %d: accept failed, retrying: %s", self.node_id, e)
                await trio.sleep(_ACCEPT_RETRY_S)
                continue
            if self._handshaking >= self.config.limits.max_pending_handshakes:
                self._handshakes_refused += 1
                log.warning("node %d: too many connections in handshake, closing a new one",
                            self.node_id)  # fmt: skip
                await trio.aclose_forcefully(stream)
                continue
            self._handshaking += 1
            self._nursery.start_soon(self._serve_accepted, stream)

    async def _serve_accepted(self, tcp: trio.SocketStream) -> None:
        try:
            origin = _remote_address(tcp)
            accepted = await self._authenticate(tcp, origin)
        finally:
            self._handshaking -= 1
        if accepted is None:
            return
        session, stream, parser, sealer = accepted
        if session.peer_kind is PeerKind.CLIENT:
            label = f"client {session.peer_id} ({origin})"
            connection = self._connection(stream, parser, sealer, session, None, label,
                                          LinkCounters())  # fmt: skip
            self._clients.add(connection)
            try:
                await connection.run()
            finally:
                self._clients.discard(connection)
                self._closed(connection, connection.counters)
            return
        peer = self._peers.get(session.peer_id)
        if peer is None:  # removed while it was shaking hands
            await trio.aclose_forcefully(stream)
            return
        link = peer.link(session.link, f"from {origin}")
        label = f"node {peer.node_id} link {session.link}"
        connection = self._connection(stream, parser, sealer, session, peer, label, link.counters)
        await self._run_link(peer, link, connection)

    async def _authenticate(
        self, tcp: trio.SocketStream, origin: str
    ) -> tuple[Session, trio.abc.Stream, FrameParser, FrameSealer] | None:
        limits = self.config.limits
        stream, parser, sealer = wrap(tcp, self.config.tls, server_side=True)
        try:
            with trio.fail_after(limits.handshake_timeout_ms / 1000):
                if isinstance(stream, trio.SSLStream):
                    await stream.do_handshake()
                session = await handshake.accept(
                    stream,
                    parser,
                    sealer,
                    secret=self.config.secret,
                    cluster_id=self.config.cluster_id,
                    node_id=self.node_id,
                    incarnation=self.incarnation,
                    nonce=secrets.token_bytes(NONCE_BYTES),
                    policy=self._vet,
                    max_frame_bytes=limits.max_frame_bytes,
                    parts=self.config.parts,
                    client_keys=self._client_key,
                    member_incarnation=self.config.member_incarnation,
                    peer_name=_certificate_name(stream, self.config.tls),
                    member_check=self._member_check,
                )
        except (HandshakeFailed, trio.TooSlowError, trio.BrokenResourceError, OSError) as e:
            self._handshakes_refused += 1
            if isinstance(e, trio.TooSlowError):
                e = HandshakeFailed(RefusalReason.TIMEOUT, "deadline passed", by_peer=False)
            log.warning("node %d: refused a connection from %s: %s", self.node_id, origin,
                        describe(e))  # fmt: skip
            await trio.aclose_forcefully(stream)
            return None
        return session, stream, parser, sealer

    def _client_key(self, name: str) -> ClientKey | None:
        clients = self.config.clients
        return clients.lookup(name) if clients is not None else None

    def _vet(self, hello: Hello) -> RefusalReason | None:
        """Checks on the (unauthenticated) Hello; the proof that follows settles identity."""
        if hello.expected_id not in (0, self.node_id):
            return RefusalReason.WRONG_NODE
        if hello.kind is PeerKind.CLIENT:
            if not self.config.accept_clients:
                return RefusalReason.CLIENTS_NOT_ACCEPTED
            if len(self._clients) >= self.config.limits.max_client_connections:
                return RefusalReason.BUSY
            return None
        if hello.sender_id not in self._peers:
            return RefusalReason.UNKNOWN_PEER
        if hello.sender_id > self.node_id:
            return RefusalReason.WRONG_DIRECTION
        return None


def _certificate_name(stream: trio.abc.Stream, tls: TlsConfig | None) -> str | None:
    """The name of the peer's certificate when names are checked (None: they are not)."""
    if tls is None or not tls.check_names or not isinstance(stream, trio.SSLStream):
        return None
    return certnames.peer_name(stream)


def wrap(
    tcp: trio.abc.Stream, tls: TlsConfig | None, *, server_side: bool
) -> tuple[trio.abc.Stream, FrameParser, FrameSealer]:
    """The stream to speak on (TLS-wrapped if configured) and fresh framing for it."""
    stream: trio.abc.Stream = tcp
    context = None if tls is None else (tls.server if server_side else tls.client)
    if context is not None:
        hostname = None if server_side else tls.server_hostname  # type: ignore[union-attr]
        stream = trio.SSLStream(tcp, context, server_side=server_side, server_hostname=hostname)
    return stream, FrameParser(MAX_HANDSHAKE_FRAME_BYTES), FrameSealer()


async def open_and_dial(
    address: Address,
    hello: Hello,
    secret: bytes,
    limits: Limits,
    tls: TlsConfig | None,
    parts: PartSet = NO_PARTS,
    *,
    member_check: MemberCheck | None = None,
) -> tuple[Session, trio.abc.Stream, FrameParser, FrameSealer]:
    """Connect to `address` and run the dialer's handshake, within the configured deadlines.
    `parts` is the part set whose marks `hello` carries (a node's; none for a client);
    `member_check` vets the acceptor's member incarnation (a node's; None for a client).
    With TLS names checked, the acceptor's certificate must be its node's (CERT_MISMATCH).

    Raises OSError or trio.TooSlowError (unreachable), trio.BrokenResourceError (TLS
    failure), HandshakeFailed. Cancellation or failure leaves nothing open.
    """
    with trio.fail_after(limits.connect_timeout_ms / 1000):
        tcp = await trio.open_tcp_stream(address.host, address.port)
    stream, parser, sealer = wrap(tcp, tls, server_side=False)
    try:
        with trio.fail_after(limits.handshake_timeout_ms / 1000):
            if isinstance(stream, trio.SSLStream):
                await stream.do_handshake()
            session = await handshake.dial(
                stream,
                parser,
                sealer,
                secret=secret,
                hello=hello,
                max_frame_bytes=limits.max_frame_bytes,
                parts=parts,
                peer_name=_certificate_name(stream, tls),
                member_check=member_check,
            )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return session, stream, parser, sealer


def _remote_address(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "an unknown address"
    return str(Address(host, port))
