"""`NodeManager`: the leader's failure detector for the cluster service (a `LeaderService`).

The `Replica` runs it only on a leader that heard from a quorum within an election
timeout, with at most one of its proposals in flight; the shell calls `heard` for every
`NodeHeartbeat` that arrives only while that holds too, and sends back the ack it
returns. Everything is on the leader's own clock, in ms.

    heard(hb, now_ms) -> NodeHeartbeatAck | None
        records that `hb.node` (in `hb.incarnation`) is alive; the ack to send back, or
        None while the leader's applied state has that node DOWN or at an older
        incarnation (it gets a lease again once its NodeUp is applied, not before: a node
        back from the dead must not restart groups that failed over)
    next_due_ms() / run(now_ms) -> proposals, sorted by node, then GroupsTick:
        NodeDown(n, now)            a member UP, PAUSED or DRAINING not heard for
                                    `node_down_after_ms` (never this node itself)
        NodeUp(n, incarnation, now) a DOWN member heard since, or a member heard with an
                                    incarnation above the one the state recorded
        GroupsTick(now)             every `tick_interval_ms`
        JoinNode(n, now, inc)       a Raft voter (`voters()`) the cluster service does not
                                    list yet, once heard in this tenure (in the
                                    incarnation it was heard in): every voting member
                                    that runs serves groups (first in a run; repeated
                                    each run until the state lists it)

With a fencing agent (`fence`, a `FenceGate`), a silent node is declared down only once
the agent fenced it after its silence began (`fencing.py`).

`next_due_ms` is asked at every deadline the replica computes (several times per
request): its answer is kept until `heard` or `run`, or until `members()`,
`leader_term()` or `voters()` returns another value. So `members()` and `voters()` must
return a new object whenever what they list changes, never change one they returned
(the node agent's return the same mapping and tuple until the state or the
configuration changes, and new ones then).

Guards (why a NodeDown is safe, docs/groups-node.md "The timing rule"):
- tenure: on its first run, and whenever `leader_term()` changed since the last, every
  member counts as heard now; what an earlier tenure heard is not trusted, and a node
  the previous leader acked keeps its lease for up to an election timeout after that
  leader lost its quorum;
- clock jump: a gap since the last run above `timing.clock_jump_ms` (or the clock going
  backwards) re-anchors every member's silence at now: a leader that stalled, or whose
  clock stepped, did not observe that silence.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from raftcluster.groups.fencing import FenceGate
from raftcluster.groups.heartbeat import NodeHeartbeat, NodeHeartbeatAck
from raftcluster.groups.timing import GroupTiming
from statemachine.codec import Message
from statemachine.groups.messages import (
    GroupsTick,
    JoinNode,
    NodeDown,
    NodeInfo,
    NodeState,
    NodeUp,
)

_WATCHED = (NodeState.UP, NodeState.PAUSED, NodeState.DRAINING)


class NodeManager:
    name = "node-manager"

    def __init__(
        self,
        node_id: int,
        timing: GroupTiming,
        members: Callable[[], Mapping[int, NodeInfo]],
        leader_term: Callable[[], int],
        now_ms: int,
        voters: Callable[[], Collection[int]] = tuple,
        fence: FenceGate | None = None,
    ) -> None:
        self.node_id = node_id
        self._voters = voters
        self._fence = fence  # with a fencing agent: NodeDown only once it fenced the node
        self.timing = timing
        self._members = members
        self._leader_term = leader_term
        self._term: int | None = None  # the tenure the silences below were counted in
        self._last_run_ms: int | None = None
        self._silent_since: dict[int, int] = {}  # node -> when its silence began
        self._heartbeat: set[int] = set()  # nodes heard in this tenure since any NodeDown
        self._incarnation: dict[int, int] = {}  # node -> the highest incarnation heard
        # Nodes this tenure proposed NodeDown for, until the state shows them down: no
        # ack for them meanwhile. An ack now would grant a lease that the NodeDown, once
        # applied, overrides: their groups would start elsewhere while they run them.
        self._declared: set[int] = set()
        self._next_tick_ms = now_ms
        self._asap = False  # `heard` saw something to propose at once
        # `next_due_ms`'s last answer and what it was computed from (members, term,
        # voters: compared as a tuple, so the same objects pass at once and equal new ones
        # after a comparison), until `heard` or `run` changes anything else.
        self._due: tuple[object, int, object, int] | None = None

    # -- inputs -----------------------------------------------------------------------

    def heard(
        self, hb: NodeHeartbeat, now_ms: int, applied_index: int = 0
    ) -> NodeHeartbeatAck | None:
        """`hb` arrived while this node leads with quorum contact, whose state has applied
        up to `applied_index`: the ack to send back, or None (a node that is not a member,
        is DOWN, or restarted since its state says: it gets a lease after its `NodeUp`)."""
        self._due = None
        self._silent_since[hb.node] = now_ms
        self._heartbeat.add(hb.node)
        self._incarnation[hb.node] = max(hb.incarnation, self._incarnation.get(hb.node, 0))
        info = self._members().get(hb.node)
        if info is None or info.state == NodeState.DOWN or info.incarnation < hb.incarnation:
            self._asap = True  # a NodeUp, or a JoinNode for a voter, to propose
            return None
        if hb.node in self._declared:
            return None  # declared down, not yet applied: after its NodeUp
        return NodeHeartbeatAck(hb.node, self._leader_term(), hb.sent_ms, applied_index)

    def next_due_ms(self) -> int:
        members, term, voters = self._members(), self._leader_term(), self._voters()
        cached = self._due
        if cached is not None and cached[:3] == (members, term, voters):
            return cached[3]
        due = self._compute_due_ms(members, term, voters)
        self._due = (members, term, voters, due)
        return due

    def _compute_due_ms(
        self, members: Mapping[int, NodeInfo], term: int, voters: Collection[int]
    ) -> int:
        if self._asap or self._term != term or self._joining_of(members, voters):
            return self._last_run_ms if self._last_run_ms is not None else self._next_tick_ms
        due = self._next_tick_ms
        after = self.timing.node_down_after_ms
        for node, info in members.items():
            if node != self.node_id and info.state in _WATCHED and node in self._silent_since:
                due = min(due, self._silent_since[node] + after)
        return due

    def run(self, now_ms: int) -> Sequence[Message]:
        self._due = None
        members = self._members()
        term = self._leader_term()
        last = self._last_run_ms
        if term != self._term:  # a new tenure: nothing heard before it counts
            self._term = term
            self._silent_since = {node: now_ms for node in members}
            self._heartbeat.clear()
            self._incarnation.clear()
            self._declared.clear()  # (the replica acks only after applying its own term)
            self._next_tick_ms = min(self._next_tick_ms, now_ms)
        elif last is not None and not 0 <= now_ms - last <= self.timing.clock_jump_ms:
            self._silent_since = {node: now_ms for node in self._silent_since}
            if now_ms < last:
                self._next_tick_ms = now_ms
        self._last_run_ms = now_ms
        self._asap = False
        out: list[Message] = [
            JoinNode(node, now_ms, self._incarnation[node]) for node in self._joining()
        ]
        # The replica runs a service again only once its last proposals applied: a node
        # declared down is down in the state by now (or its NodeDown went with a tenure).
        self._declared = {
            n for n in self._declared if n in members and members[n].state != NodeState.DOWN
        }
        for node in sorted(self._declared):
            out.append(NodeDown(node, now_ms))  # (not applied yet: asked again)
        for node in sorted(members):
            info = members[node]
            heard = self._incarnation.get(node)
            if info.state == NodeState.DOWN:
                if node in self._heartbeat:
                    out.append(NodeUp(node, max(heard or 0, info.incarnation), now_ms))
                continue
            if heard is not None and heard > info.incarnation:
                out.append(NodeUp(node, heard, now_ms))
                continue
            since = self._silent_since.setdefault(node, now_ms)  # a new member: from now
            silent = now_ms - since
            watched = node != self.node_id and info.state in _WATCHED
            if watched and silent >= self.timing.node_down_after_ms:
                if self._fence is not None and not self._fence.cleared(node, since, now_ms):
                    continue  # not fenced since it fell silent: its groups stay
                assert self._term == term and node != self.node_id
                out.append(NodeDown(node, now_ms))
                self._declared.add(node)
                self._heartbeat.discard(node)  # only a heartbeat after this brings it up
        if now_ms >= self._next_tick_ms:
            out.append(GroupsTick(now_ms))
            self._next_tick_ms = now_ms + self.timing.tick_interval_ms
        return tuple(out)

    def _joining(self) -> list[int]:
        return self._joining_of(self._members(), self._voters())

    def _joining_of(self, members: Mapping[int, NodeInfo], voters: Collection[int]) -> list[int]:
        heard = self._incarnation  # (cleared with every new tenure)
        return sorted(n for n in voters if n not in members and n in heard)

    # -- inspection -------------------------------------------------------------------

    def silent_since(self) -> Mapping[int, int]:
        """When each member's current silence began (the leader's clock)."""
        return dict(self._silent_since)
