"""Our own engine under the simulator: the real node and client cores, wire and disk.

Each simulated node is what `raftcluster node run` runs, minus trio and sockets: a
`CycleCore` (the node's cycle policy, the same object the trio `Driver` drives) around a
`Replica`, whose storage is the real write-ahead log (`FileStorage`) on a simulated
directory with a real disk's crash semantics and injected faults (`SimDataDir`). Every
message crosses the real codec (`Wire`). Clients are `ClientCore`s, each on its own
skewed and drifting clock.

How the shell's duties map to virtual time:
- a persist (the fsync) takes a time drawn in [0, `max_fsync_ms`]; the messages the
  cycle core lets go before it leave at once, the rest when it completes; inputs that
  arrive meanwhile go to the replica and join the next cycle, as in the trio driver;
- a node acts on what one instant delivered as one batch (the driver's deferred inputs:
  one ReadIndex round per batch of reads), after ticking its replica to the instant;
- a crash while a persist is under way cuts the power inside it (a prefix of its writes
  reaches the page cache, then the disk keeps what a power cut may keep): torn records;
- a storage failure (EIO, ENOSPC) stops the node as the real one stops (`StorageFailed`
  ends `Node.serve`); a node whose disk is damaged refuses to start, and stays down.

Checked on top of the loop's checks: Raft's safety properties and the acknowledged
writes (`Invariants`), exactly-once of session requests (`ExactlyOnce`), the wire, the
durability of what each node synced (`SimDataDir`), and after healing a leader, a
committed probe write, the whole membership back and identical replicas.
"""

from __future__ import annotations

import contextlib
import errno
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs

from chaos.sim.clock import NodeClock
from chaos.sim.datadir import SimDataDir
from chaos.sim.durability import DurabilityCheckFailed
from chaos.sim.durable_quorum import DurableQuorum
from chaos.sim.engine import Membership, Timing
from chaos.sim.events import CycleDone, NodeCrashed, NodeRefused, NodeStarted, OperationDone
from chaos.sim.exactly_once import ExactlyOnce
from chaos.sim.faults import ChangeMembership, DiskFault, Fault
from chaos.sim.groups.host import GroupsHost
from chaos.sim.invariants import Invariants, SafetyViolation
from chaos.sim.named import parts_of
from chaos.sim.network import LinkClosed
from chaos.sim.part_invariants import PartInvariants, declares_invariants
from chaos.sim.read_freshness import ReadFreshness
from chaos.sim.settings import EngineSettings
from chaos.sim.wire import Wire
from raftcluster import __version__
from raftcluster.client.core import ClientConfig, ClientCore, Completion
from raftcluster.node.config import ReplicaConfig
from raftcluster.node.cycle import NOTHING, Actions, CycleCore
from raftcluster.node.protocol import ChangeMembership as ChangeMembershipRequest
from raftcluster.node.protocol import (
    ClientReply,
    ClientRequest,
    Consistency,
    MembershipChanged,
    MembershipOp,
    NotLeader,
    Query,
    Submit,
    Written,
)
from raftcluster.node.replica import Replica, ReplicaHooks, Work
from raftcluster.node.services import SessionExpiry
from raftcluster.raft.config import RaftConfig
from raftcluster.raft.membership import identity_current, is_member
from raftcluster.raft.messages import (
    AppendResponse,
    RaftMessage,
    ReadIndexResponse,
    VoteResponse,
)
from raftcluster.raft.ready import Role
from raftcluster.raft.types import ConfChange, ConfChangeOp, EntryKind
from raftcluster.storage.errors import StorageCorrupted, StorageFailed
from raftcluster.storage.simfs import SimulatedCrash
from raftcluster.transport.wire import RaftFrame, RpcRequest, RpcResponse
from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode
from statemachine.kv import Put

if TYPE_CHECKING:
    from chaos.sim.network import Envelope
    from chaos.sim.simulator import Simulator

PROBE = 999  # the probe client's id (CLIENT_BASE - 1), started when the faults heal
ADMIN = 998  # sends membership changes (the nemesis's, and healing's)
# After healing, a membership step is asked for again if not answered within this long.
ADMIN_RETRY_MS = 500
_MEMBERSHIP_OPS = {
    "remove": MembershipOp.REMOVE,
    "add-learner": MembershipOp.ADD_LEARNER,
    "promote": MembershipOp.PROMOTE,
}
_ROLES = {r: r.name.lower() for r in Role}
# Messages that promise what the sender's disk holds (checked by `_check_promise`).
_PROMISES = (AppendResponse, VoteResponse)
# A lying disk (the `lying-fsync` plant) makes things durable once this many syncs piled up.
LYING_SYNCS = 64
# A power cut inside a persist lands after 1 to this many of its disk operations (a persist
# writes a segment's chunk, fsyncs it, and at times a snapshot file and the directory).
MAX_OPS_BEFORE_CUT = 8
# Requests remembered per client until answered (to check what an acknowledgement is for);
# beyond it the oldest, long lost, are forgotten.
MAX_TRACKED_REQUESTS = 10_000


