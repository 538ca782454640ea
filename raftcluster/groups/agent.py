"""`NodeAgent`: the cluster service on one node, as a sans-IO core over the node's cores.

One agent per node process, made before the node's `Replica` (whose leader services
include the agent's `NodeManager`) and attached to it once it is loaded. The shell (the
trio node, `raftcluster/groups/service.py`; the simulator, `chaos/sim/groups/host.py`)
feeds it what arrives and calls `step` after every cycle of the node and at
`next_wake_ms()`; it carries out what `step` returns. The agent reads the node's own
applied state; it never reads a clock, touches a file other than through its cursor,
or sends anything itself.

    heartbeat_in(hb)       a `NodeHeartbeat` from a peer
    ack_in(ack)            a `NodeHeartbeatAck` from a leader
    observed(obs)          what the node's resources did (the executor's answers)
    needs_step()           whether the applied state moved in a way `step` reads (the
                           shell steps after a cycle only then)
    step(now_ms) -> Step   what changed reaches the cores:
        - the applied state, when the groups part changed (`ClusterState.changed_at`;
          a kv write does not): the part's events to `GlobalUpdates` (the
          node's handlers, from a durable cursor) and, when the part's revision moved,
          the groups this node owns (`Owned`) to the `ResourceController`;
        - acks (and a held-back ack once the state caught up) renew the lease
          (`LeaseKeeper`), which the controller is told;
        - observations go to the controller;
        - heartbeats are answered by the node manager while this node leads with quorum
          contact (`Replica.leads_with_quorum`);
        - the controller's and the keeper's timers;
      and returns the heartbeat to send to every peer, the acks to send to peers, and
      the controller's outputs (actions for the executor, reports to propose, the
      watchdog's new lease end), in that order.

A heartbeat this node sends while it leads with quorum contact is also its own: it is
queued as received, and the ack to it as well (both are handled at the next step, as a
peer's would be after a network hop).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from raftcluster.groups.actions import Observation, Output, Owned
from raftcluster.groups.controller import ResourceController
from raftcluster.groups.fencing import FenceGate
from raftcluster.groups.heartbeat import NodeHeartbeat, NodeHeartbeatAck
from raftcluster.groups.lease import LeaseKeeper
from raftcluster.groups.manager import NodeManager
from raftcluster.groups.timing import GroupTiming
from raftcluster.groups.updates import CursorStore, GlobalUpdates
from raftcluster.node.replica import Replica
from raftcluster.raft.types import ConfState
from statemachine.errors import Code
from statemachine.groups.messages import (
    EventPage,
    GetEvents,
    GroupList,
    GroupState,
    ListGroups,
    ListNodes,
    NodeInfo,
    NodeList,
)
from statemachine.groups.part import NAME as GROUPS
from statemachine.results import Failure

_HELD = (GroupState.STARTING, GroupState.ONLINE, GroupState.STOPPING)
# Events read from the local state per read (the part answers up to 1,000 per query).
EVENTS_PER_READ = 1_000
# Heartbeats and acks queued between two steps, each. A step follows every cycle of the
# node, so only a flood (a peer gone mad, a stalled node) reaches this; the oldest go
# first: both are repeated every interval. Observations are not bounded here: they come
# from this node's own executor, one per action, so at most one per resource.
MAX_QUEUED_BEATS = 1_024


@attrs.frozen
class Step:
    """What one `step` asks the shell to do, in order."""

    heartbeat: NodeHeartbeat | None = None  # to every peer
    acks: tuple[NodeHeartbeatAck, ...] = ()  # each to `ack.node` (never this node)
    outputs: tuple[Output, ...] = ()  # the controller's, in the order it gave them


class NodeAgent:
    def __init__(
        self,
        node: int,
        incarnation: int,
        timing: GroupTiming,
        now_ms: int,
        cursor: CursorStore,
        fence: FenceGate | None = None,
    ) -> None:
        self.node = node
        self.incarnation = incarnation
        self.timing = timing
        self.controller = ResourceController(node, timing, now_ms)
        self.lease = LeaseKeeper(node, incarnation, timing, now_ms)
        self.replica: Replica | None = None  # once the node has loaded it (`attach`)
        # One of the replica's leader services: it reads the node's applied state.
        self.manager = NodeManager(
            node, timing, self.members, self._term, now_ms, voters=self._voters, fence=fence
        )
        self.updates = GlobalUpdates(cursor)
        self.counts = {"heartbeats": 0, "acks": 0}
        self._heartbeats: list[NodeHeartbeat] = []
        self._acks: list[NodeHeartbeatAck] = []
        self._observations: list[Observation] = []
        self._changed_at = -1  # the groups part's `changed_at` when a step last read it
        self._revision = -1  # the groups part's latest event revision when last read
        self._owned: tuple[Owned, ...] | None = None
        self._members: dict[int, NodeInfo] = {}
        self._members_at = -1  # the groups part's `changed_at` when `_members` was read
        self._voters_of: tuple[ConfState | None, tuple[int, ...]] = (None, ())

    def attach(self, replica: Replica) -> None:
        assert self.replica is None, "an agent serves one replica"
        self.replica = replica

    # -- inputs -----------------------------------------------------------------------

    def heartbeat_in(self, hb: NodeHeartbeat) -> None:
        if len(self._heartbeats) >= MAX_QUEUED_BEATS:
            del self._heartbeats[0]
        self._heartbeats.append(hb)

    def ack_in(self, ack: NodeHeartbeatAck) -> None:
        if len(self._acks) >= MAX_QUEUED_BEATS:
            del self._acks[0]
        self._acks.append(ack)

    def observed(self, obs: Observation) -> None:
        self._observations.append(obs)

    # -- a step -----------------------------------------------------------------------

    def needs_step(self) -> bool:
        """Whether the node's applied state moved in a way `step` reads: the groups part
        changed since the last step, or an ack held back for an applied index is now
        free. (Its other inputs call for a step themselves; its timers are its own.)"""
        replica = self.replica
        if replica is None:
            return False
        if replica.state.changed_at(GROUPS) != self._changed_at:
            return True
        held = self.lease.held_for_index
        return held is not None and replica.applied_index >= held

    def step(self, now_ms: int) -> Step:
        replica = self.replica
        assert replica is not None, "step before attach"
        outs: list[Output] = []
        changed_at = replica.state.changed_at(GROUPS)
        if changed_at != self._changed_at:
            self._changed_at = changed_at
            revision = self._read_events(replica)
            # What this node owns changes only with an event of the part (every change
            # of a group's state, owner, epoch or spec is one): most applied entries
            # (kv writes, sessions) leave the revision, so the list is not read again.
            if revision != self._revision:
                self._revision = revision
                owned = self._read_owned(replica)
                if owned != self._owned:
                    self._owned = owned
                    outs.append(self.controller.owned(owned, now_ms))
        applied = replica.applied_index
        renewed = self.lease.applied(applied, now_ms)
        if self._acks:
            acks, self._acks = self._acks, []
            for ack in acks:
                renewed = self.lease.acked(ack, now_ms, applied) or renewed
        if renewed is not None:
            outs.append(self.controller.lease(renewed, now_ms))
        if self._observations:
            observations, self._observations = self._observations, []
            for obs in observations:
                outs.append(self.controller.observe(obs, now_ms))
        answers: list[NodeHeartbeatAck] = []
        if self._heartbeats:
            heartbeats, self._heartbeats = self._heartbeats, []
            if replica.leads_with_quorum():
                for hb in heartbeats:
                    answer = self.manager.heard(hb, now_ms, replica.applied_index)
                    if answer is None:
                        continue
                    self.counts["acks"] += 1
                    if answer.node == self.node:
                        self._acks.append(answer)  # its own: handled at the next step
                    else:
                        answers.append(answer)
        if self.controller.next_wake_ms() <= now_ms:
            outs.append(self.controller.tick(now_ms))
        beat = self.lease.tick(now_ms)
        if beat is not None:
            self.counts["heartbeats"] += 1
            if replica.leads_with_quorum():
                self._heartbeats.append(beat)  # a leader acks its own node's heartbeat too
        return Step(beat, tuple(answers), tuple(o for o in outs if o != Output()))

    def next_wake_ms(self) -> int:
        """When `step` next has a timer due (inputs call for a step of their own)."""
        return min(self.controller.next_wake_ms(), self.lease.next_wake_ms())

    # -- what the node's own state says -------------------------------------------------

    def members(self) -> Mapping[int, NodeInfo]:
        """The nodes the replica's state lists (not to be changed by the caller): the same
        mapping until the groups part changes (`ClusterState.changed_at`), read again
        only then: the node manager asks for it at every deadline the replica computes,
        many times per applied entry."""
        replica = self.replica
        if replica is None:
            return {}
        changed_at = replica.state.changed_at(GROUPS)
        if self._members_at != changed_at:
            listing = replica.state.read(ListNodes())
            assert isinstance(listing, NodeList), listing
            self._members = {info.node: info for info in listing.nodes}
            self._members_at = changed_at
        return self._members

    def _term(self) -> int:
        return self.replica.core.term if self.replica is not None else 0

    def _voters(self) -> tuple[int, ...]:
        """The voters of the configuration in force, sorted: the same tuple until it
        changes (the node manager asks at every deadline)."""
        replica = self.replica
        if replica is None:
            return ()
        conf = replica.core.conf
        of, voters = self._voters_of
        if conf is not of:
            voters = tuple(sorted(conf.voters))
            self._voters_of = (conf, voters)
        return voters

    def _read_owned(self, replica: Replica) -> tuple[Owned, ...]:
        listing = replica.state.read(ListGroups())
        assert isinstance(listing, GroupList), listing
        return tuple(
            Owned(g.spec.name, g.epoch, g.state, g.spec.resources)
            for g in listing.groups
            if g.owner == self.node and g.state in _HELD
        )

    def _read_events(self, replica: Replica) -> int:
        """Deliver the events the handlers have not had; the part's latest revision."""
        while True:
            page = replica.state.read(GetEvents(self.updates.next_revision, EVENTS_PER_READ))
            if isinstance(page, Failure):
                if page.code == Code.FUTURE_REVISION:
                    # Restarted: its state has yet to re-apply what it handled.
                    return int(page.detail or 0)
                assert page.code == Code.COMPACTED, page
                self.updates.compacted(int(page.detail or 0))
                continue
            assert isinstance(page, EventPage), page
            if page.events:
                self.updates.deliver(page.events)
            if len(page.events) < EVENTS_PER_READ:
                return page.revision
