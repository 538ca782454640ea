"""The cluster service inside our engine: every node's agent, the simulated resources, and
the checks of what ran where.

`RaftclusterEngine` hosts one `GroupsHost` when the workload asks for the cluster
service (`GroupsWorkload`). The engine calls it at the points where a real node would
involve its cluster service: a node starts (a new `Agent`, its supervisor kills the
previous incarnation's leftovers) or stops; a heartbeat arrives; a node took a step
(the agent's cores catch up); the resources' own timers (starts, stops, crashes, the
watchdogs) come due; the faults heal (the groups must settle); the run ends.

The checks (see `ledger.py` and `streams.py`): one owner at every instant, epochs that
only grow, stale reports never accepted, failback only as each policy says, every
node's event stream gap-free and identical, and after healing, every group that can run
online on an eligible node with its processes really running there.
"""

from __future__ import annotations

import heapq
import random
from typing import TYPE_CHECKING, Any

from chaos.sim.groups.ledger import Ledger
from chaos.sim.groups.processes import Processes
from chaos.sim.groups.streams import Streams
from raftcluster.groups.actions import Observation, Output
from raftcluster.groups.agent import NodeAgent
from raftcluster.groups.heartbeat import NodeHeartbeat, NodeHeartbeatAck
from raftcluster.groups.updates import EventsCompacted, MemoryCursor, Update
from raftcluster.transport.wire import Frame
from statemachine.groups.config import GroupsConfig
from statemachine.groups.messages import (
    Failback,
    GroupEvent,
    GroupInfo,
    GroupList,
    GroupReport,
    GroupState,
    ListGroups,
    ListNodes,
    NodeList,
    NodeState,
    ReportRefused,
)

if TYPE_CHECKING:
    from chaos.sim.groups.workload import GroupsPlan
    from chaos.sim.raftcluster_engine import RaftclusterEngine, _Client
    from raftcluster.client.core import Completion
    from raftcluster.node.replica import Replica

# The agents' clients (their reports) have ids just below the engine's own.
AGENT_CLIENT_BASE = 900
# The share of reports proposed once more, late (ms, drawn between): a held-back retry.
LATE_REPORT_SHARE = 0.2
LATE_REPORT_MS = (500, 8_000)


