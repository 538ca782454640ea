"""The node runtime: one `Replica` on a file storage and the authenticated transport.

    from raftcluster.config import load_cluster, node_settings
    settings = node_settings(load_cluster("cluster/"), node_id=1)
    async with raftcluster.node.run(settings) as node:    # started: listening, serving
        node.addresses, node.status(), node.info()
    # leaving the block stops the node gracefully

or `await nursery.start(Node(settings).serve)` and `node.stop()`.

What a running node does (see driver.py for the loop):
- peers' raft messages go from the connection that read them straight to the replica
  (`Transport.set_raft_handler`; those that came while the replica was loading wait in
  the transport's inbox and are handed over first, in one batch), checked first (a
  raft message, from the peer that sent it, addressed to this node); raft messages it
  emits go out through `Transport.send` after the cycle's persist (InstallSnapshot
  chunks on a flow of their own, so they never hold heartbeats back on a balanced
  bond);
- a peer that closes its last connection (its process exited or crashed: the kernel
  closes its sockets at once) is reported to the replica (`Driver.peer_unreachable`),
  so that followers of a crashed leader campaign without waiting out the timeout;
- RPC requests are client protocol requests (`raftcluster.node.protocol`), answered
  when the replica's reply comes out, or admin requests (`raftcluster.node.admin`),
  answered by the runtime: node info, and the transport's fault layer when the
  cluster allows fault injection;
- storage is a `FileStorage` in `data_dir/wal`, opened, recovered and written in worker
  threads, one call at a time; `data_dir/IDENTITY` ties the directory to this node of
  this cluster. After a kill -9 the node recovers from it and rejoins.

Logging: logger `raftcluster.node`, every line starting with "node <id>:".
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import random
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import trio

from raftcluster import __version__
from raftcluster.config.client_keys import ClientKeyFile
from raftcluster.groups.service import GroupsService
from raftcluster.node import identity
from raftcluster.node.admin import (
    AdminRequest,
    ClearFaults,
    FaultsState,
    GetFaults,
    GetNodeInfo,
    NodeInfo,
    PeerFaultState,
    SetFaults,
)
from raftcluster.node.clock import NodeClock
from raftcluster.node.driver import Driver
from raftcluster.node.errors import NodeError, PortInUse
from raftcluster.node.membership import follow_membership
from raftcluster.node.protocol import ClientRequest, NodeStatus, RefuseCode, Refused
from raftcluster.node.replica import Output, Replica, Work
from raftcluster.node.services import SessionExpiry
from raftcluster.node.settings import NodeSettings
from raftcluster.node.trust import (
    is_client_request,
    member_refusal,
    read_only_refusal,
    watch_client_keys,
)
from raftcluster.raft.messages import InstallSnapshot, RaftMessage
from raftcluster.raft.types import ConfChangeOp, ConfState
from raftcluster.resources.registry import Kinds
from raftcluster.storage.interface import Storage
from raftcluster.storage.wal import FileStorage
from raftcluster.transport import (
    Caller,
    Incoming,
    PeerFaults,
    Transport,
    TransportError,
    UnknownPeer,
    corking,
)
from raftcluster.transport import ClientConfig as TransportClientConfig
from raftcluster.transport.scope import Unwrapped, single
from statemachine.codec import Message
from statemachine.errors import LimitExceeded, UnknownEntry

log = logging.getLogger("raftcluster.node")

SNAPSHOT_FLOW = 1  # the raft flow InstallSnapshot chunks ride (everything else: flow 0)
_WARN_LIMIT = 5  # log this many of a kind of dropped message, then count quietly


class Node:
    """A cluster node. Construct, then `serve` (or use `run`)."""

    def __init__(
        self,
        settings: NodeSettings,
        *,
        rng: random.Random | None = None,
        storage: Storage | None = None,
        origin_ms: int | None = None,
        kinds: Kinds | None = None,
    ) -> None:
        """`rng` seeds election jitter and reconnection backoff (default: from the OS);
        `storage` replaces the file storage in `settings.data_dir` (tests: MemoryStorage,
        persisted inline); `origin_ms` is the clock reading at start (default: wall clock);
        `kinds` the resource types the cluster service runs (default: the built-in ones
        and those registered with `raftcluster.resources.register_resource_kind`).
        """
        self.settings = settings
        self.node_id = settings.node_id
        self._rng = rng if rng is not None else random.Random(secrets.randbits(64))
        self._storage = storage
        self._origin_ms = origin_ms
        self._transport: Transport | None = None
        self._driver: Driver | None = None
        self._clock: NodeClock | None = None
        self._started_ms = 0
        self._stop_requested = False
        self._stopped = trio.Event()
        self._role: tuple[object, int, int] = (None, 0, 0)  # (role, leader, term) last logged
        self._dropped_inputs = 0
        self._kinds = kinds
        self._groups: GroupsService | None = None  # the cluster service, if it runs
        self._conf_followed: ConfState | None = None  # the configuration the transport follows
        self._claimed: identity.Claimed | None = None  # the data directory (file storage)
        self._bootstrap_marker = False  # BOOTSTRAP to remove once the founding log is synced

    # -- inspection --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._driver is not None and not self._stopped.is_set()

    @property
    def addresses(self) -> tuple[str, ...]:
        """The bound listen addresses (ports filled in), once started."""
        transport = self._transport
        return tuple(str(a) for a in transport.listen_addresses) if transport else ()

    @property
    def replica(self) -> Replica:
        assert self._driver is not None, "the node has not started"
        return self._driver.replica

    @property
    def transport(self) -> Transport:
        assert self._transport is not None, "the node has not started"
        return self._transport

    @property
    def groups(self) -> GroupsService | None:
        """The cluster service on this node (None: `settings.groups` is not set), once
        started: `groups.agent.updates.on_update(handler)` registers a global update
        handler (docs/groups-node.md)."""
        return self._groups

    def status(self) -> NodeStatus:
        return self.replica.status()

    def info(self) -> NodeInfo:
        driver, clock = self._driver, self._clock
        assert driver is not None and clock is not None, "the node has not started"
        return NodeInfo(
            node_id=self.node_id,
            cluster_id=self.settings.cluster_id,
            pid=os.getpid(),
            version=__version__,
            addresses=self.addresses,
            data_dir=str(self.settings.data_dir),
            uptime_ms=clock.now_ms() - self._started_ms,
            status=driver.replica.status(),
            transport=self.transport.stats(),
            cycles=driver.stats.cycles,
            syncs=driver.stats.syncs,
            pending_requests=driver.replica.pending_requests,
            faults_allowed=self.settings.allow_fault_injection,
        )

    # -- running -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop gracefully: refuse new requests, finish the cycle in progress (its persist
        completes and its messages go out), answer waiting requests, sync the storage (a
        newer commit index may be buffered) and close it, then the transport. `serve`
        returns when done. Safe to call at any time, twice."""
        self._stop_requested = True
        if self._driver is not None:
            self._driver.stop()

    async def wait_stopped(self) -> None:
        """Return once `serve` has returned. Cancellation: stops waiting, nothing else."""
        await self._stopped.wait()

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Start the node and serve until `stop()`; `task_status.started(node)` once it
        listens and takes requests.

        Raises PortInUse (an address is taken), NodeError (the data directory belongs to
        another node or cluster), StorageLocked (another process has the data directory),
        StorageCorrupted, TransportError, a StorageFailed that ended the node, or an
        UnknownEntry that did (a committed entry its state machine parts cannot apply).

        Cancellation ends the node at once, like a crash except that a persist in
        progress finishes first (its thread cannot be interrupted) and the storage is
        closed: requests in progress get no answer, and what was not persisted is lost,
        none of it acknowledged. A Node serves once.
        """
        assert self._transport is None, "a Node serves once"
        try:
            with unwrap_groups():
                await self._serve(task_status)
        except UnknownEntry as e:  # other parts than the leader's: stop, never diverge
            # (raised by the replay at start or by a later apply: logged here for both)
            log.error("node %d: stopping: %s", self.node_id, e)
            raise
        finally:
            self._stopped.set()

    async def _serve(self, task_status: Any) -> None:
        self._clock = clock = NodeClock(self._origin_ms)
        self._started_ms = clock.now_ms()
        async with trio.open_nursery() as nursery:
            # The data directory's identity first: the transport's handshakes carry the
            # member incarnation it records.
            incarnation = await self._claim_data_dir()
            transport = await self._start_transport(nursery, incarnation)
            storage = await self._open_storage()
            groups = None
            if self.settings.groups is not None:
                now = clock.now_ms()
                groups = self._groups = await trio.to_thread.run_sync(self._make_groups, clock, now)
            try:
                replica = await trio.to_thread.run_sync(self._make_replica, storage, clock.now_ms())
                driver = self._driver = Driver(
                    replica,
                    clock,
                    self._send,
                    persist=None if self._storage is None else self._persist_inline,
                    on_output=self._observe,
                    hold_sends=corking.held,
                )
                if self._stop_requested:
                    driver.stop()
                # Messages from now on go straight from the connections to the replica;
                # those that came while it was loading are handed over first.
                driver.defer_inputs = True  # a connection's batch of frames is one of inputs
                transport.set_raft_handler(self._deliver)
                transport.set_rpc_submit(self._submit)
                transport.set_after_reading(driver.inputs_done)
                transport.set_link_down_handler(driver.peer_unreachable)
                if groups is not None:
                    groups.attach(replica, self._send_other, sorted(self.settings.peers))
                    endpoints = {self.node_id: transport.listen_addresses, **self.settings.peers}
                    client = client_config(self.settings, self._rng)
                    await nursery.start(groups.serve, endpoints, client)
                self._drain(transport.inbox, driver)
                transport.set_member_check(self._member_refusal)
                self._conf_followed = replica.core.conf
                follow_membership(transport, replica.core.conf, self.node_id)
                status = replica.status()
                log.info("node %d: serving on %s (term %d, commit %d, applied %d)", self.node_id,
                         ", ".join(self.addresses), status.term, status.commit_index,
                         status.applied_index)  # fmt: skip
                task_status.started(self)
                await driver.run()
                if groups is not None:  # a graceful stop: the node's resources stop first
                    await groups.shutdown()
                # A graceful stop: cycles that only moved the commit index were not synced;
                # sync it now so that a restart resumes where this run left off.
                await trio.to_thread.run_sync(storage.sync)
                log.info("node %d: stopped (applied %d)", self.node_id, replica.applied_index)
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(storage.close)
            nursery.cancel_scope.cancel()  # the transport

    async def _start_transport(self, nursery: trio.Nursery, incarnation: int) -> Transport:
        """Listen (raising PortInUse for a taken address) and start dialing the peers,
        as member `incarnation`. Client requests that arrive before the replica is loaded
        are refused UNAVAILABLE."""
        settings = self.settings
        keys = ClientKeyFile(settings.client_secret, settings.client_keys_file)
        transport = self._transport = Transport(
            settings.transport_config(keys, member_incarnation=incarnation),
            rng=random.Random(self._rng.getrandbits(64)),
            rpc_handler=self._handle,
        )
        transport.set_client_requests(is_client_request)
        try:
            await nursery.start(transport.serve)
        except TransportError as e:
            raise _listen_error(self.node_id, e) from e
        if settings.client_keys_file is not None:
            nursery.start_soon(watch_client_keys, keys, transport)
        return transport

    def _member_refusal(self, node_id: int, incarnation: int) -> str | None:
        """The transport's member check, by the configuration in force (`member_refusal`)."""
        return member_refusal(self.replica.core.conf, node_id, incarnation)

    async def _claim_data_dir(self) -> int:
        """Check or write the data directory's identity (`identity.claim`, in a worker
        thread); the node's member incarnation. An injected storage has no directory: the
        settings' incarnation."""
        settings = self.settings
        if self._storage is not None:
            return settings.replica.raft.incarnation
        claimed = self._claimed = await trio.to_thread.run_sync(
            functools.partial(
                identity.claim,
                settings.data_dir,
                settings.cluster_id,
                self.node_id,
                join=settings.join,
                incarnation=settings.replica.raft.incarnation,
            )
        )
        return claimed.incarnation

    async def _open_storage(self) -> Storage:
        if self._storage is not None:
            return self._storage
        return await trio.to_thread.run_sync(self._open_file_storage)

    def _open_file_storage(self) -> FileStorage:
        assert self._claimed is not None, "claim the data directory first"
        return FileStorage.open(self._claimed.wal, self.settings.wal)

    async def _persist_inline(self, work: Work) -> None:
        self.replica.persist(work)  # an injected (in-memory) storage: no I/O to wait for

    def _make_groups(self, clock: NodeClock, now_ms: int) -> GroupsService:
        """The cluster service, made before the replica (whose leader services include its
        node manager); it counts this start in its incarnation file (blocking: runs in a
        worker thread)."""
        settings = self.settings
        assert settings.groups is not None
        rng = random.Random(self._rng.getrandbits(64))
        return GroupsService(
            self.node_id,
            settings.groups,
            settings.data_dir,
            clock,
            now_ms,
            kinds=self._kinds,
            rng=rng,
        )

    def _make_replica(self, storage: Storage, now_ms: int) -> Replica:
        """Load the durable state and decide how the node starts: it bootstraps the
        founding configuration only from a directory `init` prepared that never ran, joins
        with an empty log only when asked to, and otherwise refuses an empty log
        (`DataDirLost`). Blocking: runs in a worker thread."""
        rng = random.Random(self._rng.getrandbits(64))
        config = self.settings.replica
        durable = storage.load()
        claimed = self._claimed
        if claimed is not None:
            empty = durable.snapshot is None and not durable.entries
            identity.check_log(claimed, self.settings.data_dir, self.node_id, empty)
            self._bootstrap_marker = claimed.founding and empty
            raft = config.raft
            founding = dict(peers=raft.peers, learners=raft.learners, members=raft.members)
            if not claimed.founding:
                founding = dict(peers=(), learners=(), members=())
            raft = attrs.evolve(raft, incarnation=claimed.incarnation, **founding)  # type: ignore[arg-type]
            config = attrs.evolve(config, raft=raft)
        services = None
        if self._groups is not None:
            expiry = SessionExpiry(config.session_expiry_interval_ms, now_ms)
            services = (expiry, self._groups.agent.manager)
        state = self.settings.new_state()
        return Replica(
            config, storage, rng, now_ms, state=state, services=services, durable=durable
        )

    # -- raft messages -----------------------------------------------------------------

    def _drain(self, inbox: trio.MemoryReceiveChannel[Incoming], driver: Driver) -> None:
        """Hand the driver what the inbox holds (bounded by `Limits.inbox_frames`): the
        messages that came before the raft handler took over."""
        batch = []
        while True:
            try:
                batch.append(inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        checked = (self._check(each.peer_id, each.message) for each in batch)
        driver.deliver([m for m in checked if m is not None])
        driver.inputs_done()

    def _deliver(self, peer_id: int, message: Message) -> None:
        checked = self._check(peer_id, message)
        if checked is not None and self._driver is not None:
            self._driver.deliver((checked,))

    def _check(self, peer_id: int, message: Message) -> RaftMessage | None:
        groups = self._groups
        if groups is not None and groups.receive(peer_id, message):
            return None  # the cluster service's heartbeat or ack
        ours = isinstance(message, RaftMessage) and message.dst == self.node_id
        if ours and message.src == peer_id:  # type: ignore[attr-defined]
            return message  # type: ignore[return-value]
        self._dropped_inputs += 1
        if self._dropped_inputs <= _WARN_LIMIT:
            log.warning("node %d: dropped %s from node %d: not a raft message from it to us",
                        self.node_id, type(message).__name__, peer_id)  # fmt: skip
        return None

    def _send(self, message: RaftMessage) -> None:
        flow = SNAPSHOT_FLOW if isinstance(message, InstallSnapshot) else 0
        try:
            self.transport.send(message.dst, message, flow=flow)
        except UnknownPeer:
            # A member whose addresses neither the log nor the cluster file records.
            log.debug("node %d: no address for node %d", self.node_id, message.dst)
        except LimitExceeded as e:
            log.error("node %d: %s to node %d does not fit in a frame: %s", self.node_id,
                      type(message).__name__, message.dst, e)  # fmt: skip

    def _send_other(self, peer: int, message: Message, flow: int) -> None:
        """The cluster service's messages (never raises for a dropped one)."""
        self.transport.send(peer, message, flow=flow)

    def _observe(self, out: Output) -> None:
        """Tell the cluster service a cycle applied something; let the transport follow
        the membership; log role changes (once per change)."""
        groups = self._groups
        if groups is not None:
            # Its agent reads the replica's applied state only (the rest of its inputs
            # wake it themselves, its timers run on their own): a cycle that changed
            # nothing it reads (a kv write) needs no step of it, unless the node manager
            # (a leader service, run in the replica's ticks) asked for a node to be fenced.
            fence = groups.fence
            if groups.agent.needs_step() or (fence is not None and fence.wanting):
                groups.poke()
        driver = self._driver
        if self._bootstrap_marker and driver is not None and driver.stats.syncs:
            # The founding log is on disk: this directory may never bootstrap again (one
            # small unlink and directory fsync, once in the node's life).
            self._bootstrap_marker = False
            identity.founded(self.settings.data_dir)
        core = self.replica.core
        changes = out.conf_changes
        removed = (
            [c.node_id for c in changes if c.op == ConfChangeOp.REMOVE_NODE] if changes else []
        )
        if core.conf is not self._conf_followed or removed:
            self._conf_followed = core.conf
            follow_membership(self.transport, core.conf, self.node_id, removed, core.leader)
        # (Compared as the core has them, after every cycle; named only when they changed.)
        role = (core.role, core.leader, core.term)
        if role == self._role:
            return
        self._role = role
        name, leader, term = core.role.name.lower(), core.leader, core.term
        if name == "leader":
            log.info("node %d: leader in term %d", self.node_id, term)
        elif leader:
            log.info("node %d: %s of node %d in term %d", self.node_id, name, leader, term)
        else:
            log.info("node %d: %s in term %d, no leader known", self.node_id, name, term)

    # -- rpc ---------------------------------------------------------------------------

    def _submit(self, caller: Caller, request: Message, respond: Callable[[Message], None]) -> bool:
        """The transport's submit hook: a client request goes to the replica without a
        task of its own (answered when its reply comes out); the rest to `_handle`. A
        read-only credential's write is refused here."""
        refusal = read_only_refusal(caller, request)
        if refusal is not None:
            respond(refusal)
            return True
        driver = self._driver
        if driver is None or not isinstance(request, ClientRequest):
            return False
        driver.submit(request, respond)
        return True

    async def _handle(self, caller: Caller, request: Message) -> Message:
        """The transport's RPC handler. Cancellation (the caller's deadline, a closed
        connection): a client request stays with the replica and may still be carried
        out; its answer is dropped."""
        refusal = read_only_refusal(caller, request)
        if refusal is not None:
            return refusal
        if isinstance(request, ClientRequest):
            driver = self._driver
            if driver is None:
                return Refused.of(RefuseCode.UNAVAILABLE, f"node {self.node_id} is starting")
            # Only a request taken before the submit hook was set comes here; it goes
            # the one way in all the same, and this task waits for its answer.
            return await _answer_of(driver, request)
        if isinstance(request, AdminRequest):
            return self._admin(request)
        what = type(request).__name__
        return Refused.of(RefuseCode.BAD_REQUEST, f"node {self.node_id} does not serve {what}")

    def _admin(self, request: AdminRequest) -> Message:
        if isinstance(request, GetNodeInfo):
            if self._driver is None:
                return Refused.of(RefuseCode.UNAVAILABLE, f"node {self.node_id} is starting")
            return self.info()
        if not self.settings.allow_fault_injection:
            return Refused.of(
                RefuseCode.BAD_REQUEST,
                f"fault injection is off on node {self.node_id}; set "
                "cluster.allow_fault_injection = true in the cluster file to allow it",
            )
        faults = self.transport.faults
        if isinstance(request, SetFaults):
            if request.peer not in self.transport.peer_ids:
                why = f"node {self.node_id} has no peer {request.peer}"
                return Refused.of(RefuseCode.BAD_REQUEST, why)
            faults.set(
                request.peer,
                PeerFaults(
                    drop_probability=request.drop_probability,
                    delay_ms=request.delay_ms,
                    blocked=request.blocked,
                ),
            )
            log.warning("node %d: fault injection towards node %d: %s", self.node_id,
                        request.peer, faults.get(request.peer))  # fmt: skip
        elif isinstance(request, ClearFaults):
            faults.clear(request.peer or None)
            log.warning("node %d: faults cleared (%s)", self.node_id,
                        f"node {request.peer}" if request.peer else "every peer")  # fmt: skip
        elif not isinstance(request, GetFaults):
            what = type(request).__name__
            return Refused.of(RefuseCode.BAD_REQUEST, f"unknown admin request {what}")
        return FaultsState(
            tuple(
                PeerFaultState(peer, f.drop_probability, f.delay_ms, f.blocked)
                for peer, f in sorted(faults.active().items())
            )
        )


async def _answer_of(driver: Driver, request: ClientRequest) -> Message:
    """`request` through `driver.submit`, awaited. Cancellation: the request stays with
    the node (a write may still be applied); its answer is dropped."""
    answered = trio.Event()
    answers: list[Message] = []

    def answer(reply: Message) -> None:
        answers.append(reply)
        answered.set()

    driver.submit(request, answer)
    await answered.wait()
    return answers[0]


def client_config(settings: NodeSettings, rng: random.Random) -> TransportClientConfig:
    """How the node's own client (the cluster service's reports) authenticates: with the
    client secret, like any client (NodeSettings.client_secret must be set); over TLS with
    the node's own certificate (a node certificate proves the client secret only:
    `raftcluster.transport.certnames`)."""
    if settings.client_secret is None:
        raise NodeError(f"node {settings.node_id}: the cluster service needs a client secret")
    return TransportClientConfig(
        cluster_id=settings.cluster_id,
        client_id=rng.getrandbits(62) + 1,
        secret=settings.client_secret,
        limits=settings.limits,
        tls=settings.tls,
    )


def run(settings: NodeSettings, **options: Any) -> AbstractAsyncContextManager[Node]:
    """``async with run(settings) as node:`` a started node; leaving the block stops it
    gracefully (`Node.stop`) and waits for that. Options are `Node`'s.

    Entry raises what `Node.serve` raises before it serves (PortInUse, NodeError, ...).
    Cancellation of the block ends the node as cancelling `serve` does.
    """
    return Unwrapped(_running(settings, options))


@contextlib.asynccontextmanager
async def _running(settings: NodeSettings, options: dict[str, Any]) -> AsyncIterator[Node]:
    node = Node(settings, **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.serve)
        try:
            yield node
        finally:
            node.stop()


@contextlib.contextmanager
def unwrap_groups() -> Iterator[None]:
    """Let the one error that ended a nursery out as itself, not in an exception group
    (a group of several errors goes through as it is)."""
    try:
        yield
    except BaseExceptionGroup as group:
        raise single(group) from None


def _listen_error(node_id: int, error: TransportError) -> NodeError | TransportError:
    cause = error.__cause__
    if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
        address = str(error).split("cannot listen on ", 1)[-1].split(": ", 1)[0]
        return PortInUse(node_id, address)
    return error
