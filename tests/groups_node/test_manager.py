"""The leader's node manager: NodeDown only after node_down_after of silence, never on a
new tenure or a clock jump, never for itself; NodeUp on a return and on a restart;
GroupsTick every tick interval.

The script drives it as the `Replica` does: `run` at `next_due_ms()` (or later), with the
applied state's members and the leader's term read through the callables.
"""

from __future__ import annotations

from raftcluster.groups.fencing import FenceGate
from raftcluster.groups.heartbeat import NodeHeartbeat, NodeHeartbeatAck
from raftcluster.groups.manager import NodeManager
from statemachine.groups.messages import (
    GroupsTick,
    JoinNode,
    NodeDown,
    NodeInfo,
    NodeState,
    NodeUp,
)
from tests.groups_node.timing import ROUND_SECONDS

T = ROUND_SECONDS
D = T.node_down_after_ms
UP, DOWN = NodeState.UP, NodeState.DOWN


class Cluster:
    def __init__(self, *nodes: int) -> None:
        self.members = {n: NodeInfo(n, UP, 1, 0) for n in nodes}
        self.term = 5

    def set(self, node: int, state: NodeState, incarnation: int = 1) -> None:
        # A new mapping, as the node agent's state gives (NodeManager's contract).
        self.members = {**self.members, node: NodeInfo(node, state, incarnation, 0)}

    def manager(self, now: int = 0) -> NodeManager:
        return NodeManager(1, T, lambda: self.members, lambda: self.term, now)


def hb(node: int, at: int, incarnation: int = 1) -> NodeHeartbeat:
    return NodeHeartbeat(node, incarnation, at)


def downs(out: object) -> list[object]:
    return [m for m in out if not isinstance(m, GroupsTick)]  # type: ignore[attr-defined]


def test_node_down_only_after_node_down_after_of_silence() -> None:
    c = Cluster(1, 2, 3)
    m = c.manager()
    assert m.run(0) == (GroupsTick(0),)
    # 2 heartbeats every second; 3 is silent from the tenure start (0); 1 is the leader.
    for now in range(1_000, D, 1_000):
        assert m.heard(hb(2, now), now) == NodeHeartbeatAck(2, 5, now)
        assert m.run(now) == (GroupsTick(now),)
    assert m.next_due_ms() == D  # 3's deadline, with the next tick
    m.heard(hb(2, D), D)
    assert m.run(D) == (NodeDown(3, D), GroupsTick(D))
    assert m.silent_since()[2] == D


def test_no_ack_for_a_node_declared_down_until_its_node_up() -> None:
    c = Cluster(1, 2, 3)
    m = c.manager()
    for now in range(0, D, 1_000):
        assert downs(m.run(now)) == []
    assert downs(m.run(D)) == [NodeDown(2, D), NodeDown(3, D)]
    # 3's heartbeat arrives while the NodeDown is in the log but not applied: an ack now
    # would give 3 a lease that the NodeDown, once applied, contradicts (its groups start
    # elsewhere while it runs them). None, until its NodeUp is applied.
    assert m.heard(hb(3, D + 100), D + 200) is None
    c.set(2, DOWN)
    c.set(3, DOWN)  # applied
    assert m.heard(hb(3, D + 300), D + 400) is None
    assert downs(m.run(D + 400)) == [NodeUp(3, 1, D + 400)]
    c.set(3, UP)
    assert m.heard(hb(3, D + 500), D + 600) == NodeHeartbeatAck(3, 5, D + 500)


def test_one_late_run_does_not_declare_early() -> None:
    c = Cluster(1, 3)
    m = c.manager()
    m.run(0)
    for now in range(1_000, D, 1_000):
        assert downs(m.run(now)) == []
    assert downs(m.run(D - 1)) == []
    assert downs(m.run(D)) == [NodeDown(3, D)]


def test_never_node_down_for_itself() -> None:
    c = Cluster(1)  # the leader never hears its own heartbeat here
    m = c.manager()
    for now in range(0, 3 * D, 1_000):
        assert m.run(now) == (GroupsTick(now),)


