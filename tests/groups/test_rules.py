"""Golden scenarios: reports and epochs, the failover threshold, anti-affinity, ordering
and colocation, priority, the event stream, the what-if, validation, snapshots."""

from __future__ import annotations

import attrs
import pytest

from statemachine.codec import decode, encode
from statemachine.errors import Code, DecodeError
from statemachine.groups import GroupsConfig, GroupsPart
from statemachine.groups.messages import (
    CreateGroup,
    DeleteGroup,
    EventPage,
    GetEvents,
    GroupChanged,
    GroupInfo,
    GroupReport,
    GroupSpec,
    GroupsSnapshot,
    GroupState,
    GroupsTick,
    JoinNode,
    NodeDown,
    NodeUp,
    Placement,
    RemoveNode,
    ReportKind,
    ReportRefused,
    ResourceFailed,
    ResourceSpec,
    SetGroupOnline,
    UpdateGroup,
    WhatIf,
    Why,
)
from statemachine.results import Failure
from tests.groups.kit import HOUR, Script


def test_reports_are_accepted_only_from_the_owner_under_its_epoch() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("web", preferred_owners=(1,)), True, 0))
    g = s.group("web")
    for wrong in (
        GroupReport("web", 2, g.epoch, ReportKind.STARTED),  # not the owner
        GroupReport("web", 1, g.epoch + 1, ReportKind.STARTED),  # a future epoch
        GroupReport("ghost", 1, g.epoch, ReportKind.FAILED),  # no such group
    ):
        mark = s.revision
        refused = s.ok(wrong)
        assert isinstance(refused, ReportRefused) and refused.revision == mark + 1
        assert s.group("web").state == GroupState.STARTING
    s.started("web")
    mark = s.revision
    s.started("web")  # a repeated STARTED: accepted, nothing happens
    assert s.revision == mark
    s.report("web", ReportKind.RESTARTED, resource="nginx", detail="exit 1")
    last = s.events[-1]
    assert isinstance(last, ResourceFailed) and last.restarted and last.resource == "nginx"
    assert s.group("web").state == GroupState.ONLINE and s.owner("web") == 1


def test_failures_past_the_threshold_leave_the_group_failed_until_set_online() -> None:
    s = Script()
    spec = GroupSpec("web", preferred_owners=(1, 2, 3), failover_threshold=1,
                     failover_period_ms=HOUR)  # fmt: skip
    s.ok(CreateGroup(spec, True, 0))
    s.report("web", ReportKind.FAILED, 1_000)  # 1st failure: fails over to 2
    assert s.owner("web") == 2
    s.report("web", ReportKind.FAILED, 2_000)  # 2nd within the hour: over a threshold of 1
    g = s.group("web")
    assert (g.state, g.owner, g.decision.rule) == (GroupState.FAILED, 0, "failed")
    s.ok(GroupsTick(3_000))
    assert s.group("web").state == GroupState.FAILED
    s.ok(SetGroupOnline("web", 4_000))
    g = s.group("web")
    assert (g.state, g.owner, g.failures) == (GroupState.STARTING, 1, ())


def test_failures_older_than_the_period_do_not_count_and_are_forgotten_by_a_tick() -> None:
    s = Script()
    spec = GroupSpec("web", preferred_owners=(1, 2), failover_threshold=1,
                     failover_period_ms=HOUR)  # fmt: skip
    s.ok(CreateGroup(spec, True, 0))
    s.report("web", ReportKind.FAILED, 0)
    s.report("web", ReportKind.FAILED, HOUR)  # the first is an hour old: one failure counts
    assert s.group("web").state == GroupState.STARTING
    assert len(s.group("web").failures) == 2
    s.ok(GroupsTick(HOUR + 1))
    assert [f.at_ms for f in s.group("web").failures] == [HOUR]


