"""The cluster service on one simulated node: the shell around the node's groups cores.

What a node runs for the cluster service, minus trio and processes, wired the way the
node wires them (the cores are the real ones):
- the `ResourceController` is told what the node's own applied state says it owns
  (`Owned`, read from its `groups` part after every step that applied something), what
  its resources did (`Observation`s from the simulated supervisor), its lease and the
  time; its actions go to the supervisor, its lease to the watchdog, its reports to the
  cluster through the node's own client (a `ClientCore`, homed at the node);
- the `LeaseKeeper` sends a `NodeHeartbeat` to every peer each interval; a leader that
  has heard from a quorum answers with a `NodeHeartbeatAck`, which renews the lease;
- the `NodeManager` runs inside the replica as a leader service (proposing `NodeDown`,
  `NodeUp` and `GroupsTick`); the agent feeds it the heartbeats the node receives while
  it leads;
- `GlobalUpdates` delivers the part's events to the node's handlers from a cursor kept
  across restarts (the simulated node's cursor file); the handler here records what it
  was given, for the event-stream check.

An agent lives as long as its node's process: a crash drops it (the processes it started
live on until the watchdog), a start builds a new one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftcluster.groups.actions import Observation, Output, Owned
from raftcluster.groups.controller import ResourceController
from raftcluster.groups.heartbeat import NodeHeartbeat, NodeHeartbeatAck
from raftcluster.groups.lease import LeaseKeeper
from raftcluster.groups.manager import NodeManager
from raftcluster.groups.timing import GroupTiming
from raftcluster.groups.updates import EventsCompacted, GlobalUpdates, MemoryCursor, Update
from raftcluster.node.replica import Replica
from statemachine.errors import Code
from statemachine.groups.messages import (
    EventPage,
    GetEvents,
    GroupEvent,
    GroupList,
    GroupState,
    ListGroups,
    ListNodes,
    NodeInfo,
    NodeList,
)
from statemachine.results import Failure

if TYPE_CHECKING:
    from chaos.sim.groups.host import GroupsHost

_HELD = (GroupState.STARTING, GroupState.ONLINE, GroupState.STOPPING)
# Events read from the local state per step at most (the part answers up to 1,000).
EVENTS_PER_READ = 1_000


class Agent:
    def __init__(
        self,
        host: GroupsHost,
        node: int,
        incarnation: int,
        timing: GroupTiming,
        now_local: int,
        cursor: MemoryCursor,
    ) -> None:
        self.host = host
        self.node = node
        self.incarnation = incarnation
        self.timing = timing
        self.controller = ResourceController(node, timing, now_local)
        self.lease = LeaseKeeper(node, incarnation, timing, now_local)
        self.replica: Replica | None = None  # (once its node has built it)
        # One of the replica's leader services: it reads the node's applied state.
        self.manager = NodeManager(node, timing, self.members, self._term, now_local)
        self.updates = GlobalUpdates(cursor)  # (the simulated node's cursor file)
        self.updates.on_update(self._handled)
        self.observations: list[Observation] = []
        self.heartbeats: list[NodeHeartbeat] = []
        self.acks: list[NodeHeartbeatAck] = []
        self._applied = -1
        self._owned: tuple[Owned, ...] | None = None

    def _term(self) -> int:
        return self.replica.core.term if self.replica is not None else 0

    # -- a step of the node ------------------------------------------------------------

    def step(self, local: int) -> None:
        """After the node's cycles at local time `local`: what changed reaches the cores."""
        replica = self.replica
        assert replica is not None
        host = self.host
        outs: list[Output] = []
        if replica.applied_index != self._applied:
            self._applied = replica.applied_index
            owned = self._read_owned(replica)
            if owned != self._owned:
                self._owned = owned
                outs.append(self.controller.owned(owned, local))
            self._read_events(replica)
        applied = replica.applied_index
        renewed = self.lease.applied(applied, local)
        if self.acks:
            acks, self.acks = self.acks, []
            for ack in acks:
                renewed = self.lease.acked(ack, local, applied) or renewed
        if renewed is not None:
            outs.append(self.controller.lease(renewed, local))
        if self.observations:
            observations, self.observations = self.observations, []
            for obs in observations:
                outs.append(self.controller.observe(obs, local))
        if self.heartbeats:
            heartbeats, self.heartbeats = self.heartbeats, []
            if replica.leads_with_quorum():
                for hb in heartbeats:
                    answer = self.manager.heard(hb, local, replica.applied_index)
                    if answer is not None:
                        host.send_ack(self.node, hb.node, answer)
        if self.controller.next_wake_ms() <= local:
            outs.append(self.controller.tick(local))
        beat = self.lease.tick(local)
        if beat is not None:
            host.send_heartbeat(self.node, beat)
        for out in outs:
            host.carry_out(self, out)

    def next_wake_ms(self) -> int:
        return min(self.controller.next_wake_ms(), self.lease.next_wake_ms())

    # -- what the node's own state says ----------------------------------------------------

    def _read_owned(self, replica: Replica) -> tuple[Owned, ...]:
        listing = replica.state.read(ListGroups())
        assert isinstance(listing, GroupList), listing
        return tuple(
            Owned(g.spec.name, g.epoch, g.state, g.spec.resources)
            for g in listing.groups
            if g.owner == self.node and g.state in _HELD
        )

    def members(self) -> dict[int, NodeInfo]:
        replica = self.replica
        if replica is None:
            return {}
        listing = replica.state.read(ListNodes())
        assert isinstance(listing, NodeList), listing
        return {info.node: info for info in listing.nodes}

    def _read_events(self, replica: Replica) -> None:
        while True:
            page = replica.state.read(GetEvents(self.updates.next_revision, EVENTS_PER_READ))
            if isinstance(page, Failure):
                if page.code == Code.FUTURE_REVISION:
                    return  # restarted: its state has yet to re-apply what it handled
                assert page.code == Code.COMPACTED, page
                self.updates.compacted(int(page.detail or 0))
                continue
            assert isinstance(page, EventPage), page
            if not page.events:
                return
            self.updates.deliver(page.events)
            if len(page.events) < EVENTS_PER_READ:
                return

    def _handled(self, update: Update) -> None:
        if isinstance(update, EventsCompacted):
            self.host.streams.compacted(self.node, update.last_missing + 1)
        else:
            assert isinstance(update, GroupEvent), update
            self.host.streams.seen(self.node, update)
