"""A scripted cluster for the groups tests: commands in, the part's answers and events out.

`Script` drives a real `ClusterState` (so commands go through routing, the size limit and
the Failure mapping exactly as the log drives them) and keeps every event it emitted.
"""

from __future__ import annotations

from statemachine.cluster import ClusterState, Executed
from statemachine.codec import Message
from statemachine.groups import GroupsConfig, GroupsPart
from statemachine.groups.messages import (
    GroupEvent,
    GroupInfo,
    GroupList,
    GroupReport,
    JoinNode,
    ListGroups,
    ListNodes,
    NodeInfo,
    NodeList,
    ReportKind,
)
from statemachine.results import Failure

HOUR = 3_600_000


class Script:
    def __init__(self, nodes: tuple[int, ...] = (1, 2, 3), config: GroupsConfig | None = None):
        self.state = ClusterState(groups=config)
        self.index = 0
        self.events: list[GroupEvent] = []
        for n in nodes:
            self.ok(JoinNode(n, 0))

    @property
    def part(self) -> GroupsPart:
        found = self.state.part("groups")
        assert isinstance(found, GroupsPart)
        return found

    def do(self, command: Message) -> Executed:
        self.index += 1
        done = self.state.execute(self.index, command)
        for event in done.events:
            assert isinstance(event, GroupEvent)
            self.events.append(event)
        return done

    def ok(self, command: Message) -> Message:
        result = self.do(command).result
        assert not isinstance(result, Failure), result
        return result

    def fails(self, command: Message) -> Failure:
        before = self.state.snapshot()
        done = self.do(command)
        assert isinstance(done.result, Failure), done.result
        assert done.events == () and self.state.snapshot() == before
        return done.result

    def read(self, query: Message) -> Message:
        return self.state.read(query)

    def group(self, name: str) -> GroupInfo:
        listed = self.read(ListGroups())
        assert isinstance(listed, GroupList)
        return next(g for g in listed.groups if g.spec.name == name)

    def node(self, node: int) -> NodeInfo:
        listed = self.read(ListNodes())
        assert isinstance(listed, NodeList)
        return next(n for n in listed.nodes if n.node == node)

    def owner(self, name: str) -> int:
        return self.group(name).owner

    def report(self, name: str, kind: ReportKind, at_ms: int = 0, **fields: object) -> Message:
        """`kind` reported by the group's owner under its current epoch."""
        g = self.group(name)
        return self.ok(GroupReport(name, g.owner, g.epoch, kind, at_ms=at_ms, **fields))  # type: ignore[arg-type]

    def started(self, *names: str, at_ms: int = 0) -> None:
        for name in names:
            self.report(name, ReportKind.STARTED, at_ms)

    def stopped(self, name: str, at_ms: int = 0) -> None:
        self.report(name, ReportKind.STOPPED, at_ms)

    def since(self, mark: int) -> list[GroupEvent]:
        return [e for e in self.events if e.revision > mark]

    @property
    def revision(self) -> int:
        return self.part.log.revision
