"""Golden scenarios: failover, failback per policy, planned moves, drain and resume.

Each expectation follows from the rules in docs/groups.md (preferred 1st of 3 scores
+3000, 2nd +2000, 3rd +1000; a grant takes the next epoch), not from a recording.
"""

from __future__ import annotations

import pytest

from statemachine.cluster import ClusterState
from statemachine.errors import Code
from statemachine.groups import GroupsConfig
from statemachine.groups.messages import (
    CreateGroup,
    Decision,
    DrainNode,
    Failback,
    FenceFailed,
    GroupChanged,
    GroupPlaced,
    GroupReport,
    GroupSpec,
    GroupState,
    GroupsTick,
    MoveGroup,
    NodeChanged,
    NodeDown,
    NodeFenceFailed,
    NodeState,
    NodeUp,
    PauseNode,
    ReportKind,
    ReportRefused,
    ResumeNode,
    SetGroupOffline,
    StaleReportRefused,
)
from statemachine.results import Failure
from tests.groups.kit import HOUR, Script


def web(**policy: object) -> GroupSpec:
    return GroupSpec("web", preferred_owners=(1, 2, 3), **policy)  # type: ignore[arg-type]


def online_on_1(script: Script, spec: GroupSpec) -> None:
    script.ok(CreateGroup(spec, True, 0))
    assert (script.owner(spec.name), script.group(spec.name).state) == (1, GroupState.STARTING)
    script.started(spec.name)
    assert script.group(spec.name).state == GroupState.ONLINE


def test_a_failed_node_s_group_moves_to_the_next_preferred_owner_with_a_bigger_epoch() -> None:
    s = Script()
    online_on_1(s, web())
    first = s.group("web").epoch
    mark = s.revision
    s.ok(NodeDown(1, 5_000))
    g = s.group("web")
    assert (g.owner, g.state) == (2, GroupState.STARTING)
    assert g.epoch == first + 1
    assert g.failures[-1].node == 1 and g.failures[-1].at_ms == 5_000
    kinds = [type(e) for e in s.since(mark)]
    assert kinds == [NodeChanged, GroupChanged, GroupPlaced, GroupChanged]
    placed = s.since(mark)[2]
    assert isinstance(placed, GroupPlaced)
    assert (placed.decision.node, placed.decision.rule, placed.epoch) == (2, "failover", g.epoch)
    assert [(x.node, x.score) for x in placed.decision.scores] == [(2, 2000), (3, 1000)]
    assert "node 1 is down" in placed.decision.reason
    # the old owner, fenced, reports late: refused, and the refusal is an event
    late = s.ok(GroupReport("web", 1, first, ReportKind.STARTED))
    assert isinstance(late, ReportRefused) and late.code == Code.STALE_EPOCH
    assert (late.current_epoch, late.current_owner) == (g.epoch, 2)
    assert isinstance(s.events[-1], StaleReportRefused) and s.events[-1].revision == late.revision
    assert late.error().detail == g.epoch
    assert s.group("web").state == GroupState.STARTING  # nothing else changed


def test_failback_never_keeps_the_group_where_it_failed_over() -> None:
    s = Script()
    online_on_1(s, web(failback=Failback.NEVER))
    s.ok(NodeDown(1, 1_000))
    s.started("web")
    s.ok(NodeUp(1, 1, 2_000))
    s.ok(GroupsTick(10 * 24 * HOUR))
    assert (s.owner("web"), s.group("web").state) == (2, GroupState.ONLINE)


def test_failback_immediate_is_a_planned_move_that_waits_for_the_stop() -> None:
    s = Script()
    online_on_1(s, web(failback=Failback.IMMEDIATE))
    s.ok(NodeDown(1, 1_000))
    s.started("web")
    on_2 = s.group("web").epoch
    s.ok(NodeUp(1, 1, 2_000))
    g = s.group("web")
    # stop confirmed first: still owned by 2 under its epoch, stopping, moving to 1
    assert (g.owner, g.epoch, g.state, g.moving_to) == (2, on_2, GroupState.STOPPING, 1)
    assert g.decision.rule == "failback"
    mark = s.revision
    s.ok(GroupsTick(3_000))  # nothing completes a move but the stop (or the owner's death)
    assert s.revision == mark and s.group("web").state == GroupState.STOPPING
    s.stopped("web")
    g = s.group("web")
    assert (g.owner, g.state, g.epoch) == (1, GroupState.STARTING, on_2 + 1)


