"""The deterministic simulator: real node and client cores, one thread, a virtual clock.

`Simulator(config, nemesis, workload).run()` builds `config.nodes` nodes, each a
`Replica` over a `SimDisk` with its own clock, and the workload's clients (each a
`ClientCore`), all talking over a simulated `Network`. Time is virtual: the loop jumps to
the next instant at which anything is due (a delivery, a node or client timer, a fault,
a workload action), does everything due then in a fixed order, runs each touched node's
Ready cycles (prepare, persist, complete, in a row), and checks the invariants.

Phases: faults for `duration_ms`; then everything is healed (network, paused and
crashed nodes, disks) and the workload stops starting operations; then, within
`heal_timeout_ms`, a leader must be elected, a probe write must commit, and every node
must reach the same applied index with identical state machine snapshots.

Every random choice comes from generators derived from `config.seed`, so a seed replays
the run exactly; the trace hash proves it.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Sequence
from typing import Any, cast

import attrs

from chaos.sim.clock import NodeClock
from chaos.sim.config import SimConfig
from chaos.sim.disk import PowerCut, SimDisk
from chaos.sim.exactly_once import ExactlyOnce, ObservedState
from chaos.sim.faults import (
    ChangeMembership,
    ClockDrift,
    ClockJump,
    Crash,
    Fault,
    Pause,
    Restart,
)
from chaos.sim.invariants import Invariants, SafetyViolation
from chaos.sim.nemesis import ClusterView, Nemesis
from chaos.sim.network import Envelope, Network
from chaos.sim.result import Counters, SimResult
from chaos.sim.trace import Trace
from chaos.sim.workload import Workload
from raftcluster.client.core import ClientConfig, ClientCore, Completion
from raftcluster.node.config import ReplicaConfig
from raftcluster.node.protocol import ChangeMembership as ChangeMembershipRequest
from raftcluster.node.protocol import (
    ClientRequest,
    MembershipChanged,
    MembershipOp,
    NotLeader,
    Submit,
    Written,
)
from raftcluster.node.replica import Replica, Reply
from raftcluster.raft.config import RaftConfig
from raftcluster.raft.messages import RaftMessage
from raftcluster.raft.ready import Role
from raftcluster.raft.types import ConfChange, ConfChangeOp, EntryKind
from statemachine.codec import decode
from statemachine.kv import Put

CLIENT_BASE = 1000  # client ids are CLIENT_BASE + index; the probe is CLIENT_BASE - 1
ADMIN = CLIENT_BASE - 2  # sends membership changes (the nemesis's, and healing's)
# After healing, a membership step is asked for again if not answered within this long.
ADMIN_RETRY_MS = 500
_MEMBERSHIP_OPS = {
    "remove": MembershipOp.REMOVE,
    "add-learner": MembershipOp.ADD_LEARNER,
    "promote": MembershipOp.PROMOTE,
}
# Requests remembered per client until answered (to check what an acknowledgement is for);
# beyond it the oldest, long lost, are forgotten.
MAX_TRACKED_REQUESTS = 10_000


class _Node:
    __slots__ = (
        "id", "config", "disk", "clock", "replica", "incarnation", "paused_until", "backlog",
        "wake_ms", "role",
    )  # fmt: skip

    def __init__(
        self, node_id: int, config: ReplicaConfig, clock: NodeClock, disk: SimDisk
    ) -> None:
        self.id = node_id
        self.config = config
        self.disk = disk
        self.clock = clock
        self.replica: Replica | None = None
        self.incarnation = 0
        self.paused_until: int | None = None
        self.backlog: list[Envelope] = []
        self.wake_ms = 0
        self.role: tuple[Role, int] | None = None  # (role, term) last traced; None: down


class _Client:
    __slots__ = ("id", "index", "core", "wake_ms", "requests")

    def __init__(self, client_id: int, index: int, core: ClientCore) -> None:
        self.id = client_id
        self.index = index  # in the workload's list; -1 for the probe
        self.core = core
        self.wake_ms: int | None = None
        self.requests: dict[int, ClientRequest] = {}  # request id -> request, until answered


class Simulator:
    """`replica_class` and `disk_class` are the engine under test: the real `Replica` and
    `SimDisk` unless a planted bug replaces them (`chaos.sim.planted`)."""

    def __init__(
        self,
        config: SimConfig,
        nemesis: Nemesis,
        workload: Workload,
        *,
        replica_class: type[Replica] = Replica,
        disk_class: type[SimDisk] = SimDisk,
    ) -> None:
        self.config = config
        self.nemesis = nemesis
        self.workload = workload
        self.replica_class = replica_class
        seeds = random.Random(config.seed)
        # One generator per concern, so that adding draws to one leaves the others alone.
        self._rng_net = random.Random(seeds.getrandbits(64))
        self._rng_nodes = random.Random(seeds.getrandbits(64))
        self._rng_disk = random.Random(seeds.getrandbits(64))
        self._rng_clients = random.Random(seeds.getrandbits(64))
        rng_nemesis = random.Random(seeds.getrandbits(64))
        rng_workload = random.Random(seeds.getrandbits(64))
        self.now = 0
        self.step = 0
        self.trace = Trace(keep=config.keep_trace)
        self.invariants = Invariants()
        self.exactly_once = ExactlyOnce(self.invariants.fail)
        self.counters = Counters()
        self.network = Network(self._rng_net, config.base_network)
        ids = tuple(range(1, config.nodes + 1))
        self.nodes = {
            i: _Node(i, self._replica_config(i, ids), self._clock(), disk_class()) for i in ids
        }
        self.clients: dict[int, _Client] = {}
        for index in range(workload.clients):
            self._add_client(CLIENT_BASE + index, index)
        workload.setup(rng_workload, [c.core for c in self.clients.values()])
        nemesis.setup(rng_nemesis, ids, config.base_network)
        self.healed_at: int | None = None
        self.probe: _Client | None = None
        self._probe_handle = 0
        self.leader_after_heal_ms: int | None = None
        self.probe_committed_ms: int | None = None
        self.converged_ms: int | None = None
        self._rate_second = 0  # the virtual second messages are being counted in
        self._rate_count = 0
        self._admin_request_id = 0
        self._admin_asked_ms: int | None = None  # healing's membership step in flight

    # -- construction -----------------------------------------------------------------

    def _replica_config(self, node_id: int, peers: tuple[int, ...]) -> ReplicaConfig:
        c = self.config
        raft = RaftConfig(
            node_id=node_id,
            peers=cast(Any, peers),  # (mypy types the tuple converter's argument oddly)
            election_timeout_ms=c.election_timeout_ms,
            heartbeat_interval_ms=c.heartbeat_interval_ms,
            pre_vote=c.pre_vote,
            check_quorum=c.check_quorum,
        )
        return ReplicaConfig(
            raft=raft,
            snapshot_every_entries=c.snapshot_every_entries,
            session_expiry_interval_ms=c.session_expiry_interval_ms,
        )

    def _clock(self) -> NodeClock:
        c, rng = self.config, self._rng_nodes
        return NodeClock(
            rng.randint(0, c.max_clock_skew_ms), rng.randint(-c.max_drift_ppm, c.max_drift_ppm)
        )

    def _add_client(self, client_id: int, index: int) -> _Client:
        c = self.config
        config = ClientConfig(
            nodes=tuple(self.nodes),
            session_ttl_ms=c.session_ttl_ms,
            attempt_timeout_ms=c.client_attempt_timeout_ms,
            op_timeout_ms=c.client_op_timeout_ms,
        )
        core = ClientCore(config, random.Random(self._rng_clients.getrandbits(64)), self.now)
        client = _Client(client_id, index, core)
        self.clients[client_id] = client
        return client

    # -- running ----------------------------------------------------------------------

    def run(self) -> SimResult:
        violation: SafetyViolation | None = None
        error: dict[str, Any] | None = None
        try:
            for node in self.nodes.values():
                self._start(node)
            self._run_until(self.config.duration_ms)
            self._heal()
            self._converge()
            self.invariants.check_final(self._running())
        except SafetyViolation as e:
            violation = e
        except AssertionError as e:  # an assertion of the code under test: an invariant too
            violation = SafetyViolation(
                "assertion", f"{type(e).__name__}: {e}", self.invariants.where, ()
            )
        except Exception as e:  # noqa: BLE001 - reported with the seed: the run is the boundary
            error = {
                "type": type(e).__name__,
                "message": str(e),
                "step": self.step,
                "time_ms": self.now,
                "traceback": traceback.format_exc(limit=12),
            }
        outcome = "error" if error else violation.invariant if violation else "ok"
        self.trace.add(self.now, "end", outcome)
        return self._result(violation, error)

    def _run_until(self, end_ms: int) -> None:
        while self._advance(end_ms):
            pass

    def _advance(self, limit_ms: int) -> bool:
        """Do everything due at the next instant, if it is at or before `limit_ms`."""
        t = self._next_time()
        if t is None or t > limit_ms:
            self.now = max(self.now, limit_ms)
            return False
        self.now = t
        self.step += 1
        self.invariants.at(self.step, t)
        while (envelope := self.network.pop_due(t)) is not None:
            self._deliver(envelope)
        for node in self.nodes.values():
            if node.paused_until is not None and node.paused_until <= t:
                self._resume(node)
            elif node.replica is not None and node.paused_until is None and node.wake_ms <= t:
                node.replica.tick(node.clock.local(t))
                self._drain(node)
        for client in list(self.clients.values()):
            if client.wake_ms is not None and client.wake_ms <= t:
                client.core.tick(t)
                self._flush_client(client)
        nemesis_due = self.nemesis.next_ms()
        if self.healed_at is None and nemesis_due is not None and nemesis_due <= t:
            for fault in self.nemesis.fire(t, self._view()):
                self._inject(fault)
        workload_due = self.workload.next_ms()
        if workload_due is not None and workload_due <= t:
            self.workload.act(t)
            for client in self.clients.values():
                if client.index >= 0:
                    self._flush_client(client)
        self.invariants.on_step(self._running())
        return True

    def _next_time(self) -> int | None:
        times = []
        network = self.network.next_ms()
        if network is not None:
            times.append(network)
        for node in self.nodes.values():
            if node.paused_until is not None:
                times.append(node.paused_until)
            elif node.replica is not None:
                times.append(node.wake_ms)
        times.extend(c.wake_ms for c in self.clients.values() if c.wake_ms is not None)
        if self.healed_at is None:
            nemesis = self.nemesis.next_ms()
            if nemesis is not None:
                times.append(nemesis)
        workload = self.workload.next_ms()
        if workload is not None:
            times.append(workload)
        return max(min(times), self.now) if times else None

    # -- nodes ------------------------------------------------------------------------

    def _start(self, node: _Node) -> None:
        node.incarnation += 1
        rng = random.Random(self._rng_nodes.getrandbits(64))
        state = ObservedState(self.exactly_once, node.id)
        node.replica = self.replica_class(
            node.config, node.disk, rng, node.clock.local(self.now), state=state
        )
        node.paused_until = None
        node.backlog.clear()
        self.invariants.on_start(node.id, node.replica)
        self.trace.add(self.now, "start", node.id, node.incarnation)
        self._drain(node)

    def _stop(self, node: _Node, keep_writes: int, torn: bool) -> None:
        node.disk.crash(keep_writes, torn=torn)
        node.replica = None
        node.paused_until = None
        node.backlog.clear()
        node.disk.armed = False
        node.role = None
        self.counters.crashes += 1
        self.invariants.on_stop(node.id)
        self.trace.add(self.now, "crash", node.id, keep_writes, torn)

    def _drain(self, node: _Node) -> None:
        """Run the node's Ready cycles until it has nothing left; send what comes out."""
        replica = node.replica
        assert replica is not None
        self._send_replies(node.id, replica.take_replies())
        while replica.has_ready():
            work = replica.prepare()
            try:
                replica.persist(work)
            except PowerCut:
                self._power_cut(node)
                return
            out = replica.complete(work)
            self.invariants.on_cycle(node.id, work, out)
            self.counters.on_cycle(work)
            rd, hs = work.ready, work.ready.hard_state
            self.trace.add(
                self.now, "ready", node.id,
                (hs.term, hs.vote, hs.commit) if hs is not None else None,
                rd.entries[-1].index if rd.entries else 0,
                rd.committed_entries[-1].index if rd.committed_entries else 0,
                rd.snapshot.meta.index if rd.snapshot is not None else 0,
                work.compacted.meta.index if work.compacted is not None else 0,
                len(rd.messages), len(out.replies),
            )  # fmt: skip
            for message in out.messages:
                self._send(node.id, message.dst, message, duplicable=True)
            self._send_replies(node.id, out.replies)
        deadline = replica.next_deadline_ms()
        node.wake_ms = max(self.now + 1, node.clock.virtual(deadline, self.now))
        self._trace_role(node, replica)

    def _trace_role(self, node: _Node, replica: Replica) -> None:
        """A `role` record whenever a node's role or term changes (for the report's
        timeline: leaders and terms over time)."""
        role = (replica.core.role, replica.core.term)
        if role != node.role:
            node.role = role
            self.trace.add(self.now, "role", node.id, role[0].name.lower(), role[1])

    def _power_cut(self, node: _Node) -> None:
        """The node died inside its sync: a prefix of the batch's writes survives."""
        pending = node.disk.pending_writes
        keep = self._rng_disk.randint(0, pending)
        torn = keep < pending and self._rng_disk.random() < 0.5
        disk = self.counters.disk
        disk["power_cuts"] += 1
        disk["unsynced_writes_lost"] += pending - keep
        disk["torn_writes"] += torn
        self._stop(node, keep, torn=torn)

    def _send_replies(self, node_id: int, replies: Sequence[Reply]) -> None:
        for reply in replies:
            assert isinstance(reply.client, int)
            self._send(node_id, reply.client, (reply.request_id, reply.message), duplicable=False)

    def _resume(self, node: _Node) -> None:
        node.paused_until = None
        self.trace.add(self.now, "resume", node.id)
        backlog, node.backlog = node.backlog, []
        self.counters.paused_deliveries += len(backlog)
        for envelope in backlog:
            self._deliver(envelope)
        if node.replica is not None:
            node.replica.tick(node.clock.local(self.now))
            self._drain(node)

    # -- the network ------------------------------------------------------------------

    def _send(self, src: int, dst: int, payload: Any, duplicable: bool) -> None:
        second = self.now // 1000
        if second != self._rate_second:
            self._rate_second, self._rate_count = second, 0
        self._rate_count += 1
        if self._rate_count > self.config.message_budget_per_s:
            raise self.invariants.fail(
                "message storm",
                f"more than {self.config.message_budget_per_s} messages sent within virtual "
                f"second {second}",
                (src,),
            )
        envelope = Envelope(src, dst, payload, self.now)
        times = self.network.send(envelope, duplicable)
        if isinstance(payload, RaftMessage):
            self.trace.add(self.now, "send", src, dst, payload.TAG, payload.term, times)
        else:
            self.trace.add(self.now, "send", src, dst, payload[1].TAG, payload[0], times)

    def _deliver(self, envelope: Envelope) -> None:
        dst = envelope.dst
        if dst >= ADMIN:
            self._to_client(envelope)
            return
        node = self.nodes[dst]
        if node.replica is None:
            self.network.stats.to_down_node += 1
            return
        if node.paused_until is not None:
            node.backlog.append(envelope)
            return
        self.network.stats.delivered += 1
        self.trace.add(self.now, "deliver", envelope.src, dst)
        payload = envelope.payload
        if isinstance(payload, RaftMessage):
            node.replica.receive(payload)
        else:
            request_id, request = payload
            node.replica.client_request(
                envelope.src, request_id, request, node.clock.local(self.now)
            )
        self._drain(node)

    def _to_client(self, envelope: Envelope) -> None:
        if envelope.dst == ADMIN:
            self._to_admin(envelope)
            return
        client = self.clients[envelope.dst]
        request_id, reply = envelope.payload
        self.network.stats.delivered += 1
        self.trace.add(self.now, "deliver", envelope.src, envelope.dst)
        request = client.requests.pop(request_id, None)
        if isinstance(reply, Written) and isinstance(request, Submit):
            self.invariants.on_acknowledged(envelope.src, client.id, reply.index, request.command)
        client.core.receive(envelope.src, request_id, reply, self.now)
        self._flush_client(client)

    def _flush_client(self, client: _Client) -> None:
        core = client.core
        for send in core.take_sends():
            client.requests[send.request_id] = send.request
            if len(client.requests) > MAX_TRACKED_REQUESTS:  # unanswered ones, long lost
                del client.requests[next(iter(client.requests))]
            self._send(client.id, send.node, (send.request_id, send.request), duplicable=False)
        for done in core.take_completions():
            self._completed(client, done)
        client.wake_ms = core.next_deadline_ms()

    def _completed(self, client: _Client, done: Completion) -> None:
        outcome = "ok" if done.error is None else type(done.error).__name__
        self.trace.add(self.now, "done", client.id, done.handle, outcome, done.index)
        self.counters.on_completion(done)
        if client.index >= 0:
            self.workload.completed(client.index, done, self.now)
        elif done.handle == self._probe_handle:
            if done.ok:
                self.probe_committed_ms = self.now
            else:  # not yet: try again until the bound
                self._probe_handle = client.core.write(Put(b"probe", b"%d" % self.now), self.now)

    # -- faults -----------------------------------------------------------------------

    def _inject(self, fault: Fault) -> None:
        self.counters.faults[fault.kind] = self.counters.faults.get(fault.kind, 0) + 1
        self.trace.add(self.now, "fault", fault.kind, repr(fault), _fields(fault))
        if self.network.apply(fault, tuple(self.nodes)):
            return
        if isinstance(fault, ChangeMembership):
            self._ask_membership(fault.op, fault.node)
        elif isinstance(fault, Crash):
            self._crash(self.nodes[fault.node], fault.during_sync)
        elif isinstance(fault, Restart):
            node = self.nodes[fault.node]
            if node.replica is not None:
                self._stop(node, 0, torn=False)
            self._start(node)
        elif isinstance(fault, Pause):
            node = self.nodes[fault.node]
            if node.replica is not None and node.paused_until is None:
                node.paused_until = self.now + fault.duration_ms
        elif isinstance(fault, ClockJump | ClockDrift):
            self._move_clock(fault)
        else:
            raise TypeError(f"unknown fault {fault!r}")

    def _move_clock(self, fault: ClockJump | ClockDrift) -> None:
        """Jump or re-rate a node's clock, and count how far its reading moved."""
        clock, clocks = self.nodes[fault.node].clock, self.counters.clocks
        before = clock.local(self.now)
        if isinstance(fault, ClockJump):
            clock.jump(self.now, fault.forward_ms)
            clocks["jumped_ms"] += clock.local(self.now) - before
        else:
            clocks["drift_changes"] += fault.drift_ppm != clock.drift_ppm
            clock.set_drift(self.now, fault.drift_ppm)
            clocks["max_drift_ppm"] = max(clocks["max_drift_ppm"], abs(fault.drift_ppm))

    # -- membership -------------------------------------------------------------------

    def _ask_membership(self, op: str, node_id: int) -> None:
        """Send one membership step to the leader (if any), as an administrator's request
        over the network; its answer comes back to `ADMIN` (`_to_admin`)."""
        leader = self._leader()
        membership = self.counters.membership
        if not leader:
            membership["no_leader"] += 1
            return
        membership["asked"] += 1
        self._admin_request_id += 1
        request = ChangeMembershipRequest(_MEMBERSHIP_OPS[op], node_id)
        self._send(ADMIN, leader, (self._admin_request_id, request), duplicable=False)

    def _to_admin(self, envelope: Envelope) -> None:
        _, reply = envelope.payload
        self.network.stats.delivered += 1
        self.trace.add(self.now, "deliver", envelope.src, envelope.dst)
        outcome = (
            "changed" if isinstance(reply, MembershipChanged)
            else "not_leader" if isinstance(reply, NotLeader) else "refused"
        )  # fmt: skip
        self.counters.membership[outcome] += 1
        self._admin_asked_ms = None

    def _full_membership(self) -> bool:
        """After healing: make every node a voter again, one step at a time (a node the
        membership nemesis removed is added as a learner, then promoted). True once the
        leader's configuration holds every node as a voter."""
        leader = self._leader()
        if not leader:
            return False
        replica = self.nodes[leader].replica
        assert replica is not None
        conf = replica.core.conf
        missing = [n for n in self.nodes if n not in conf.voters]
        if not missing:
            return True
        due = self._admin_asked_ms is None or self.now >= self._admin_asked_ms + ADMIN_RETRY_MS
        if due:
            node = missing[0]
            self._ask_membership("promote" if node in conf.learners else "add-learner", node)
            self._admin_asked_ms = self.now
        return False

    def _crash(self, node: _Node, during_sync: bool) -> None:
        if node.replica is None:
            return
        if during_sync:
            node.disk.armed = True  # it dies inside its next sync (see _drain)
        else:
            self._stop(node, node.disk.pending_writes, torn=False)

    def _view(self) -> ClusterView:
        running = tuple(n.id for n in self.nodes.values() if n.replica is not None)
        paused = tuple(n.id for n in self.nodes.values() if n.paused_until is not None)
        leader = self._leader()
        voters: tuple[int, ...] = tuple(self.nodes)
        learners: tuple[int, ...] = ()
        if leader:
            replica = self.nodes[leader].replica
            assert replica is not None
            voters, learners = replica.core.conf.voters, replica.core.conf.learners
        return ClusterView(tuple(self.nodes), running, paused, leader, voters, learners)

    def _leader(self) -> int:
        best = (0, 0)
        for node in self.nodes.values():
            r = node.replica
            if r is not None and r.core.role == Role.LEADER and r.core.term > best[0]:
                best = (r.core.term, node.id)
        return best[1]

    def _running(self) -> dict[int, Replica]:
        return {n.id: n.replica for n in self.nodes.values() if n.replica is not None}

    # -- healing and convergence ------------------------------------------------------

    def _heal(self) -> None:
        self.healed_at = self.now
        self.trace.add(self.now, "heal")
        self.workload.stop(self.now)
        self.network.heal(self.config.base_network)
        for node in self.nodes.values():
            node.disk.armed = False
            if node.replica is None:
                self._start(node)
            elif node.paused_until is not None:
                self._resume(node)
        self.probe = self._add_client(CLIENT_BASE - 1, -1)
        self._probe_handle = self.probe.core.write(Put(b"probe", b"heal"), self.now)
        self._flush_client(self.probe)

    def _converge(self) -> None:
        assert self.healed_at is not None
        deadline = self.healed_at + self.config.heal_timeout_ms
        while True:
            if self.leader_after_heal_ms is None and self._leader():
                self.leader_after_heal_ms = self.now
            full = self._full_membership()
            if full and self.probe_committed_ms is not None and self._converged():
                return
            if not self._advance(deadline):
                break
        within = f"within {self.config.heal_timeout_ms} ms after the faults healed"
        if self.leader_after_heal_ms is None or self.probe_committed_ms is None:
            what = "no leader was elected" if self.leader_after_heal_ms is None else "no write"
            what += " committed" if self.leader_after_heal_ms is not None else ""
            raise self.invariants.fail("liveness", f"{what} {within}", self.nodes)
        what = "the membership was not restored" if not full else "replicas did not converge"
        raise self.invariants.fail("convergence", f"{what} {within}", self.nodes)

    def _converged(self) -> bool:
        """Every node applied everything its log holds, all at the same index, with equal
        state machine snapshots (checked once the indexes agree)."""
        replicas = self._running()
        indexes = {
            (r.applied_index, r.core.commit_index, r.core.status().last_index)
            for r in replicas.values()
        }
        if len(replicas) != len(self.nodes) or len(indexes) != 1:
            return False
        applied, commit, last = indexes.pop()
        if not applied == commit == last:
            return False
        snapshots = {r.state.snapshot() for r in replicas.values()}
        if len(snapshots) != 1:
            raise self.invariants.fail(
                "convergence", f"state machines differ at applied index {applied}", replicas
            )
        self.converged_ms = self.now
        return True

    # -- the result -------------------------------------------------------------------

    def _result(self, violation: SafetyViolation | None, error: dict[str, Any] | None) -> SimResult:
        c = self.counters
        c.elections = len(self.invariants.leaders)
        c.leaders = len(set(self.invariants.leaders.values()))
        committed = self.invariants.committed
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
        c.acknowledged_writes = len(self.invariants.acknowledged)
        c.session_executions = self.exactly_once.executions
        c.nemesis = dict(sorted(getattr(self.nemesis, "coverage", {}).items()))
        c.network = attrs.asdict(self.network.stats)
        healed = self.healed_at
        timings = {
            "healed_at_ms": healed,
            "leader_after_heal_ms": _since(healed, self.leader_after_heal_ms),
            "probe_committed_after_heal_ms": _since(healed, self.probe_committed_ms),
            "converged_after_heal_ms": _since(healed, self.converged_ms),
        }
        return SimResult(
            config=self.config,
            nemesis=self.nemesis.name,
            workload=self.workload.name,
            violation=violation.to_json() if violation is not None else None,
            error=error,
            trace_hash=self.trace.hexdigest(),
            trace_records=self.trace.count,
            steps=self.step,
            end_ms=self.now,
            counters=c,
            timings=timings,
            history=self.workload.history(),
            trace=tuple(self.trace.records),
        )


def _fields(fault: Fault) -> list[list[Any]]:
    """A fault's fields as [name, value] pairs, for readers of the trace (the report).
    A field that is itself an attrs value (Degrade's conditions) becomes a plain dict, so
    the trace stays encodable."""
    return [[f.name, _plain(getattr(fault, f.name))] for f in attrs.fields(type(fault))]


def _plain(value: Any) -> Any:
    return attrs.asdict(value) if attrs.has(type(value)) else value


def _since(start: int | None, at: int | None) -> int | None:
    return None if start is None or at is None else at - start