def test_a_new_tenure_counts_every_member_as_heard_at_its_start() -> None:
    c = Cluster(1, 2)
    m = c.manager()
    m.run(0)
    for now in range(1_000, 10_001, 1_000):
        assert downs(m.run(now)) == []
    # Leadership was lost and won back (term 6) at 10_500: 2's silence before it is not
    # trusted (another leader may have acked 2 meanwhile).
    c.term = 6
    assert m.next_due_ms() <= 10_500
    assert downs(m.run(10_500)) == []
    for now in range(11_500, 10_500 + D, 1_000):
        assert downs(m.run(now)) == []
    assert downs(m.run(10_500 + D)) == [NodeDown(2, 10_500 + D)]


def test_a_clock_jump_is_not_silence() -> None:
    c = Cluster(1, 2)
    m = c.manager()
    for now in range(0, 5_001, 1_000):
        assert downs(m.run(now)) == []
    # The leader's clock jumps 45 s (or it stalled): 2 is not down for that.
    assert m.run(50_000) == (GroupsTick(50_000),)
    for now in range(51_000, 50_000 + D, 1_000):
        assert downs(m.run(now)) == []
    assert downs(m.run(50_000 + D)) == [NodeDown(2, 50_000 + D)]


def test_a_gap_just_within_the_bound_still_counts() -> None:
    c = Cluster(1, 2)
    m = c.manager()
    for now in range(0, D - 2_000 + 1, 1_000):
        m.run(now)
    # 2_000 (= 2 x tick) since the last run: not a jump, so 2 is down now.
    assert downs(m.run(D)) == [NodeDown(2, D)]


def test_a_clock_going_backwards_reanchors() -> None:
    c = Cluster(1, 2)
    m = c.manager()
    for now in range(0, 10_001, 1_000):
        m.run(now)
    assert m.run(4_000) == (GroupsTick(4_000),)
    assert downs(m.run(4_000 + D - 1_000)) == []  # a gap: re-anchored again, harmless
    for now in range(4_000 + D, 4_000 + 2 * D, 1_000):
        if downs(m.run(now)):
            break
    assert now == 3_000 + 2 * D


def test_node_up_when_a_down_member_is_heard_again_and_no_ack_before() -> None:
    c = Cluster(1, 2)
    c.set(2, DOWN)
    m = c.manager()
    assert m.run(0) == (GroupsTick(0),)
    # 2 comes back: no lease for it while the state has it DOWN, and NodeUp at once.
    assert m.heard(hb(2, 500), 700) is None
    assert m.next_due_ms() <= 700
    assert m.run(700) == (NodeUp(2, 1, 700),)
    c.set(2, UP)  # applied
    assert m.heard(hb(2, 1_500), 1_600) == NodeHeartbeatAck(2, 5, 1_500)
    # The ack says how far the leader's state had applied: the node's lease waits for its
    # own state to get there.
    assert m.heard(hb(2, 1_700), 1_800, 42) == NodeHeartbeatAck(2, 5, 1_700, 42)
    assert m.run(1_600) == (GroupsTick(1_600),)


def test_a_heartbeat_before_the_node_down_does_not_bring_it_up() -> None:
    c = Cluster(1, 2)
    m = c.manager()
    m.heard(hb(2, 0), 0)
    m.run(0)
    for now in range(1_000, D + 1, 1_000):
        out = downs(m.run(now))
    assert out == [NodeDown(2, D)]
    c.set(2, DOWN)
    assert downs(m.run(D + 1_000)) == []  # no NodeUp from the heartbeat of 0
    m.heard(hb(2, D + 1_500), D + 1_500)
    assert downs(m.run(D + 1_500)) == [NodeUp(2, 1, D + 1_500)]