@pytest.mark.parametrize(
    ("start", "end", "hour", "moves"),
    [
        (2, 4, 1, False),  # before the window
        (2, 4, 2, True),  # its first hour
        (2, 4, 3, True),
        (2, 4, 4, False),  # the end hour is outside
        (22, 2, 23, True),  # a window over midnight
        (22, 2, 1, True),
        (22, 2, 2, False),
        (22, 2, 12, False),
        (5, 5, 5, False),  # start == end: an empty window
        (0, 24, 17, True),  # the whole day
    ],
)
def test_failback_in_a_window_moves_only_inside_the_hours(
    start: int, end: int, hour: int, moves: bool
) -> None:
    day = 24_000  # the simulator's compressed day: an hour is 1,000 ms
    s = Script(config=GroupsConfig(day_ms=day))
    spec = web(failback=Failback.WINDOW, window_start_hour=start, window_end_hour=end)
    online_on_1(s, spec)
    s.ok(NodeDown(1, 10 * day))
    s.started("web")
    at = 11 * day + hour * 1_000 + 999  # the last ms of that hour, some days later
    s.ok(NodeUp(1, 1, at))
    g = s.group("web")
    assert (g.state == GroupState.STOPPING and g.moving_to == 1) is moves
    if not moves:  # it stays, and a tick in the same hour changes nothing
        mark = s.revision
        s.ok(GroupsTick(at))
        assert s.revision == mark and s.group("web").state == GroupState.ONLINE


def test_failback_window_opens_on_a_tick() -> None:
    s = Script(config=GroupsConfig(day_ms=24_000))
    online_on_1(s, web(failback=Failback.WINDOW, window_start_hour=6, window_end_hour=7))
    s.ok(NodeDown(1, 0))
    s.started("web")
    s.ok(NodeUp(1, 1, 1_000))  # hour 1
    s.ok(GroupsTick(5_999))  # hour 5
    assert s.group("web").state == GroupState.ONLINE
    s.ok(GroupsTick(6_000))  # hour 6
    assert (s.group("web").state, s.group("web").moving_to) == (GroupState.STOPPING, 1)


def test_failback_stable_waits_until_the_preferred_owner_has_been_up_long_enough() -> None:
    s = Script()
    online_on_1(s, web(failback=Failback.STABLE, stable_ms=5_000))
    s.ok(NodeDown(1, 1_000))
    s.started("web")
    s.ok(NodeUp(1, 1, 10_000))
    s.ok(GroupsTick(14_999))
    assert s.group("web").state == GroupState.ONLINE and s.owner("web") == 2
    s.ok(GroupsTick(15_000))
    assert (s.group("web").state, s.group("web").moving_to) == (GroupState.STOPPING, 1)


def test_stickiness_above_the_preference_step_holds_a_group_against_failback() -> None:
    s = Script()
    online_on_1(s, web(failback=Failback.IMMEDIATE, stickiness=1_500))
    s.ok(NodeDown(1, 1_000))
    s.started("web")
    s.ok(NodeUp(1, 1, 2_000))  # node 1: 3000; node 2: 2000 + 1500 stickiness
    assert s.group("web").state == GroupState.ONLINE and s.owner("web") == 2


def test_operator_move_completes_after_stopped_or_when_the_old_owner_dies() -> None:
    s = Script()
    online_on_1(s, web())
    before = s.group("web").epoch
    s.ok(MoveGroup("web", 3, 1_000))
    g = s.group("web")
    assert (g.owner, g.epoch, g.state, g.moving_to) == (1, before, GroupState.STOPPING, 3)
    s.stopped("web")
    assert (s.owner("web"), s.group("web").epoch) == (3, before + 1)
    s.started("web")
    # a move whose old owner is declared down completes at once (it fenced itself)
    s.ok(MoveGroup("web", 2, 2_000))
    s.ok(NodeDown(3, 3_000))
    assert (s.owner("web"), s.group("web").state) == (2, GroupState.STARTING)
    assert s.group("web").decision.rule == "move"