def test_a_failed_node_is_avoided_while_another_is_eligible() -> None:
    s = Script(nodes=(1, 2))
    s.ok(CreateGroup(GroupSpec("web", preferred_owners=(1, 2)), True, 0))
    s.report("web", ReportKind.FAILED, 10)
    assert s.owner("web") == 2
    s.report("web", ReportKind.FAILED, 20)  # failed on both: neither is avoided over the other
    assert s.owner("web") == 1  # back to the best score
    assert "failed recently" in s.group("web").decision.reason


def test_anti_affinity_spreads_a_class_where_load_alone_would_not() -> None:
    s = Script(nodes=(1, 2))
    s.ok(CreateGroup(GroupSpec("x", preferred_owners=(2,)), True, 0))
    s.ok(CreateGroup(GroupSpec("a1", anti_affinity="sql"), True, 0))
    assert s.owner("a1") == 1  # load: node 1 has none, node 2 has x
    s.ok(CreateGroup(GroupSpec("a2", anti_affinity="sql"), True, 0))
    assert s.owner("a2") == 2  # node 1: load -1, anti-affinity -500; node 2: load -1
    scores = {x.node: x for x in s.group("a2").decision.scores}
    assert scores[1].score == -501 and "anti-affinity -500" in scores[1].why
    # without a class the same step is a tie of load, and the lowest id wins
    s.ok(CreateGroup(GroupSpec("b2"), True, 0))
    assert s.owner("b2") == 1


def test_start_after_waits_until_online_and_colocate_follows_its_group() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("app", start_after=("db",)), True, 0))
    assert s.group("app").decision.rule == "wait"
    assert "'db'" in s.group("app").decision.reason  # not defined yet: it waits
    s.ok(CreateGroup(GroupSpec("db", preferred_owners=(3,)), True, 0))
    assert s.owner("app") == 0  # db is starting, not online
    s.started("db")
    assert s.group("app").state == GroupState.STARTING
    s.ok(CreateGroup(GroupSpec("ip", colocate_with="db", preferred_owners=(1,)), True, 0))
    assert s.owner("ip") == 3  # with db, whatever it prefers
    s.started("ip")
    s.ok(NodeDown(3, 1_000))  # both fail over; ip follows db wherever db goes
    assert s.owner("db") != 0 and s.owner("ip") == s.owner("db")


def test_dependency_cycles_are_refused() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("a", start_after=("b",)), False, 0))
    s.ok(CreateGroup(GroupSpec("b", colocate_with="c"), False, 0))
    assert s.fails(CreateGroup(GroupSpec("c", start_after=("a",)), False, 0)).code == Code.REJECTED
    with pytest.raises(ValueError):
        GroupSpec("a", start_after=("a",))


def test_priority_0_starts_only_when_set_online_and_not_again_after_a_failure() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("batch", priority=0), False, 0))
    assert s.owner("batch") == 0
    assert "priority 0" in s.group("batch").decision.reason
    s.ok(SetGroupOnline("batch", 0))
    node = s.owner("batch")
    assert node != 0
    s.ok(NodeDown(node, 1_000))
    g = s.group("batch")
    assert (g.state, g.owner, g.online) == (GroupState.OFFLINE, 0, False)


def test_higher_priority_picks_first() -> None:
    s = Script(nodes=(1, 2, 3))
    s.ok(CreateGroup(GroupSpec("gate", possible_owners=(3,)), True, 0))
    for name, priority in (("a_low", 1), ("b_high", 9)):
        spec = GroupSpec(name, priority=priority, anti_affinity="k", start_after=("gate",),
                         possible_owners=(1, 2))  # fmt: skip
        s.ok(CreateGroup(spec, True, 0))
    s.started("gate")  # both start in one placement run: b_high picks first (node 1, the
    # lowest id of a tie), then a_low finds its class there (-500) and takes node 2; by
    # name order it would have been the other way round
    assert (s.owner("b_high"), s.owner("a_low")) == (1, 2)
    s2 = Script(nodes=(1, 2))
    s2.ok(NodeDown(1, 0))
    s2.ok(NodeDown(2, 0))
    s2.ok(CreateGroup(GroupSpec("a_low", anti_affinity="k"), True, 0))
    s2.ok(CreateGroup(GroupSpec("b_high", priority=9, anti_affinity="k"), True, 0))
    s2.ok(NodeUp(1, 0, 10))  # one node for two groups of a class: the first pick gets the
    # lower-scored spot too (anti-affinity is a preference), so the order shows in the events
    placed = [e.group for e in s2.events if isinstance(e, GroupChanged) and e.owner == 1]
    assert placed == ["b_high", "a_low"]


