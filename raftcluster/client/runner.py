"""A minimal trio shell for `ClientCore`: sessions, retries and the leader guess, over
authenticated RPC connections to the nodes.

    async with CoreRunner.open(endpoints, transport_config) as client:
        done = await client.write(Put(b"k", b"v"))      # a Completion
        done = await client.read(Range(b"k"))           # linearizable unless stale=True

It exists for the node runtime's own tests, `raftcluster status`, the demo and the
benchmarks; `raftcluster.connect` (the client API) is built on the same core. Every
write goes through the core's session, so a retry after a lost answer or a leader
change is applied at most once.

How transport failures reach the core: a request that was certainly not sent
(`PeerUnreachable`, a handshake refused for a reason other than the secret, a node
answering NO_HANDLER) is reported as `NotLeader(0)` from that node: "not taken, no
leader known", so the core tries another node after its back-off; a node answering
OVERLOADED (too many requests on the connection) as `Refused(OVERLOADED)`, so the core
backs off and keeps its leader. A request whose connection closed under it
(`ConnectionLost`: the node's process may be gone) may have run: it is reported at once
as `Refused(TIMED_OUT)` (not definite), so the core forgets that leader and retries the
same request elsewhere after its back-off, instead of waiting out the attempt. Other
requests that may have run (`RpcTimeout`, a handler failure) are left to the core's
attempt timeout, which retries the same request elsewhere. A wrong secret or a wrong
cluster id is not retried: every operation fails with that error.

Calls to one node share one connection (requests are pipelined on it) and at most
`Limits.max_concurrent_requests` of them are in flight at once, the node's own limit
per connection: more wait here for a slot rather than being refused there. A request
the core sends to a node it has no address for (a leader named by a `NotLeader` hint
that is not among the endpoints) is answered `NotLeader(0)` from that node, and the
node is remembered in `unknown_leader`, so the caller can say which node to add.
`problems` keeps, per node, why its last attempt failed (for error messages).
"""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager

import attrs
import trio

from raftcluster.client.core import ClientConfig, ClientCore, Completion, Send
from raftcluster.client.links import FATAL_REFUSALS, Links
from raftcluster.errors import Unavailable
from raftcluster.node.clock import NodeClock
from raftcluster.node.protocol import ClientReply, NotLeader, RefuseCode, Refused, Written
from raftcluster.transport import (
    Address,
    ConnectionLost,
    HandshakeFailed,
    PeerUnreachable,
    RemoteError,
    RpcErrorCode,
    RpcFailed,
)
from raftcluster.transport import ClientConfig as TransportClientConfig
from raftcluster.transport.scope import Unwrapped
from statemachine.codec import Message
from statemachine.errors import ClusterError, LimitExceeded

_CLOSE_TIMEOUT_MS = 1_000
_REDIAL_MIN_S = 0.05  # reach_any: pauses between dials of a node that does not answer
_REDIAL_MAX_S = 0.5