def test_node_up_on_a_higher_incarnation() -> None:
    c = Cluster(1, 2)
    m = c.manager()
    m.run(0)
    # 2 restarted (incarnation 2) before anyone noticed: its groups' state may be stale,
    # so no ack until the state records the new incarnation.
    assert m.heard(hb(2, 100, incarnation=2), 150) is None
    assert m.run(150) == (NodeUp(2, 2, 150),)
    c.set(2, UP, incarnation=2)
    assert m.heard(hb(2, 1_100, incarnation=2), 1_150) == NodeHeartbeatAck(2, 5, 1_100)
    assert downs(m.run(1_150)) == []
    # An old incarnation's late heartbeat is acked (it is alive) and proposes nothing.
    assert m.heard(hb(2, 90, incarnation=1), 1_200) == NodeHeartbeatAck(2, 5, 90)


def test_no_ack_for_a_node_that_is_not_a_member() -> None:
    c = Cluster(1, 2)
    m = c.manager()
    assert m.heard(hb(9, 0), 0) is None
    assert m.run(0) == (GroupsTick(0),)


def test_groups_tick_cadence_and_sorted_proposals() -> None:
    c = Cluster(1)
    m = c.manager(0)
    ticks = []
    now = 0
    while now <= D:
        out = m.run(now)
        ticks += [x.at_ms for x in out if isinstance(x, GroupsTick)]
        now = max(m.next_due_ms(), now + 1)
    assert ticks == list(range(0, D + 1, 1_000))
    assert m.run(D) == ()  # two runs at one instant: one tick
    c2 = Cluster(1, 4, 2, 3)
    m2 = c2.manager()
    m2.run(0)
    for t in range(1_000, D, 1_000):
        m2.run(t)
    assert m2.run(D) == (NodeDown(2, D), NodeDown(3, D), NodeDown(4, D), GroupsTick(D))


def test_every_voter_heard_joins_the_service_in_its_incarnation() -> None:
    c = Cluster(1)
    voters = [1, 2, 3]
    m = NodeManager(1, T, lambda: c.members, lambda: c.term, 0, voters=lambda: voters)
    assert m.run(0) == (GroupsTick(0),)  # 2 and 3 not heard yet: nothing to join
    assert m.heard(hb(2, 5, incarnation=4), 5) is None  # not a member yet: no lease
    assert m.next_due_ms() == 0  # at once
    assert m.run(10) == (JoinNode(2, 10, 4),)
    assert m.run(20) == (JoinNode(2, 20, 4),)  # not applied yet: asked again
    c.set(2, UP, incarnation=4)
    assert m.heard(hb(2, 30, incarnation=4), 30) == NodeHeartbeatAck(2, 5, 30)
    assert m.run(T.tick_interval_ms) == (GroupsTick(T.tick_interval_ms),)  # no NodeUp: same


def test_with_a_fencing_agent_node_down_waits_for_a_fence_after_the_silence() -> None:
    c = Cluster(1, 2)
    gate = FenceGate(retry_ms=5_000)
    m = NodeManager(1, T, lambda: c.members, lambda: c.term, 0, fence=gate)
    for now in range(0, D, 1_000):  # tenure: 2 silent from 0
        assert downs(m.run(now)) == []
    assert downs(m.run(D)) == []  # silent long enough, but not fenced: the agent is wanted
    assert gate.take_wanted(D) == [2]
    assert downs(m.run(D + 100)) == [] and gate.take_wanted(D + 100) == []  # it runs
    gate.ended(2, False, "exit 1", D + 200)
    assert downs(m.run(D + 300)) == [] and gate.take_wanted(D + 300) == []  # retry later
    for now in range(D + 1_300, D + 5_200, 1_000):  # (no clock jump between the runs)
        assert downs(m.run(now)) == [] and gate.take_wanted(now) == []
    assert downs(m.run(D + 5_200)) == [] and gate.take_wanted(D + 5_200) == [2]
    gate.ended(2, True, "", D + 5_300)
    assert downs(m.run(D + 5_400)) == [NodeDown(2, D + 5_400)]


def test_a_fence_from_before_the_silence_does_not_count() -> None:
    gate = FenceGate(retry_ms=5_000)
    gate.cleared(2, 0, 0)
    gate.take_wanted(100)
    gate.ended(2, True, "", 200)
    assert gate.cleared(2, 0, 300)
    assert not gate.cleared(2, 150, 300)  # silent again since 150: fence again
    assert gate.take_wanted(300) == [2]