def test_events_are_consecutive_paged_and_compacted() -> None:
    s = Script(nodes=(1, 2, 3), config=GroupsConfig(max_events=5))
    s.ok(CreateGroup(GroupSpec("web"), True, 0))  # 3 joins + 3 events = revision 6
    assert [e.revision for e in s.events] == list(range(1, 7))
    first = s.revision - 4
    failure = s.read(GetEvents(1))
    assert isinstance(failure, Failure) and failure.code == Code.COMPACTED
    assert failure.detail == first
    page = s.read(GetEvents(first, limit=2))
    assert isinstance(page, EventPage) and page.revision == s.revision
    assert page.events == tuple(s.events[first - 1 : first + 1])
    rest = s.read(GetEvents(first + 2))
    assert isinstance(rest, EventPage) and rest.events == tuple(s.events[first + 1 :])
    assert s.read(GetEvents(s.revision + 1)) == EventPage((), s.revision)
    future = s.read(GetEvents(s.revision + 2))
    assert isinstance(future, Failure) and future.code == Code.FUTURE_REVISION
    # a replica restored from the snapshot answers the same
    other = Script(nodes=(), config=GroupsConfig(max_events=5))
    other.state.restore(s.state.snapshot())
    for query in (GetEvents(1), GetEvents(first, 2), GetEvents(first + 3)):
        assert other.read(query) == s.read(query)


def test_what_if_changes_nothing_and_agrees_with_what_then_happens() -> None:
    s = Script(nodes=(1, 2, 3, 4))
    for name, pref in (("a", (1, 2)), ("b", (1, 3)), ("c", (2, 1)), ("d", ())):
        s.ok(CreateGroup(GroupSpec(name, preferred_owners=pref, anti_affinity="k"), True, 0))
    s.started("a", "b", "c", "d")
    before = s.state.snapshot()
    answer = s.read(WhatIf(node_down=1, at_ms=5_000))
    assert isinstance(answer, Placement)
    assert s.state.snapshot() == before
    s.ok(NodeDown(1, 5_000))
    predicted = {d.group: d for d in answer.decisions}
    for name in "abcd":
        assert predicted[name].node == s.owner(name), name
        if predicted[name].rule == "failover":
            assert s.read(Why(name)) == predicted[name]
    assert {predicted[n].rule for n in "ab"} == {"failover"}
    assert {predicted[n].rule for n in "cd"} == {"stay"}


def test_what_if_drain_and_move() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("web", preferred_owners=(1, 2, 3)), True, 0))
    s.started("web")
    drained = s.read(WhatIf(drain=1))
    moved = s.read(WhatIf(move_group="web", move_to=3))
    assert isinstance(drained, Placement) and isinstance(moved, Placement)
    assert (drained.decisions[0].node, drained.decisions[0].rule) == (2, "drain")
    assert (moved.decisions[0].node, moved.decisions[0].rule) == (3, "move")
    assert s.owner("web") == 1
    refused = s.read(WhatIf(move_group="nope", move_to=3))
    assert isinstance(refused, Failure)


