"""Random command sequences applied to the real part and to an independent model.

After every step: the outcome class (done / refused / stale), every group's state,
owner, moving target, wish and epoch, and every node's state agree with
tests/groups/model.py; and the part's own invariants hold (epochs grow with every
grant, owners are members, revisions have no gaps, snapshot -> restore -> snapshot is
identical, placement is deterministic, a tick with nothing due changes nothing, and a
node going down moves no group that was elsewhere unless a policy says why).
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from statemachine.cluster import ClusterState
from statemachine.codec import Message, encode
from statemachine.groups import GroupsConfig, GroupsPart
from statemachine.groups.messages import (
    CreateGroup,
    DeleteGroup,
    DrainNode,
    Failback,
    GroupChanged,
    GroupEvent,
    GroupReport,
    GroupSpec,
    GroupState,
    GroupsTick,
    JoinNode,
    MoveGroup,
    NodeDown,
    NodeUp,
    PauseNode,
    RemoveNode,
    ReportKind,
    ReportRefused,
    ResourceSpec,
    ResumeNode,
    SetGroupOffline,
    SetGroupOnline,
    UpdateGroup,
)
from statemachine.groups.placement import place
from statemachine.results import Failure
from tests.groups.model import Model

DAY = 24_000  # a compressed day: windows open and close within a run
NODES = st.integers(1, 4)
DATA = st.data()
NAMES = ("a", "b", "c", "d")
RESOURCES = (ResourceSpec("r", "process"),)


@st.composite
def specs(draw: st.DrawFn) -> GroupSpec:
    name = draw(st.sampled_from(NAMES))
    others = [n for n in NAMES if n != name]
    window = draw(st.sampled_from(((0, 0), (2, 4), (22, 2), (5, 5), (0, 24), (10, 14), (7, 3))))
    return GroupSpec(
        name,
        resources=draw(st.sampled_from(((), RESOURCES))),
        preferred_owners=tuple(draw(st.lists(NODES, min_size=1, max_size=3, unique=True))),
        possible_owners=tuple(draw(st.sampled_from(([],) * 3) | st.lists(NODES, unique=True))),
        anti_affinity=draw(st.sampled_from(("", "", "k"))),
        priority=draw(st.sampled_from((0, 1, 1, 2, 3))),
        failover_threshold=draw(st.sampled_from((0, 1, 3, 3, 3))),
        failover_period_ms=draw(st.sampled_from((1_000, 10_000, 100_000))),
        failback=draw(st.sampled_from(Failback)),
        window_start_hour=window[0],
        window_end_hour=window[1],
        stable_ms=draw(st.sampled_from((0, 2_000, 8_000))),
        stickiness=draw(st.sampled_from((0, 0, 1_500))),
        start_after=draw(st.sampled_from(((), (), (), (), *((o,) for o in others)))),
        colocate_with=draw(st.sampled_from(("",) * 6 + tuple(others))),
    )


class GroupsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.config = GroupsConfig(day_ms=DAY, max_events=50)
        self.state = ClusterState(groups=self.config)
        self.model = Model(day_ms=DAY)
        self.index = 0
        self.now = 0
        self.revision = 0
        self.last_grant = 0

    @property
    def part(self) -> GroupsPart:
        found = self.state.part("groups")
        assert isinstance(found, GroupsPart)
        return found

    # -- applying a command to both ----------------------------------------------------------

    def run(self, command: Message) -> Any:
        before = {n: (g.owner, g.epoch, g.state) for n, g in self.part.table.groups.items()}
        self.index += 1
        done = self.state.execute(self.index, command)
        expected = self.model.apply(command)
        got = (
            "refused"
            if isinstance(done.result, Failure)
            else "stale"
            if isinstance(done.result, ReportRefused)
            else "done"
        )
        assert got == expected, (command, done.result, expected)
        for event in done.events:
            assert isinstance(event, GroupEvent)
            assert event.revision == self.revision + 1, "revisions have a gap"
            self.revision = event.revision
            if isinstance(event, GroupChanged) and event.state == GroupState.STARTING:
                assert event.epoch > self.last_grant, "an epoch did not grow"
                self.last_grant = event.epoch
        self.compare()
        if isinstance(command, NodeDown) and got == "done":
            self.check_stability(command.node, before)
        return done

    def compare(self) -> None:
        table = self.part.table
        real = {
            name: (g.state.name.lower(), g.owner, g.moving_to, g.online, g.epoch)
            for name, g in table.groups.items()
        }
        model = {
            name: (g["state"], g["owner"], g["moving"], g["online"], g["epoch"])
            for name, g in self.model.groups.items()
        }
        assert real == model
        nodes = {n: (x.state.name.lower(), x.incarnation) for n, x in table.nodes.items()}
        assert nodes == {n: (x["state"], x["inc"]) for n, x in self.model.nodes.items()}
        assert (table.epoch, table.clock_ms) == (self.model.epoch, self.model.clock)

    def check_stability(self, down: int, before: dict[str, tuple[int, int, GroupState]]) -> None:
        for name, g in self.part.table.groups.items():
            owner, epoch, state = before.get(name, (0, 0, GroupState.OFFLINE))
            if owner in (0, down) or state == GroupState.STOPPING:
                continue
            if (g.owner, g.epoch, g.state == GroupState.STOPPING) != (owner, epoch, False):
                assert g.decision is not None and g.decision.rule in ("colocate", "failback"), (
                    name,
                    g.decision,
                )

    def at(self, data: st.DataObject) -> int:
        step = data.draw(st.sampled_from((0, 0, 300, 1_000, 2_500, 9_000, -1_000)))
        if step >= 0:
            self.now += step
            return self.now
        return max(0, self.now + step)  # an older clock (a new leader behind): never rewinds

    # -- rules -----------------------------------------------------------------------------

    @initialize(first=st.lists(specs(), min_size=1, max_size=4))
    def start(self, first: list[GroupSpec]) -> None:
        for node in (1, 2, 3, 4):
            self.run(JoinNode(node, 0))
        for spec in first:
            self.run(CreateGroup(spec, True, 0))

    @rule(node=NODES, data=st.data())
    def join(self, node: int, data: st.DataObject) -> None:
        self.run(JoinNode(node, self.at(data)))

    @rule(node=NODES, data=st.data())
    def remove(self, node: int, data: st.DataObject) -> None:
        self.run(RemoveNode(node, self.at(data)))

    @rule(node=NODES, data=st.data())
    def down(self, node: int, data: st.DataObject) -> None:
        self.run(NodeDown(node, self.at(data)))

    @rule(node=NODES, data=st.data())
    def bounce(self, node: int, data: st.DataObject) -> None:
        """A node goes down, its groups come online elsewhere, and it comes back (the
        pattern failback is about)."""
        self.run(NodeDown(node, self.at(data)))
        self.finish("*", data)
        known = self.part.table.nodes.get(node)
        self.run(NodeUp(node, known.incarnation if known else 0, self.at(data)))

    @rule(node=NODES, incarnation=st.integers(0, 3), data=st.data())
    def up(self, node: int, incarnation: int, data: st.DataObject) -> None:
        self.run(NodeUp(node, incarnation, self.at(data)))

    @rule(node=NODES, kind=st.sampled_from(("pause", "drain", "resume", "resume+")), data=st.data())
    def operate(self, node: int, kind: str, data: st.DataObject) -> None:
        at = self.at(data)
        command = {
            "pause": PauseNode(node, at),
            "drain": DrainNode(node, at),
            "resume": ResumeNode(node, False, at),
            "resume+": ResumeNode(node, True, at),
        }[kind]
        self.run(command)

    @rule(spec=specs(), online=st.booleans(), data=st.data())
    def create(self, spec: GroupSpec, online: bool, data: st.DataObject) -> None:
        self.run(CreateGroup(spec, online, self.at(data)))

    @rule(spec=specs(), data=st.data())
    def update(self, spec: GroupSpec, data: st.DataObject) -> None:
        self.run(UpdateGroup(spec, self.at(data)))

    @rule(
        name=st.sampled_from(NAMES), kind=st.sampled_from(("delete", "on", "off")), data=st.data()
    )
    def group_op(self, name: str, kind: str, data: st.DataObject) -> None:
        at = self.at(data)
        command = {"delete": DeleteGroup, "on": SetGroupOnline, "off": SetGroupOffline}[kind]
        self.run(command(name, at))

    @rule(name=st.sampled_from(NAMES), node=st.integers(0, 5), data=st.data())
    def move(self, name: str, node: int, data: st.DataObject) -> None:
        self.run(MoveGroup(name, node, self.at(data)))

    @rule(
        name=st.sampled_from(NAMES),
        kind=st.sampled_from(ReportKind),
        wrong=st.sampled_from(("", "", "", "", "", "epoch", "node")),
        data=st.data(),
    )
    def report(self, name: str, kind: ReportKind, wrong: str, data: st.DataObject) -> None:
        g = self.part.table.groups.get(name)
        owner, epoch = (g.owner, g.epoch) if g is not None else (0, 0)
        if wrong == "epoch" or epoch == 0:
            epoch = max(1, epoch + data.draw(st.sampled_from((-1, 1))))
        if wrong == "node" or owner == 0:
            owner = data.draw(NODES)
        self.run(GroupReport(name, owner, epoch, kind, at_ms=self.at(data)))

    @rule(name=st.sampled_from(("*", *NAMES)), data=st.data())
    def finish(self, name: str, data: st.DataObject) -> None:
        """Owners' controllers finish what they were asked (the usual case): one group's,
        or every group's start or stop, by name."""
        for each in NAMES if name == "*" else (name,):
            g = self.part.table.groups.get(each)
            if g is not None and g.state in (GroupState.STARTING, GroupState.STOPPING):
                started = g.state == GroupState.STARTING
                kind = ReportKind.STARTED if started else ReportKind.STOPPED
                self.run(GroupReport(each, g.owner, g.epoch, kind, at_ms=self.at(data)))

    @rule(data=st.data())
    def tick(self, data: st.DataObject) -> None:
        self.run(GroupsTick(self.at(data)))

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def snapshot_restores_to_the_same_bytes(self) -> None:
        snapshot = self.part.snapshot()
        copy = GroupsPart(self.config)
        copy.restore(snapshot)
        assert encode(copy.snapshot()) == encode(snapshot)
        # placement is a function of the state: the same answer twice, and on the copy
        table, clock = self.part.table, self.part.table.clock_ms
        once = place(table.groups, table.nodes, clock, DAY)
        assert place(table.groups, table.nodes, clock, DAY) == once
        assert place(copy.table.groups, copy.table.nodes, clock, DAY) == once

    @invariant()
    def a_tick_at_the_current_time_is_due_nothing(self) -> None:
        table = self.part.table
        for g in table.groups.values():
            assert g.owner == 0 or g.owner in table.nodes
        before = attrs.evolve(self.part.snapshot(), events=())  # type: ignore[arg-type]
        done = self.run(GroupsTick(table.clock_ms))
        assert done.events == ()
        after = attrs.evolve(self.part.snapshot(), events=())  # type: ignore[arg-type]
        # only failures older than their period may have been forgotten
        strip = [attrs.evolve(g, failures=()) for g in before.groups]  # type: ignore[attr-defined]
        assert strip == [attrs.evolve(g, failures=()) for g in after.groups]  # type: ignore[attr-defined]
        assert before.revision == after.revision  # type: ignore[attr-defined]


GroupsMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestGroupsAgainstTheModel = GroupsMachine.TestCase