class _Node:
    __slots__ = (
        "id", "config", "disk", "core", "incarnation", "inbox", "persisting", "persist_due",
        "crash_in_persist", "wake", "calls", "lost", "wiped", "deadline_at", "clock",
        "persist_term",
    )  # fmt: skip

    def __init__(
        self, node_id: int, config: ReplicaConfig, disk: SimDataDir, clock: NodeClock
    ) -> None:
        self.id = node_id
        self.clock = clock  # the simulator's clock of the node (faults move it in place)
        self.config = config
        self.disk = disk
        self.core: CycleCore | None = None  # None: down
        self.incarnation = 0
        self.inbox: list[Any] = []  # RaftMessage, or (client, call id, request), this instant
        self.persisting: Work | None = None  # a persist under way, and when it completes
        self.persist_due = 0
        self.crash_in_persist = False  # armed: the power goes inside the next persist
        self.wake: int | None = None  # virtual time of the next timer (cached)
        # ((local deadline, topology version), the virtual time its clock reaches it)
        self.deadline_at: tuple[tuple[int, int], int] | None = None
        self.persist_term = 0  # the term its core was in when the persist under way began
        self.calls: dict[int, tuple[int, int]] = {}  # core request id -> (client, call id)
        self.lost = False  # refused to start from its disk: stays down
        # Its data directory was lost: it starts as a new member joining the cluster (no
        # founding configuration), the way an operator would bring it back.
        self.wiped = False

    @property
    def replica(self) -> Replica:
        assert self.core is not None
        return self.core.replica


class _Client:
    """A `ClientCore` on its own clock; what the workload calls (`write`, `read`)."""

    __slots__ = ("engine", "id", "index", "core", "clock", "requests", "wake", "dirty")
    pipelines = True  # a session: a workload may run several processes on it at once

    def __init__(
        self,
        engine: RaftclusterEngine,
        client_id: int,
        index: int,
        core: ClientCore,
        clock: NodeClock,
    ) -> None:
        self.engine = engine
        self.id = client_id
        self.index = index  # in the workload's list; -1 for the engine's own clients
        self.core = core
        self.clock = clock
        self.requests: dict[int, ClientRequest] = {}  # call id -> request, until answered
        self.wake: int | None = None
        self.dirty = True

    def local(self) -> int:
        return self.clock.local(self.engine.sim.now)

    def write(self, command: Message, now_ms: int, timeout_ms: int | None = None) -> int:
        self.dirty = self.engine.clients_dirty = True
        return self.core.write(command, self.clock.local(now_ms), timeout_ms)

    def read(self, query: Message, now_ms: int, **options: Any) -> int:
        self.dirty = self.engine.clients_dirty = True
        return self.core.read(query, self.clock.local(now_ms), **options)