def test_refused_commands_change_nothing() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("web", resources=(ResourceSpec("r", "process"),)), True, 0))
    assert s.fails(CreateGroup(GroupSpec("web"), True, 0)).code == Code.REJECTED
    assert s.fails(UpdateGroup(GroupSpec("web"), 0)).code == Code.REJECTED  # resources, online
    assert s.fails(DeleteGroup("web", 0)).code == Code.REJECTED  # not offline
    assert s.fails(JoinNode(1, 0)).code == Code.REJECTED
    assert s.fails(RemoveNode(9, 0)).code == Code.REJECTED
    assert s.fails(SetGroupOnline("nope", 0)).code == Code.REJECTED
    full = Script(nodes=tuple(range(1, 65)))
    assert full.fails(JoinNode(65, 0)).code == Code.LIMIT_EXCEEDED
    # a policy change applies while online, and re-places as needed
    s.ok(UpdateGroup(GroupSpec("web", resources=(ResourceSpec("r", "process"),),
                               possible_owners=(3,)), 0))  # fmt: skip
    assert (s.group("web").moving_to, s.group("web").decision.rule) == (3, "policy")


def test_remove_node_fails_its_groups_over_and_delete_needs_offline() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("web", preferred_owners=(1, 2)), True, 0))
    s.ok(RemoveNode(1, 0))
    assert s.owner("web") == 2 and s.group("web").failures == ()
    s.ok(CreateGroup(GroupSpec("old"), False, 0))
    s.ok(DeleteGroup("old", 0))
    assert s.read(Why("old")).code == Code.REJECTED  # type: ignore[attr-defined]


def _snapshot(s: Script) -> GroupsSnapshot:
    snap = s.part.snapshot()
    assert isinstance(snap, GroupsSnapshot)
    return snap


def test_snapshot_round_trips_and_restore_refuses_inconsistent_states() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("web", preferred_owners=(1,)), True, 0))
    s.ok(CreateGroup(GroupSpec("db", preferred_owners=(2,)), True, 0))
    snap = _snapshot(s)
    fresh = GroupsPart()
    fresh.restore(decode(encode(snap), GroupsSnapshot))
    assert encode(fresh.snapshot()) == encode(snap)
    db, web = snap.groups

    def with_groups(*groups: GroupInfo, **changes: object) -> GroupsSnapshot:
        return attrs.evolve(snap, groups=groups, **changes)  # type: ignore[arg-type]

    bad = [
        with_groups(web, db),  # not in name order
        with_groups(db, attrs.evolve(web, owner=9)),  # the owner is not a member
        with_groups(db, attrs.evolve(web, epoch=db.epoch)),  # one epoch granted twice
        with_groups(db, attrs.evolve(web, state=GroupState.OFFLINE)),  # offline with an owner
        with_groups(db, web, epoch=1),  # an epoch above the last granted
        attrs.evolve(snap, revision=snap.revision + 1),  # events do not end at the revision
        attrs.evolve(snap, nodes=snap.nodes[::-1]),
    ]
    for snapshot in bad:
        with pytest.raises(DecodeError):
            GroupsPart().restore(snapshot)


def test_a_tick_with_nothing_due_changes_nothing() -> None:
    s = Script()
    s.ok(CreateGroup(GroupSpec("web", preferred_owners=(1, 2)), True, 0))
    s.started("web")
    mark, groups = s.revision, _snapshot(s).groups
    s.ok(GroupsTick(60_000))
    assert s.revision == mark and _snapshot(s).groups == groups


@pytest.mark.parametrize(
    "fields",
    [
        {"start_after": ("ok", "ok")},  # twice
        {"start_after": ("bad name",)},
        {"colocate_with": "no/slash"},
        {"anti_affinity": "a b"},
        {"failover_threshold": 101},  # bounds the failure history kept per group
        {"preferred_owners": (1, 1)},
    ],
)
def test_group_spec_validators_refuse_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GroupSpec("g", **fields)  # type: ignore[arg-type]


def test_messages_round_trip_through_the_codec() -> None:
    spec = GroupSpec("g", start_after=("a",), colocate_with="b", anti_affinity="k")
    for message in (spec, ReportRefused("g", 1, 2, 3, 4, 5), CreateGroup(spec, True, 7)):
        assert decode(encode(message), type(message)) == message