class GroupsHost:
    def __init__(
        self, engine: RaftclusterEngine, plan: GroupsPlan, election_timeout_ms: int
    ) -> None:
        self.engine = engine
        self.plan = plan
        sim = engine.sim
        self.sim = sim
        self.config = GroupsConfig(day_ms=plan.day_ms)
        self.timing = plan.timing(election_timeout_ms)
        self.streams = Streams(sim.fail, plan.day_ms)
        self.ledger = Ledger(sim.fail, self.streams.sizes, self.streams.measured)
        self.streams.parked = self.ledger.parked
        self.streams.online = self.ledger.claimed_online
        self.processes = Processes(
            sim, random.Random(sim.rng_disk.getrandbits(64)), self.ledger, self._observed,
            plan.flaws,
        )  # fmt: skip
        self.agents: dict[int, NodeAgent] = {}
        # Each node's durable cursor of the events its handlers were given (its file).
        self.cursors = {node: MemoryCursor() for node in sim.ids}
        self.clients: dict[int, _Client] = {}
        self._calls = 0
        self._rng = random.Random(sim.rng_disk.getrandbits(64))
        self._late: list[tuple[int, int, int, GroupReport]] = []  # (at, seq, node, report)
        self._seq = 0
        self.counts = {"reports": 0, "reports_failed": 0, "reports_refused": 0,
                       "late_reports": 0, "heartbeats": 0, "acks": 0}  # fmt: skip

    # -- the engine's calls ------------------------------------------------------------------

    def starting(self, node: int, incarnation: int, now_local: int) -> NodeAgent:
        """A node's process starts: its supervisor kills what the previous one left, and
        its agent is made before the replica (which takes the agent's node manager as one
        of its leader services). The agent serves once `started` (if the node starts). Its
        update handler records what it was given, for the event-stream check."""
        self.processes.reset(node, incarnation)
        agent = NodeAgent(node, incarnation, self.timing, now_local, self.cursors[node])
        agent.updates.on_update(lambda update: self._handled(node, update))
        return agent

    def started(self, agent: NodeAgent, replica: Replica) -> None:
        node = agent.node
        agent.attach(replica)
        self.agents[node] = agent
        self.clients[node] = self.engine.add_node_client(AGENT_CLIENT_BASE + node, node)

    def client_ids(self) -> set[int]:
        return {c.id for c in self.clients.values()}

    def stopped(self, node: int) -> None:
        """`node`'s process ended (a crash, a power cut, a failed disk): its agent goes,
        the processes it started live on until its watchdog."""
        self.agents.pop(node, None)
        client = self.clients.pop(node, None)
        if client is not None:
            self.engine.remove_client(client.id)
        self.ledger.owner_failed(node, self.sim.now)

    def receive(self, node: int, src: int, frame: Frame) -> bool:
        """A heartbeat or its answer reached `node` (False: not the cluster service's)."""
        body = getattr(frame, "body", None)
        agent = self.agents.get(node)
        if isinstance(body, NodeHeartbeat):
            if agent is not None:
                agent.heartbeat_in(body)
            return True
        if isinstance(body, NodeHeartbeatAck):
            if agent is not None:
                agent.ack_in(body)
            return True
        return False

    def step(self, node: int, local: int) -> None:
        """After the node's cycles at local time `local`: its agent steps, and what the
        step asks for is carried out (acks, the heartbeat, then the controller's outputs)."""
        agent = self.agents.get(node)
        if agent is None or agent.replica is None:
            return
        step = agent.step(local)
        for ack in step.acks:
            self.counts["acks"] += 1
            self._rpc(node, ack.node, ack, response=True)
        if step.heartbeat is not None:
            self.counts["heartbeats"] += 1
            for peer in self.sim.ids:
                if peer != node:
                    self._rpc(node, peer, step.heartbeat)
        for out in step.outputs:
            self.carry_out(agent, out)

    def _handled(self, node: int, update: Update) -> None:
        if isinstance(update, EventsCompacted):
            self.streams.compacted(node, update.last_missing + 1)
        else:
            assert isinstance(update, GroupEvent), update
            self.streams.seen(node, update)

    def deadline(self, node: int) -> int | None:
        agent = self.agents.get(node)
        return None if agent is None else agent.next_wake_ms()

    def next_ms(self) -> int | None:
        resources = self.processes.next_ms()
        if self._late and (resources is None or self._late[0][0] < resources):
            return self._late[0][0]
        return resources

    def run_due(self) -> None:
        self.processes.run_due()
        now = self.sim.now
        while self._late and self._late[0][0] <= now:
            _, _, node, report = heapq.heappop(self._late)
            client = self.clients.get(node)
            if client is not None:  # (gone with its node otherwise)
                self.counts["late_reports"] += 1
                client.write(report, now)

    def completed(self, client: _Client, done: Completion) -> None:
        self.counts["reports"] += 1
        self.counts["reports_failed"] += done.error is not None
        self.counts["reports_refused"] += isinstance(done.result, ReportRefused)

    # -- what agents ask ------------------------------------------------------------------

    def carry_out(self, agent: NodeAgent, out: Output) -> None:
        for action in out.actions:
            self.processes.act(agent.node, action)
        if out.lease is not None:
            self.processes.arm(agent.node, out.lease.until_ms)
        client = self.clients.get(agent.node)
        if client is not None:
            for report in out.reports:
                client.write(report, self.sim.now)
                self._maybe_late(agent.node, report)

    def _maybe_late(self, node: int, report: GroupReport) -> None:
        """Now and then a report is also proposed again much later, as a retry that the
        network held back would be: by then its grant has often moved on, and the state
        must refuse it (a stale epoch). Nothing else makes stale reports common enough
        for a campaign to show a state machine that accepts them."""
        if self._rng.random() >= LATE_REPORT_SHARE:
            return
        self._seq += 1
        at = self.sim.now + self._rng.randint(*LATE_REPORT_MS)
        heapq.heappush(self._late, (at, self._seq, node, report))

    def _rpc(self, src: int, dst: int, body: Any, *, response: bool = False) -> None:
        wire, sim = self.engine.wire, self.sim
        self._calls += 1
        make = wire.response if response else wire.request
        data, frame = make(src, dst, self._calls, body)
        sim.send(src, dst, (data, frame), what=type(body).__name__, term=0, size=len(data),
                 duplicable=True)  # fmt: skip

    def _observed(self, node: int, generation: int, observation: Observation) -> None:
        agent = self.agents.get(node)
        if agent is None or agent.incarnation != generation:
            return  # the node is down: its restarted supervisor starts from nothing
        agent.observed(observation)
        self.engine.touch(node)

    # -- the end ------------------------------------------------------------------------------

    def settled(self) -> tuple[str, str] | None:
        """None once every member is up and every group that can run is online on an
        eligible node, really running there; else what is still missing."""
        leader = self.engine.leader()
        if not leader:
            return "groups", "no leader"
        state = self.engine.nodes[leader].replica.state
        nodes = state.read(ListNodes())
        groups = state.read(ListGroups())
        assert isinstance(nodes, NodeList) and isinstance(groups, GroupList)
        up = {n.node for n in nodes.nodes if n.state == NodeState.UP}
        expected = self._expected(groups.groups, up)
        for info in nodes.nodes:
            if info.state != NodeState.UP and not self.engine.nodes[info.node].lost:
                return "groups", f"node {info.node} is {info.state.name}, not up"
        online = self.ledger.online()
        for g in groups.groups:
            name = g.spec.name
            if name not in expected:
                continue
            if g.state != GroupState.ONLINE:
                return "groups", f"{name} is {g.state.name}, not online ({g.decision.reason})"
            if online.get(name) != g.owner:
                return "groups", f"{name} is online on node {g.owner} but does not run there"
            preferred = self._failback_owner(g, nodes)
            if preferred and g.owner != preferred:
                return "groups", (
                    f"{name} fails back immediately, but runs on node {g.owner}, not on its "
                    f"preferred node {preferred}, which is up ({g.decision.reason})"
                )
        return None

    @staticmethod
    def _failback_owner(g: GroupInfo, nodes: NodeList) -> int:
        """Where a group that fails back at once must run once every node is up: its most
        preferred possible owner, unless it failed there since that node last changed
        state (placement then avoids it) or another policy weighs in (colocation,
        anti-affinity, stickiness, which the scores may let win). 0: no such claim."""
        spec = g.spec
        if spec.failback != Failback.IMMEDIATE or spec.colocate_with or spec.anti_affinity:
            return 0
        if spec.stickiness:
            return 0
        since = {n.node: n.since_ms for n in nodes.nodes if n.state == NodeState.UP}
        for node in spec.preferred_owners:
            if node not in since or (spec.possible_owners and node not in spec.possible_owners):
                continue
            if any(f.node == node and f.at_ms >= since[node] for f in g.failures):
                return 0  # avoided: the part's rule, not judged here
            return node
        return 0

    @staticmethod
    def _expected(groups: tuple[GroupInfo, ...], up: set[int]) -> set[str]:
        """The groups that must run once every node is up: wanted online, not left FAILED
        by their threshold, with an up node they may run on, and whose dependencies
        (start after, colocate with) must run too."""
        by_name = {g.spec.name: g for g in groups}
        expected = {
            name
            for name, g in by_name.items()
            if g.online
            and g.state != GroupState.FAILED
            and (set(g.spec.possible_owners) or up) & up
        }
        changed = True
        while changed:  # drop those whose dependencies will not run, until none is left
            changed = False
            for name in sorted(expected):
                spec = by_name[name].spec
                deps = [*spec.start_after, *([spec.colocate_with] if spec.colocate_with else [])]
                if any(d not in expected for d in deps):
                    expected.discard(name)
                    changed = True
        return expected

    def check_final(self) -> None:
        """After settling: nothing lives where it is not owned."""
        leader = self.engine.leader()
        state = self.engine.nodes[leader].replica.state
        groups = state.read(ListGroups())
        assert isinstance(groups, GroupList)
        owners = {g.spec.name: g.owner for g in groups.groups if g.state == GroupState.ONLINE}
        for g in groups.groups:
            name = g.spec.name
            if g.spec.possible_owners and g.owner and g.owner not in g.spec.possible_owners:
                raise self.sim.fail(
                    "groups",
                    f"{name} runs on node {g.owner}, not one of its possible owners "
                    f"{g.spec.possible_owners}",
                    (g.owner,),
                )
            for node in self.ledger.live_nodes(name):
                if owners.get(name) != node:
                    raise self.sim.fail(
                        "groups",
                        f"{name} still lives on node {node}, which does not own it",
                        (node,),
                    )

    def counters(self) -> dict[str, Any]:
        return {
            **self.counts,
            **self.processes.counts,
            "events_delivered": self.streams.delivered,
            "failbacks": self.streams.failbacks,
            "failover_ms": sorted(self.ledger.failover_ms),
            "recovered_in_place_ms": sorted(self.ledger.recovered_in_place_ms),
        }