class RaftclusterEngine:
    name = "raftcluster"
    version = __version__
    checks_sessions = True
    read_rounds = True

    def __init__(
        self,
        *,
        hooks: ReplicaHooks | None = None,
        lying_fsync: bool = False,
        wiped_rebootstraps: bool = False,
    ) -> None:
        """`hooks`, `lying_fsync` and `wiped_rebootstraps` plant bugs
        (chaos/sim/planted.py), never set otherwise."""
        self.hooks = hooks
        self.lying_fsync = lying_fsync
        self.wiped_rebootstraps = wiped_rebootstraps
        self.sim: Simulator = cast("Simulator", None)
        self.nodes: dict[int, _Node] = {}
        self.clients: dict[int, _Client] = {}
        self._settings: EngineSettings | None = None
        self._max_fsync_ms = 0
        self._probe: _Client | None = None
        self._probe_handle = 0
        self._admin_call = 0
        # The configuration of the last leader seen (`membership`, when none leads now).
        self._last_membership: Membership | None = None
        self._admin_asked_ms: int | None = None  # healing's membership step in flight
        self._stepped: set[int] = set()  # nodes that took a step this instant
        self._wakes: dict[int, int] = {}  # running node -> virtual time of its next timer
        self._earliest: tuple[int, int | None] | None = None  # (topology, earliest wake)
        self._clients_wake: int | None = None  # the earliest client timer
        self.clients_dirty = False  # some client has sends or completions to take
        self.groups: GroupsHost | None = None  # the cluster service, if the workload runs it
        # (applied index, incarnations) at which the replicas last compared equal
        self._compared_at: tuple[int, tuple[int, ...]] | None = None

    # -- setting up ----------------------------------------------------------------------

    def attach(self, sim: Simulator) -> None:
        self.sim = sim
        self._paused = sim.paused_nodes()  # (read at every step: a view, not a call per node)
        config = sim.config
        self._settings = settings = EngineSettings.for_seed(config, sim.rng_settings)
        self._max_fsync_ms = settings.max_fsync_ms
        self.invariants = Invariants(sim.fail)
        self.exactly_once = ExactlyOnce(sim.fail)
        self.durable_quorum = DurableQuorum(sim.fail)
        self.read_freshness = ReadFreshness(sim.fail)
        self.parts = parts_of(config.parts)  # the user's parts, registered on every node
        self.part_invariants = PartInvariants(sim.fail)
        self._check_parts = declares_invariants(self.parts)
        self.wire = Wire(sim)
        for node in sim.ids:
            disk = SimDataDir(node, check_startable=True)
            disk.directory.lying_syncs = LYING_SYNCS if self.lying_fsync else 0
            replica_config = self._replica_config(node, sim.ids, settings)
            self.nodes[node] = _Node(node, replica_config, disk, sim.node_clock(node))
        groups_plan = getattr(sim.workload, "groups_plan", None)
        if groups_plan is not None:  # the workload runs the cluster service on the nodes
            self.groups = GroupsHost(self, groups_plan(sim.ids), settings.election_timeout_ms)

    def settings(self) -> Mapping[str, int | bool | str]:
        assert self._settings is not None
        return self._settings.as_dict()

    def timing(self) -> Timing:
        s = self._settings
        assert s is not None
        # A follower campaigns within [T, 2T) of silence, pre-vote and vote take a round
        # each, a split vote another [T, 2T); clocks run up to 20% slow. Ten timeouts
        # leave room for a few unlucky rounds.
        elect = 10 * s.election_timeout_ms
        # check-quorum deposes a leader one timeout after it last heard from a majority
        # (of its clock); 2T covers a slow clock and the tick that notices.
        step_down = 2 * s.election_timeout_ms + s.heartbeat_interval_ms
        return Timing(elect, step_down if s.check_quorum else None)

    @staticmethod
    def _replica_config(node: int, ids: tuple[int, ...], s: EngineSettings) -> ReplicaConfig:
        raft = RaftConfig(
            node_id=node,
            peers=cast(Any, ids),  # (mypy types the tuple converter's argument oddly)
            election_timeout_ms=s.election_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            pre_vote=s.pre_vote,
            check_quorum=s.check_quorum,
            max_entries_per_msg=s.max_entries_per_msg,
            max_inflight_msgs=s.max_inflight_msgs,
            commit_notice_delay_ms=s.commit_notice_delay_ms,
            max_snapshot_chunk_bytes=s.max_snapshot_chunk_bytes,
        )
        return ReplicaConfig(
            raft=raft,
            snapshot_every_entries=s.snapshot_every_entries,
            session_expiry_interval_ms=s.session_expiry_interval_ms,
        )

    def client_handles(self, count: int) -> Sequence[_Client]:
        from chaos.sim.simulator import CLIENT_BASE

        return [self._add_client(CLIENT_BASE + i, i) for i in range(count)]

    def _add_client(self, client_id: int, index: int, clock: NodeClock | None = None) -> _Client:
        """A client with its own clock (`clock`: a node's, for a node's own client)."""
        c, sim = self.sim.config, self.sim
        config = ClientConfig(
            nodes=sim.ids,
            session_ttl_ms=c.session_ttl_ms,
            attempt_timeout_ms=c.client_attempt_timeout_ms,
            op_timeout_ms=c.client_op_timeout_ms,
        )
        rng = random.Random(sim.rng_clients.getrandbits(64))
        clock = clock if clock is not None else sim.client_clock(client_id)
        core = ClientCore(config, rng, clock.local(sim.now))
        client = self.clients[client_id] = _Client(self, client_id, index, core, clock)
        self.clients_dirty = True
        return client

    def add_node_client(self, client_id: int, node: int) -> _Client:
        """A client that runs inside `node` (on its clock, cut off with it by partitions)."""
        self.sim.network.homes[client_id] = node
        return self._add_client(client_id, -1, self.sim.node_clock(node))

    def remove_client(self, client_id: int) -> None:
        """A client is gone (its node stopped): its timers with it."""
        del self.clients[client_id]
        times = [c.wake for c in self.clients.values() if c.wake is not None]
        self._clients_wake = min(times) if times else None

    # -- nodes ---------------------------------------------------------------------------

    def running(self, node: int) -> bool:
        return self.nodes[node].core is not None

    def start(self, node: int) -> None:
        n = self.nodes[node]
        assert n.core is None, f"node {node} is running"
        sim = self.sim
        n.incarnation += 1
        rng = random.Random(sim.rng_nodes.getrandbits(64))
        groups = self.groups
        observer = self.exactly_once.observer(node)
        if self._check_parts:
            observer = self.part_invariants.observer(node, observer)
        state = ClusterState(
            observer=observer, groups=groups.config if groups is not None else None
        )
        for spec in self.parts:
            state.register(spec)
        config = n.config
        services = None
        if groups is not None:  # the node manager is one of its leader services
            local = self._local(node)
            agent = groups.starting(node, n.incarnation, local)
            services = (SessionExpiry(config.session_expiry_interval_ms, local), agent.manager)
        try:
            storage = n.disk.open()
            replica = Replica(
                config, storage, rng, self._local(node), state=state, services=services,
                hooks=self.hooks,
            )  # fmt: skip
        except StorageCorrupted as e:
            self._refused(n, e)
            return
        except DurabilityCheckFailed as e:  # it recovered less than it had synced
            raise self.sim.fail("durability", f"node {node}: {e}", (node,)) from None
        except StorageFailed:  # an I/O error as it starts: it stops, and may start later
            self._crash_disk(n)
            self.sim.counters.disk["failed_starts"] = (
                self.sim.counters.disk.get("failed_starts", 0) + 1
            )
            return
        n.lost = n.wiped = False
        n.core = CycleCore(replica)
        if groups is not None:
            groups.started(agent, replica)
        n.inbox, n.calls = [], {}
        n.persisting, n.crash_in_persist = None, False
        self.invariants.on_start(node, replica)
        self._stepped.add(node)
        sim.record(NodeStarted(sim.now, node, n.incarnation))
        self._run_cycles(n)
        if groups is not None:
            groups.step(node, self._local(node))
        self._set_wake(n)

    def _refused(self, n: _Node, error: StorageCorrupted) -> None:
        """The node would not start from its disk: it must say where and why (the file and
        the byte offset), and it stays down until healing tries again."""
        sim = self.sim
        if not error.path or error.offset < 0 or error.path not in str(error):
            raise sim.fail("durability", f"node {n.id} refused to start without naming "
                           f"the file and offset: {error}", (n.id,))  # fmt: skip
        n.lost = True
        self._crash_disk(n)  # the process exits (nothing was written: the directory is as it was)
        sim.counters.disk["refused_starts"] = sim.counters.disk.get("refused_starts", 0) + 1
        sim.record(NodeRefused(sim.now, n.id, str(error)))

    def crash(self, node: int, during_persist: bool) -> None:
        n = self.nodes[node]
        if n.core is None:
            return
        if during_persist and n.persisting is None:
            n.crash_in_persist = True  # the power goes inside the next persist
            return
        self._power_off(n)

    def _power_off(self, n: _Node) -> None:
        """The power goes now; a persist under way is cut inside, after a drawn number of
        its disk operations (if it finishes first, it is synced and never acknowledged)."""
        sim = self.sim
        during = n.persisting is not None
        if n.persisting is not None:
            n.disk.cut_power_after(sim.rng_disk.randint(1, MAX_OPS_BEFORE_CUT))
            with contextlib.suppress(SimulatedCrash, StorageFailed):  # (the power went)
                n.replica.persist(n.persisting)
        lost, torn = self._crash_disk(n)
        self._down(n)
        sim.counters.crashes += 1
        disk = sim.counters.disk
        disk["power_cuts_in_persist"] = disk.get("power_cuts_in_persist", 0) + during
        sim.record(NodeCrashed(sim.now, n.id, during, lost, torn))

    def _crash_disk(self, n: _Node) -> tuple[int, bool]:
        """Power lost at `n`'s disk: what was not synced survives as the seed draws
        (prefixes). Returns the unsynced bytes lost, and whether a file kept part of them
        (a record may be cut in two)."""
        rng = self.sim.rng_disk
        counts = [0, 0]  # bytes lost, files cut inside their unsynced bytes

        def choose(n: int) -> int:
            kept = rng.randint(0, n)
            counts[0] += n - kept
            counts[1] += 0 < kept < n
            return kept

        n.disk.crash(choose)
        disk = self.sim.counters.disk
        disk["unsynced_lost"] = disk.get("unsynced_lost", 0) + counts[0]
        disk["cut_inside_unsynced"] = disk.get("cut_inside_unsynced", 0) + counts[1]
        return counts[0], counts[1] > 0

    def _down(self, n: _Node) -> None:
        """`n`'s process is gone (crashed, or stopped on a storage failure): its peers
        see its connections close (`Network.close_links`, not across a cut)."""
        if n.core is not None:  # what it committed stays committed: reads still owe it
            self.read_freshness.note_commit(n.replica.core.commit_index)
        peers = [m for m, other in sorted(self.nodes.items()) if m != n.id and other.core]
        self.sim.network.close_links(n.id, peers, self.sim.now)
        n.core = None
        n.persisting = None
        n.crash_in_persist = False
        n.inbox, n.calls = [], {}
        n.wake = None
        self._wakes.pop(n.id, None)
        self._earliest = None
        self.invariants.on_stop(n.id)
        self.durable_quorum.stopped(n.id)
        self.read_freshness.forget(n.id)
        if self.groups is not None:
            self.groups.stopped(n.id)
        self.sim.node_stopped(n.id)

    def deliver(self, envelope: Envelope) -> None:
        dst = envelope.dst
        if isinstance(envelope.payload, LinkClosed):
            if envelope.dst in self.nodes:
                self.nodes[envelope.dst].inbox.append(envelope.payload)
            return
        data, sent = envelope.payload
        frame = self.wire.receive(envelope, sent)
        if frame is None:
            return  # damaged: refused by the decoder, as the transport would
        client = self.clients.get(dst)
        if client is not None:
            self._to_client(client, envelope.src, cast(RpcResponse, frame))
        elif dst == ADMIN:
            self._to_admin(cast(RpcResponse, frame))
        elif dst not in self.nodes:
            return  # an answer to a node's own client, gone with its node
        elif isinstance(frame, RaftFrame):
            message: RaftMessage = frame.message  # type: ignore[assignment]  # (decoded so)
            assert message.dst == dst and message.src == envelope.src, "misrouted"
            if isinstance(message, AppendResponse) and not message.reject:
                self.durable_quorum.acknowledged(dst, message.src, message.term, message.index)
            self.nodes[dst].inbox.append(message)
        elif self.groups is not None and self.groups.receive(dst, envelope.src, frame):
            return  # a heartbeat of the cluster service, or its answer
        else:
            request = cast(RpcRequest, frame)
            self.nodes[dst].inbox.append((envelope.src, request.call_id, request.body))

    def next_wake_ms(self) -> int | None:
        nodes = self._earliest_node_wake()
        clients = self._clients_wake
        if self.groups is not None:  # the simulated resources' timers
            resources = self.groups.next_ms()
            if resources is not None and (clients is None or resources < clients):
                clients = resources
        if clients is None:
            return nodes
        return clients if nodes is None or clients < nodes else nodes

    def due(self, now_ms: int) -> list[int]:
        cached = self._earliest  # (`_earliest_node_wake` inline: asked at every step)
        if cached is not None and cached[0] == self.sim.topology_version:
            earliest = cached[1]
        else:
            earliest = self._earliest_node_wake()
        if earliest is None or earliest > now_ms:
            return []
        paused = self._paused
        return [n for n, w in sorted(self._wakes.items()) if w <= now_ms and n not in paused]

    def _earliest_node_wake(self) -> int | None:
        """The earliest timer of a running node that is not paused, kept until a node's
        timer or the loop's topology (a pause) changes: the loop asks twice per step."""
        key = self.sim.topology_version
        if self._earliest is None or self._earliest[0] != key:
            paused = self._paused
            times = [w for node, w in self._wakes.items() if node not in paused]
            self._earliest = (key, min(times) if times else None)
        return self._earliest[1]

    def step_node(self, node: int) -> None:
        n = self.nodes[node]
        core = n.core
        assert core is not None
        self._stepped.add(node)
        sim = self.sim
        local = n.clock.local(sim.now)
        due = n.wake is not None and n.wake <= sim.now  # (its timers, as of its last step)
        if n.persisting is not None and n.persist_due <= sim.now:
            self._complete_persist(n)
            if n.core is None:
                return
        if n.inbox:
            self._take_inbox(n, local)
        if due:
            self._carry_out(n, core.tick(local))
        self._run_cycles(n)
        if self.groups is not None and n.core is not None:
            self.groups.step(node, local)
        self._set_wake(n)

    def _take_inbox(self, n: _Node, local: int) -> None:
        """What the instant delivered, in order: runs of raft messages go in together."""
        core = n.core
        assert core is not None
        inbox, n.inbox = n.inbox, []
        run: list[RaftMessage] = []
        for item in inbox:
            if isinstance(item, RaftMessage):
                run.append(item)
                continue
            if run:
                self._carry_out(n, core.deliver(run, local))
                run = []
            if isinstance(item, LinkClosed):
                self._carry_out(n, core.peer_unreachable(item.node, local))
                continue
            client, call_id, request = item
            request_id, actions = core.submit(request, local)
            if isinstance(request, Query) and request.consistency == Consistency.LINEARIZABLE:
                self.read_freshness.arrived(n.id, request_id, self._highest_commit())
            n.calls[request_id] = (client, call_id)
            self._carry_out(n, actions)
        if run:
            self._carry_out(n, core.deliver(run, local))

    def _run_cycles(self, n: _Node) -> None:
        """Cycles until the node has nothing ready or waits for a persist (one that takes
        no time completes at once, in this instant)."""
        sim = self.sim
        max_fsync_ms = self._max_fsync_ms
        while n.core is not None and n.persisting is None:
            actions = n.core.start()
            if actions is None:
                return
            self._carry_out(n, actions)
            if actions.persist is not None:
                n.persisting = actions.persist
                n.persist_term = n.replica.core.term  # (the Ready's: for read freshness)
                # (randrange(n + 1) draws what randint(0, n) does, with less to do)
                latency = sim.rng_disk.randrange(max_fsync_ms + 1) if max_fsync_ms else 0
                n.persist_due = sim.now + latency
                if latency == 0:
                    self._complete_persist(n)

    def _complete_persist(self, n: _Node) -> None:
        work = n.persisting
        assert work is not None and n.core is not None
        if n.crash_in_persist:
            self._power_off(n)
            return
        try:
            n.replica.persist(work)
        except StorageFailed as e:  # the real node stops here: `serve` raises it
            self._storage_failed(n, e)
            return
        except DurabilityCheckFailed as e:  # its writes came in an order a crash breaks
            raise self.sim.fail("durability", f"node {n.id}: {e}", (n.id,)) from None
        n.persisting = None
        self._carry_out(n, n.core.persisted(work))

    def _storage_failed(self, n: _Node, error: StorageFailed) -> None:
        """A write or fsync failed: the real node stops (`serve` raises it); what it had
        not synced is as a crash leaves it."""
        sim = self.sim
        lost, torn = self._crash_disk(n)
        self._down(n)
        disk = sim.counters.disk
        disk["storage_failures"] = disk.get("storage_failures", 0) + 1
        sim.record(NodeCrashed(sim.now, n.id, True, lost, torn))

    def _carry_out(self, n: _Node, actions: Actions) -> None:
        if actions is NOTHING:
            return  # (most inputs: nothing to do now)
        sim, wire = self.sim, self.wire
        for message in actions.send:
            if isinstance(message, _PROMISES):
                self._check_promise(n, message)
            elif isinstance(message, ReadIndexResponse):
                raft = n.replica.core
                self.read_freshness.released(
                    n.id, message.term, message.index, raft.term_at(message.index)
                )
            data, frame = wire.raft(message)
            sim.send(n.id, message.dst, (data, frame), what=type(message).__name__,
                     term=message.term, size=len(data), duplicable=True)  # fmt: skip
        for answer in actions.answers:
            self.read_freshness.answered(n.id, answer.request_id, answer.reply)
            client, call_id = n.calls.pop(answer.request_id)
            data, frame = wire.response(n.id, client, call_id, answer.reply)
            sim.send(n.id, client, (data, frame), what=type(answer.reply).__name__,
                     term=call_id, size=len(data), duplicable=False)  # fmt: skip
        work, out = actions.completed, actions.output
        if work is not None and out is not None:
            self.invariants.on_cycle(n.id, work, out)
            rd, raft = work.ready, n.replica.core
            # Its own reads, released as leader of this term: judged when neither its role
            # nor its term changed since its previous cycle (else some may be a follower's)
            # nor since this cycle's Ready (a persist's inputs may have moved them).
            same = rd.soft_state is None and not rd.term_or_vote_changed
            if work.must_sync and n.persist_term != raft.term:
                same = False
            if rd.read_states and same and raft.role == Role.LEADER:
                for read in rd.read_states:
                    self.read_freshness.released(
                        n.id, raft.term, read.index, raft.term_at(read.index)
                    )
            counters = sim.counters
            counters.snapshots_taken += work.compacted is not None
            counters.snapshots_installed += work.ready.snapshot is not None
            rd, hs = work.ready, work.ready.hard_state
            sim.trace.add_values(
                CycleDone, sim.now, n.id,
                (hs.term, hs.vote, hs.commit) if hs is not None else None,
                rd.entries[-1].index if rd.entries else 0,
                rd.committed_entries[-1].index if rd.committed_entries else 0,
                rd.snapshot.meta.index if rd.snapshot is not None else 0,
                work.compacted.meta.index if work.compacted is not None else 0,
                len(out.messages), len(actions.answers),
            )  # fmt: skip
        if actions.snapshot is not None and n.core is not None:
            # The node runs it in a worker thread; here at once, in this instant (the
            # next cycle compacts: raftcluster/node/snapshotting.py). Its file is
            # written now: a disk fault may hit it, which stops the node as in a persist.
            try:
                written = actions.snapshot.run()
            except StorageFailed as e:
                self._storage_failed(n, e)
                return
            n.core.snapshot_written(actions.snapshot, written)

    def _check_promise(self, n: _Node, message: RaftMessage) -> None:
        """A message that promises something about the sender's disk leaves only once its
        disk holds it, synced: an acknowledgement of entries up to `index`, a vote granted
        in a term. (The oracle's shadow knows what the node synced.) A node whose synced
        term is already past the message's has moved on: a later leader's log replaced
        what it acknowledged, or it can never vote in that term again, and Raft's quorum
        intersection covers what it said before (no later leader is elected without a
        voter that holds every entry committed in the earlier term)."""
        synced = n.disk.oracle.shadow.synced
        hs = synced.hard_state
        if hs.term > message.term:
            return
        if isinstance(message, AppendResponse):
            if message.reject or message.index <= synced.last_index:
                return
            held = f"its disk holds up to {synced.last_index} synced"
            what = f"acknowledges index {message.index} to node {message.dst}"
        else:
            assert isinstance(message, VoteResponse)
            if (
                not message.granted
                or message.pre_vote
                or (hs.term, hs.vote) == (message.term, message.dst)
            ):
                return
            held = f"its disk holds term {hs.term}, vote {hs.vote} synced"
            what = f"grants node {message.dst} its vote"
        raise self.sim.fail(
            "persist before send",
            f"node {n.id} {what} in term {message.term}, but {held}",
            (n.id, message.dst),
        )

    def _set_wake(self, n: _Node) -> None:
        if n.core is None:
            n.wake = None
            self._wakes.pop(n.id, None)
            self._earliest = None
            return
        sim = self.sim
        deadline = n.core.next_deadline_ms()
        if self.groups is not None:
            agent = self.groups.deadline(n.id)
            if agent is not None and agent < deadline:
                deadline = agent
        # When its clock reaches `deadline`: kept while the deadline and the clocks (only a
        # fault moves one) are the same, as it is asked after every step of the node.
        key = (deadline, sim.topology_version)
        cached = n.deadline_at
        if cached is None or cached[0] != key:
            cached = n.deadline_at = (key, n.clock.virtual(deadline, sim.now))
        wake = max(sim.now + 1, cached[1])
        if n.persisting is not None:
            wake = min(wake, max(n.persist_due, sim.now))
        n.wake = wake
        before = self._wakes.get(n.id)
        if before != wake:
            self._wakes[n.id] = wake
            # The earliest timer stays known unless this node may have held it and its
            # timer moved later (a paused node's does not count).
            known = self._earliest
            if known is not None and n.id not in self._paused:
                earliest = known[1]
                if earliest is None or wake <= earliest:
                    self._earliest = (known[0], wake)
                elif before is not None and before <= earliest:
                    self._earliest = None

    def _highest_commit(self) -> int:
        """The highest commit index of the running nodes now (read freshness adds the
        stopped ones')."""
        return max(
            (n.core.replica.core.commit_index for n in self.nodes.values() if n.core is not None),
            default=0,
        )

    def _local(self, node: int) -> int:
        return self.nodes[node].clock.local(self.sim.now)

    # -- what the loop and the checks read -------------------------------------------------

    def role(self, node: int) -> tuple[str, int] | None:
        core = self.nodes[node].core
        if core is None:
            return None
        raft = core.replica.core
        return _ROLES[raft.role], raft.term

    def leader(self) -> int:
        best = (0, 0)
        for n in self.nodes.values():
            if n.core is not None:
                raft = n.core.replica.core
                if raft.role == Role.LEADER and raft.term > best[0]:
                    best = (raft.term, n.id)
        return best[1]

    def membership(self) -> Membership:
        """The leader's configuration; while none leads, the last leader's (the one the
        next leader most likely works with: a nemesis that took every node for a voter
        then could leave the real voters without a running majority)."""
        leader = self.leader()
        if not leader:
            return self._last_membership or Membership(self.sim.ids)
        conf = self.nodes[leader].replica.core.conf
        known = self._last_membership
        if known is None or (known.voters, known.learners) != (conf.voters, conf.learners):
            known = self._last_membership = Membership(conf.voters, conf.learners)
        return known

    def voters(self, node: int) -> tuple[int, ...]:
        return self.nodes[node].replica.core.conf.voters

    def serving(self, node: int) -> bool:
        raft = self.nodes[node].replica.core
        return raft.role == Role.LEADER and raft.term_at(raft.commit_index) == raft.term

    def replicas(self) -> dict[int, Replica]:
        return {n.id: n.core.replica for n in self.nodes.values() if n.core is not None}

    # -- clients -------------------------------------------------------------------------

    def touch(self, node: int) -> None:
        """`node` has something to do at this instant (the cluster service's input)."""
        self.sim.touch(node)

    def step_clients(self) -> None:
        """The clients take their steps; so do the simulated resources of the cluster
        service (their answers reach the nodes' agents at the node's next step)."""
        if self.groups is not None:
            self.groups.run_due()
        now = self.sim.now
        wake = self._clients_wake
        if not self.clients_dirty and (wake is None or wake > now):
            return  # (no client has anything to do)
        self.clients_dirty = False
        changed = False
        for client in self.clients.values():
            if client.wake is not None and client.wake <= now:
                client.core.tick(client.local())
                client.dirty = True
            if client.dirty:
                self._flush_client(client)
                changed = True
        if changed:
            times = [c.wake for c in self.clients.values() if c.wake is not None]
            self._clients_wake = min(times) if times else None

    def _flush_client(self, client: _Client) -> None:
        client.dirty = False
        sim, core = self.sim, client.core
        for send in core.take_sends():
            if isinstance(send.request, Submit):
                self.exactly_once.on_sent(client.id, send.request.command)
            client.requests[send.request_id] = send.request
            if len(client.requests) > MAX_TRACKED_REQUESTS:  # unanswered ones, long lost
                del client.requests[next(iter(client.requests))]
            data, frame = self.wire.request(client.id, send.node, send.request_id, send.request)
            sim.send(client.id, send.node, (data, frame), what=type(send.request).__name__,
                     term=send.request_id, size=len(data), duplicable=False)  # fmt: skip
        for done in core.take_completions():
            self._completed(client, done)
        deadline = core.next_deadline_ms()
        client.wake = None if deadline is None else client.clock.virtual(deadline, sim.now + 1)

    def _to_client(self, client: _Client, node: int, frame: RpcResponse) -> None:
        reply = cast(ClientReply, frame.body)
        request = client.requests.pop(frame.call_id, None)
        if isinstance(reply, Written) and isinstance(request, Submit):
            self.invariants.on_acknowledged(node, client.id, reply.index, request.command)
            self.exactly_once.on_answer(node, client.id, request.command, reply.result)
        client.core.receive(node, frame.call_id, reply, client.local())
        client.dirty = self.clients_dirty = True

    def _completed(self, client: _Client, done: Completion) -> None:
        sim = self.sim
        outcome = "ok" if done.error is None else type(done.error).__name__
        sim.record(OperationDone(sim.now, client.id, done.handle, outcome, done.index))
        sim.counters.on_completion(done)
        if client.index >= 0:
            sim.workload.completed(client.index, done, sim.now)
        elif self.groups is not None and client.id in self.groups.client_ids():
            self.groups.completed(client, done)
        elif client is self._probe and done.handle == self._probe_handle:
            if done.ok:
                sim.heal_marks.setdefault("probe_ms", sim.now)
            else:  # not yet: try again until the bound
                put = Put(b"probe", b"%d" % sim.now)
                self._probe_handle = client.write(put, sim.now)

    # -- faults and membership -------------------------------------------------------------

    def inject(self, fault: Fault) -> bool:
        if isinstance(fault, ChangeMembership):
            self._ask_membership(fault.op, fault.node)
            return True
        if isinstance(fault, DiskFault):
            self._disk_fault(self.nodes[fault.node], fault.what)
            return True
        return False

    def _disk_fault(self, n: _Node, what: str) -> None:
        disk, rng = n.disk, self.sim.rng_disk

        def choose(k: int) -> int:
            return rng.randint(0, k)

        if what.startswith(("eio", "enospc")):
            code = errno.EIO if what.startswith("eio") else errno.ENOSPC
            if what.endswith("write"):
                disk.fail_next_write(code)
            else:
                disk.fail_next_sync(code)
        elif what == "bit-flip":
            disk.corrupt_bit(choose)
        elif what == "zero-sector":
            disk.zero_sector(choose)
        else:
            assert what == "lost", what
            if n.core is not None:
                self._power_off(n)
            disk.wipe()
            n.wiped = True
            if not self.wiped_rebootstraps:
                # From now on it is a node joining the cluster (`node run --join`): it never
                # bootstraps the founding configuration again, and it has a fresh incarnation,
                # so it neither votes nor campaigns until the log records it (it is replaced).
                fresh = self.sim.rng_disk.getrandbits(62) + 1
                raft = attrs.evolve(
                    n.config.raft, peers=(), learners=(), members=(), incarnation=fresh
                )
                n.config = attrs.evolve(n.config, raft=raft)

    def _ask_membership(self, op: str, node: int) -> None:
        """Send one membership step to the leader (if any), as an administrator's request
        over the network; its answer comes back to `ADMIN` (`_to_admin`)."""
        sim = self.sim
        leader = self.leader()
        membership = sim.counters.membership
        if not leader:
            membership["no_leader"] += 1
            return
        membership["asked"] += 1
        self._admin_call += 1
        # An addition records the node's incarnation (a fresh one after its disk was lost).
        incarnation = self.nodes[node].config.raft.incarnation if node in self.nodes else 0
        request = ChangeMembershipRequest(_MEMBERSHIP_OPS[op], node, incarnation=incarnation)
        data, frame = self.wire.request(ADMIN, leader, self._admin_call, request)
        sim.send(ADMIN, leader, (data, frame), what="ChangeMembership", term=self._admin_call,
                 size=len(data), duplicable=False)  # fmt: skip

    def _to_admin(self, frame: RpcResponse) -> None:
        reply = frame.body
        outcome = (
            "changed" if isinstance(reply, MembershipChanged)
            else "not_leader" if isinstance(reply, NotLeader) else "refused"
        )  # fmt: skip
        self.sim.counters.membership[outcome] += 1
        self._admin_asked_ms = None

    def _full_membership(self) -> bool:
        """After healing: make every node a voter again, one step at a time (a node the
        membership nemesis removed is added as a learner, then promoted; a node that lost
        its data directory is first removed, then added again under its new incarnation).
        True once the leader's configuration holds every node as a voter."""
        leader = self.leader()
        if not leader:
            return False
        conf = self.nodes[leader].replica.core.conf
        # A member the log knows under another incarnation lost its data directory: it is
        # replaced first (removed, then added again below), as `member replace` does.
        stale = [
            n
            for n, node in self.nodes.items()
            if is_member(conf, n) and not node.lost
            and not identity_current(conf, n, node.config.raft.incarnation)
        ]  # fmt: skip
        missing = [n for n in self.nodes if n not in conf.voters and not self.nodes[n].lost]
        if not missing and not stale:
            return True
        now = self.sim.now
        if self._admin_asked_ms is None or now >= self._admin_asked_ms + ADMIN_RETRY_MS:
            if stale:
                self._ask_membership("remove", stale[0])
            else:
                node = missing[0]
                op = "promote" if node in conf.learners else "add-learner"
                self._ask_membership(op, node)
            self._admin_asked_ms = now
        return False

    # -- healing and the end ----------------------------------------------------------------

    def heal(self) -> None:
        sim = self.sim
        for n in self.nodes.values():
            n.disk.directory.disarm()
            n.crash_in_persist = False
            if n.core is None:
                self.start(n.id)
        self._probe = self._add_client(PROBE, -1)
        self._probe_handle = self._probe.write(Put(b"probe", b"heal"), sim.now)
        self.step_clients()  # its first attempt goes now

    def healed(self) -> tuple[str, str] | None:
        marks = self.sim.heal_marks
        if "leader_ms" not in marks:
            return "liveness", "no leader was elected"
        full = self._full_membership()
        if "probe_ms" not in marks:
            return "liveness", "no write committed"
        if not full:
            return "convergence", "the membership was not restored"
        if not self._converged():
            return "convergence", "replicas did not converge"
        if self.groups is not None:
            return self.groups.settled()
        return None

    def _converged(self) -> bool:
        """Every node that can run applied everything its log holds, all at the same index,
        with equal state machine snapshots (checked once the indexes agree)."""
        up = [n for n in self.nodes.values() if not n.lost]
        if any(n.core is None for n in up):
            return False
        replicas = {n.id: n.replica for n in up}
        indexes = {
            (r.applied_index, r.core.commit_index, r.core.status().last_index)
            for r in replicas.values()
        }
        if len(indexes) != 1:
            return False
        applied, commit, last = indexes.pop()
        if not applied == commit == last:
            return False
        key = (applied, tuple(n.incarnation for n in up))
        if self._compared_at == key:
            return True  # compared at this index already (encoding every state costs)
        snapshots = {r.state.snapshot() for r in replicas.values()}
        if len(snapshots) != 1:
            raise self.sim.fail(
                "convergence", f"state machines differ at applied index {applied}", replicas
            )
        self._compared_at = key
        return True

    def after_step(self) -> None:
        """The invariants, for the nodes that took a step (nothing changed at the others)."""
        stepped, self._stepped = self._stepped, set()
        if not stepped:
            return
        nodes = self.nodes
        running = {
            i: core.replica
            for i in (sorted(stepped) if len(stepped) > 1 else stepped)
            if (core := nodes[i].core) is not None
        }
        if running:
            self.invariants.on_step(running)
            quorum = self.durable_quorum
            for node, replica in running.items():
                raft = replica.core
                role = raft.role
                if role == Role.LEADER or quorum.tracks(node):
                    voters = raft.conf.voters
                    if quorum.moved(node, role, raft.term, raft.commit_index, voters):
                        quorum.check(node, nodes[node].disk.oracle.shadow.synced)

    def check_final(self) -> None:
        self.invariants.check_final(self.replicas())
        if self.groups is not None:
            self.groups.check_final()

    def finish(self, raised: SafetyViolation | None) -> dict[str, Any] | None:
        c = self.sim.counters
        inv = self.invariants
        c.elections = len(inv.leaders)
        c.leaders = len(set(inv.leaders.values()))
        committed = inv.committed
        c.committed_entries = len(committed)
        c.proposals_committed = sum(
            1 for e in committed.values() if e.kind == EntryKind.NORMAL and e.data
        )
        c.membership_changes = sum(
            1
            for e in committed.values()
            if e.kind == EntryKind.CONF_CHANGE
            and decode(e.data, ConfChange).op != ConfChangeOp.BOOTSTRAP
        )
        c.acknowledged_writes = len(inv.acknowledged)
        c.session_executions = self.exactly_once.executions
        c.part_invariant_checks = self.part_invariants.checks
        c.leader_commits_checked = self.durable_quorum.commits_checked
        c.reads_checked = self.read_freshness.reads_checked + self.read_freshness.releases_checked
        c.wire = dict(self.wire.counts)
        if self.groups is not None:
            c.groups = self.groups.counters()
        for n in self.nodes.values():
            for what, count in attrs.asdict(n.disk.injected).items():
                c.disk[what] = c.disk.get(what, 0) + count
        return None if raised is None else raised.to_json()