def test_move_refusals_change_nothing() -> None:
    s = Script()
    online_on_1(s, GroupSpec("web", preferred_owners=(1,), possible_owners=(1, 2)))
    assert s.fails(MoveGroup("web", 3, 0)).code == Code.REJECTED  # not a possible owner
    assert s.fails(MoveGroup("web", 9, 0)).code == Code.REJECTED  # not a member
    s.ok(PauseNode(2, 0))
    assert s.fails(MoveGroup("web", 0, 0)).code == Code.REJECTED  # nowhere else to go
    assert s.fails(MoveGroup("nope", 2, 0)).code == Code.REJECTED


def test_drain_moves_groups_off_as_planned_moves_and_resume_with_failback_brings_back() -> None:
    s = Script()
    online_on_1(s, web())
    online_on_1(s, GroupSpec("db", preferred_owners=(1, 3)))
    s.ok(DrainNode(1, 1_000))
    assert s.node(1).state == NodeState.DRAINING
    web_g, db_g = s.group("web"), s.group("db")
    assert (web_g.state, web_g.moving_to, web_g.decision.rule) == (GroupState.STOPPING, 2, "drain")
    assert (db_g.state, db_g.moving_to) == (GroupState.STOPPING, 3)
    s.stopped("web")
    s.stopped("db")
    assert (s.owner("web"), s.owner("db")) == (2, 3)
    s.started("web", "db")
    s.ok(ResumeNode(1, True, 2_000))  # failback now, whatever the policy (NEVER here)
    assert {s.group(n).moving_to for n in ("web", "db")} == {1}


def test_resume_without_failback_leaves_groups_where_they_are() -> None:
    s = Script()
    online_on_1(s, web())
    s.ok(DrainNode(1, 1_000))
    s.stopped("web")
    s.started("web")
    s.ok(ResumeNode(1, False, 2_000))
    assert (s.owner("web"), s.group("web").state) == (2, GroupState.ONLINE)


def test_a_paused_node_keeps_its_groups_and_takes_no_new_one() -> None:
    s = Script()
    online_on_1(s, web())
    s.ok(PauseNode(1, 0))
    s.ok(CreateGroup(GroupSpec("db", preferred_owners=(1, 2)), True, 0))
    assert (s.owner("web"), s.owner("db")) == (1, 2)


def test_a_restarted_node_s_groups_get_new_epochs_and_same_incarnation_is_a_no_op() -> None:
    s = Script()
    online_on_1(s, web())
    s.ok(NodeUp(1, 3, 0))  # incarnation 0 -> 3 while up: it restarted
    g = s.group("web")
    # a new grant; the restart counts as a failure on node 1 since it came up, so placement
    # avoids node 1 while another node is eligible: the next preferred, 2
    assert (g.epoch, g.state, g.owner) == (2, GroupState.STARTING, 2)
    mark = s.revision
    before = s.state.snapshot()
    for command in (NodeUp(1, 3, 0), NodeUp(1, 2, 0), NodeUp(9, 1, 0), NodeDown(9, 0)):
        s.ok(command)
    assert s.revision == mark and s.state.snapshot() == before


def test_set_offline_stops_and_leaves_it_offline() -> None:
    s = Script()
    online_on_1(s, web())
    s.ok(SetGroupOffline("web", 0))
    assert (s.group("web").state, s.group("web").moving_to) == (GroupState.STOPPING, 0)
    s.stopped("web")
    g = s.group("web")
    assert (g.state, g.owner, g.online) == (GroupState.OFFLINE, 0, False)
    assert g.decision == Decision("web", 0, "offline", "not wanted online")
    # a repeated STOPPED for that grant is harmless; a STARTED for it is stale
    assert not isinstance(s.ok(GroupReport("web", 1, g.epoch, ReportKind.STOPPED)), Failure)
    assert isinstance(s.ok(GroupReport("web", 1, g.epoch, ReportKind.STARTED)), ReportRefused)


def test_a_failed_fencing_agent_is_recorded_and_changes_nothing_else() -> None:
    s = Script()
    s.ok(CreateGroup(web(), True, 0))
    before = s.group("web")
    s.ok(FenceFailed(1, "fence_ipmi: exit 1", 5_000))
    assert s.events[-1] == NodeFenceFailed(s.events[-1].revision, 1, "fence_ipmi: exit 1", 5_000)
    assert s.group("web") == before and s.node(1).state == NodeState.UP
    restored = ClusterState(groups=None)
    restored.restore(s.state.snapshot())  # the event survives a snapshot
    assert restored.snapshot() == s.state.snapshot()
    assert s.fails(FenceFailed(9, "x", 5_000)).code == Code.REJECTED  # not a member