class CoreRunner:
    def __init__(
        self,
        endpoints: Mapping[int, Sequence[Address]],
        transport: TransportClientConfig,
        config: ClientConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`endpoints`: each node's id and addresses. Use `CoreRunner.open(...)`."""
        self._rng = rng if rng is not None else random.Random(secrets.randbits(64))
        if config is None:
            config = ClientConfig(nodes=tuple(endpoints))
        self._config = config
        self._transport = transport
        self._endpoints = {node: (node, tuple(addrs)) for node, addrs in endpoints.items()}
        self._links: Links | None = None
        self._clock: NodeClock | None = None
        self._core: ClientCore | None = None
        self._nursery: trio.Nursery | None = None
        self._done: dict[int, Completion] = {}
        self._waiting: dict[int, trio.Event] = {}
        self._wake = trio.Event()
        self._ticker_due_ms: int | None = None  # when the ticker wakes on its own (None: never)
        self._fatal: ClusterError | None = None
        max_calls = transport.limits.max_concurrent_requests
        self._slots = {node: trio.Semaphore(max_calls) for node in self._endpoints}
        self.unknown_leader = 0  # a node named as leader that we have no address for
        self.problems: dict[int, str] = {}  # node -> why its last attempt failed
        self.attempts = 0  # requests sent to nodes (retries included)
        # Attempts that ended without an answer after the request was sent (timed out,
        # connection lost): they may have been applied, and the core sends them again.
        self.attempts_in_doubt = 0

    @classmethod
    def open(
        cls,
        endpoints: Mapping[int, Sequence[Address]],
        transport: TransportClientConfig,
        config: ClientConfig | None = None,
        rng: random.Random | None = None,
    ) -> AbstractAsyncContextManager[CoreRunner]:
        """``async with CoreRunner.open(...) as client``. Leaving the block closes the
        session (best effort, within a second) and every connection. Cancellation of the
        block closes the connections at once; the session then expires on its own."""
        return Unwrapped(cls(endpoints, transport, config, rng)._running())

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[CoreRunner]:
        self._clock = NodeClock()
        self._core = ClientCore(self._config, self._rng, self._clock.now_ms())
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._links = Links(nursery, self._transport, self._endpoints)
            nursery.start_soon(self._ticker)
            try:
                yield self
                await self._close_session()
            finally:
                nursery.cancel_scope.cancel()

    @property
    def core(self) -> ClientCore:
        assert self._core is not None, "use CoreRunner.open"
        return self._core

    @property
    def leader(self) -> int:
        """The node the core believes leads (0: unknown)."""
        return self.core.leader

    # -- operations --------------------------------------------------------------------

    async def write(self, command: Message, *, timeout_ms: int | None = None) -> Completion:
        """Apply `command` at most once, through the session. Returns its Completion
        (success, a definite rejection, or OutcomeUnknown; see ClientCore).
        Cancellation: the write may still be applied; its completion is dropped."""
        handle = self.core.write(command, self._now(), timeout_ms)
        return await self._wait(handle)

    async def read(
        self, query: Message, *, stale: bool = False, timeout_ms: int | None = None
    ) -> Completion:
        """Answer `query`, linearizable unless `stale`. Cancellation: nothing is left
        behind but the core's bookkeeping until the read's deadline."""
        handle = self.core.read(query, self._now(), stale=stale, timeout_ms=timeout_ms)
        return await self._wait(handle)

    async def reach_any(self, *, timeout_ms: int) -> int:
        """Dial every node at once, again and again (nodes may still be starting), until
        one authenticates us; return its id. Raises the handshake error at once for a
        wrong secret or cluster id, and `Unavailable` (naming each node's problem) when no
        node answers within `timeout_ms`. Cancellation: dials in progress are abandoned;
        connections already up stay with the runner."""
        links = self._links
        assert links is not None
        outcome: dict[str, int | HandshakeFailed] = {}
        done = trio.Event()

        async def dial(node: int) -> None:
            pause_s = _REDIAL_MIN_S
            while True:
                try:
                    await links.get(node)
                except HandshakeFailed as e:
                    self._problem(node, str(e))
                    if e.reason in FATAL_REFUSALS:
                        outcome.setdefault("fatal", e)
                        done.set()
                        return
                except PeerUnreachable as e:
                    self._problem(node, str(e))
                else:
                    outcome.setdefault("node", node)
                    done.set()
                    return
                await trio.sleep(pause_s)
                pause_s = min(_REDIAL_MAX_S, pause_s * 2)

        async with trio.open_nursery() as nursery:
            for each in self._endpoints:
                nursery.start_soon(dial, each)
            with trio.move_on_after(timeout_ms / 1000):
                await done.wait()
            nursery.cancel_scope.cancel()
        fatal = outcome.get("fatal")
        if isinstance(fatal, HandshakeFailed):
            raise fatal
        reached = outcome.get("node")
        if isinstance(reached, int):
            return reached
        raise Unavailable(f"no node reachable within {timeout_ms} ms: {self.describe_problems()}")

    def describe_problems(self) -> str:
        """Why each node failed its last attempt, in one line ("" when none did)."""
        return "; ".join(f"node {n}: {what}" for n, what in sorted(self.problems.items()))

    async def call(self, node: int, request: Message, *, timeout_ms: int) -> Message:
        """One request to `node` on its shared connection, outside the core (no session,
        no retry): for requests the core does not know, such as GetStatus. Raises what
        `RpcConnection.call` raises, and `PeerUnreachable` for a node without an address.
        Cancellation: the request may still run on the node; its answer is dropped."""
        links = self._links
        assert links is not None
        if node not in self._endpoints:
            raise PeerUnreachable(f"node {node}: no address known")
        try:
            with trio.fail_after(timeout_ms / 1000):
                await self._slots[node].acquire()
        except trio.TooSlowError:
            raise PeerUnreachable(f"node {node}: no free call slot") from None
        try:
            with trio.fail_after(timeout_ms / 1000):
                connection = await links.get(node)
            return await connection.call(request, timeout_ms=timeout_ms)
        except trio.TooSlowError:
            raise PeerUnreachable(f"node {node}: no connection within {timeout_ms} ms") from None
        except PeerUnreachable:
            links.release(node)
            raise
        finally:
            self._slots[node].release()

    @property
    def nodes(self) -> tuple[int, ...]:
        """The ids of the nodes this runner has addresses for."""
        return tuple(self._endpoints)

    @property
    def transport_config(self) -> TransportClientConfig:
        """How this runner authenticates (for a direct connection to another node)."""
        return self._transport

    async def _wait(self, handle: int) -> Completion:
        event = self._waiting[handle] = trio.Event()
        self._pump()
        try:
            await event.wait()
        finally:
            del self._waiting[handle]
        return self._done.pop(handle)

    async def _close_session(self) -> None:
        handle = self.core.close(self._now())
        if handle is None:
            return
        with trio.move_on_after(_CLOSE_TIMEOUT_MS / 1000):
            await self._wait(handle)

    # -- the loop ----------------------------------------------------------------------

    def _now(self) -> int:
        assert self._clock is not None
        return self._clock.now_ms()

    async def _ticker(self) -> None:
        """Tick the core at its deadlines (or sooner, when something happened)."""
        assert self._clock is not None
        while True:
            self.core.tick(self._now())
            self._pump()
            self._wake = trio.Event()  # an earlier deadline from now on wakes us (`_pump`)
            due = self._ticker_due_ms = self.core.next_deadline_ms()
            if due is None:
                await self._wake.wait()
            else:
                with trio.move_on_at(self._clock.trio_time(due)):
                    await self._wake.wait()

    def _pump(self) -> None:
        """Start the core's sends and hand out its completions."""
        core = self.core
        assert self._nursery is not None
        for send in core.take_sends():
            self.attempts += 1
            if not self._send_now(send):
                self._nursery.start_soon(self._attempt, send)
        for completion in core.take_completions():
            if self._fatal is not None and not completion.ok:
                completion = attrs.evolve(completion, error=self._fatal)
            if completion.handle in self._waiting:
                self._done[completion.handle] = completion
                self._waiting[completion.handle].set()
        # Wake the ticker only when the core now has a deadline before the one it sleeps
        # towards: waking it on every request and answer cost a task switch each, and
        # asking for the earliest of all deadlines here cost O(operations) each.
        due, sleeping_to = core.new_deadline_ms(), self._ticker_due_ms
        if due is not None and (sleeping_to is None or due < sleeping_to):
            self._wake.set()

    def _receive(self, node: int, request_id: int, reply: ClientReply) -> None:
        self.core.receive(node, request_id, reply, self._now())
        self._pump()

    async def _attempt(self, send: Send) -> None:
        """One attempt of one request on one node. Cancellation: see `write`."""
        if send.node not in self._endpoints:
            self.unknown_leader = send.node
            self._receive(send.node, send.request_id, NotLeader(0))
            return
        timeout_ms = self._config.attempt_timeout_ms
        slots = self._slots[send.node]
        try:
            slots.acquire_nowait()  # the usual case, without a cancel scope
        except trio.WouldBlock:
            with trio.move_on_after(timeout_ms / 1000) as waiting:
                await slots.acquire()
            if waiting.cancelled_caught:  # every slot stayed busy: not sent
                busy = Refused.of(RefuseCode.OVERLOADED, f"node {send.node}: no free call slot")
                self._receive(send.node, send.request_id, busy)
                return
        try:
            await self._call(send, timeout_ms)
        finally:
            self._slots[send.node].release()

    def _send_now(self, send: Send) -> bool:
        """Send an attempt without a task of its own, when a connection to its node is
        open and a call slot is free (the usual case); its answer comes to `_settle`.
        False: nothing was sent, `_attempt` takes it (dialling, waiting for a slot)."""
        links = self._links
        assert links is not None
        connection = links.open_connection(send.node) if send.node in self._endpoints else None
        if connection is None:
            return False
        slots = self._slots[send.node]
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            return False

        def settled(outcome: Message | RpcFailed) -> None:
            slots.release()
            self._settle(send, outcome)

        try:
            timeout_ms = self._config.attempt_timeout_ms
            if connection.send_call(send.request, timeout_ms=timeout_ms, on_outcome=settled):
                return True
        except (PeerUnreachable, LimitExceeded):
            pass  # closed just now, or too large: `_attempt` finds out and says so
        slots.release()
        return False

    def _settle(self, send: Send, outcome: Message | RpcFailed) -> None:
        if isinstance(outcome, RpcFailed):
            self._call_failed(send, outcome)
        elif isinstance(outcome, ClientReply):
            self._note_reply(send.node, outcome)
            self._receive(send.node, send.request_id, outcome)

    async def _call(self, send: Send, timeout_ms: int) -> None:
        links = self._links
        assert links is not None
        try:
            connection = links.open_connection(send.node)
            if connection is None:
                with trio.fail_after(timeout_ms / 1000):
                    connection = await links.get(send.node)
            reply = await connection.call(send.request, timeout_ms=timeout_ms)
        except trio.TooSlowError:
            self._problem(send.node, f"no connection within {timeout_ms} ms")
            self._receive(send.node, send.request_id, NotLeader(0))  # never sent
            return
        except HandshakeFailed as e:
            if e.reason in FATAL_REFUSALS:
                self._fail_all(e)
                return
            self._problem(send.node, str(e))
            self._receive(send.node, send.request_id, NotLeader(0))
            return
        except RpcFailed as e:
            self._call_failed(send, e)
            return
        self._settle(send, reply)

    def _call_failed(self, send: Send, error: RpcFailed) -> None:
        """How a failed call reaches the core (see the module's docstring)."""
        links = self._links
        assert links is not None
        self._problem(send.node, str(error))
        if isinstance(error, PeerUnreachable):  # never sent
            links.release(send.node)
            self._receive(send.node, send.request_id, NotLeader(0))
        elif isinstance(error, RemoteError):
            if error.code == RpcErrorCode.OVERLOADED:  # busy, not gone: back off, same node
                busy = Refused.of(RefuseCode.OVERLOADED, str(error))
                self._receive(send.node, send.request_id, busy)
            elif not error.may_have_executed:
                self._receive(send.node, send.request_id, NotLeader(0))
            # else: the core's attempt timeout retries the same request
        elif isinstance(error, ConnectionLost):  # maybe executed; the node may be gone
            links.release(send.node)
            self.attempts_in_doubt += 1
            lost = Refused.of(RefuseCode.TIMED_OUT, f"node {send.node}: {error}")
            self._receive(send.node, send.request_id, lost)
        else:
            links.release(send.node)  # timed out: maybe executed; the core retries
            self.attempts_in_doubt += 1

    def _problem(self, node: int, what: str) -> None:
        self.problems[node] = what

    def _note_reply(self, node: int, reply: ClientReply) -> None:
        if isinstance(reply, NotLeader):
            self.problems[node] = (
                f"says node {reply.leader} leads" if reply.leader else "knows no leader"
            )
        elif isinstance(reply, Refused):
            self.problems[node] = f"refused: {reply.message}"
        else:
            self.problems.pop(node, None)
            if isinstance(reply, Written):  # a leader we can reach answered
                self.unknown_leader = 0

    def _fail_all(self, error: ClusterError) -> None:
        """A configuration error (wrong secret, wrong cluster): finish every waiter with it."""
        self._fatal = error
        for handle, event in self._waiting.items():
            self._done[handle] = Completion(handle, error=error)
            event.set()
