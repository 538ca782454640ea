"""The cluster service's replicated state as a part of the cluster state (named `groups`).

`GroupsPart` keeps the `Part` contract (statemachine/part.py): every command is checked
before it changes anything (commands.py), no clock and no randomness (time is each
command's `at_ms`), a canonical snapshot (nodes by id, groups by name, events oldest
first) that `restore` validates. Queries: `ListGroups`, `ListNodes`, `Why`, `WhatIf`
(placement on a scratch copy: nothing changes), `GetEvents`.
"""

from __future__ import annotations

from statemachine.codec import Message
from statemachine.errors import Rejected
from statemachine.groups.change import Change
from statemachine.groups.commands import HANDLERS
from statemachine.groups.config import GroupsConfig
from statemachine.groups.events import EventLog
from statemachine.groups.messages import (
    Decision,
    DrainNode,
    GetEvents,
    GroupList,
    GroupPlaced,
    GroupsSnapshot,
    ListGroups,
    ListNodes,
    MoveGroup,
    NodeDown,
    NodeList,
    Placement,
    WhatIf,
    Why,
)
from statemachine.groups.placement import place
from statemachine.groups.table import Table, no_decision
from statemachine.part import ApplyContext, PartSpec, expect_snapshot

NAME = "groups"
COMMANDS: tuple[type[Message], ...] = tuple(HANDLERS)
QUERIES: tuple[type[Message], ...] = (ListGroups, ListNodes, Why, WhatIf, GetEvents)


class GroupsPart:
    def __init__(self, config: GroupsConfig | None = None) -> None:
        self.config = config or GroupsConfig()
        self.table = Table()
        self.log = EventLog(self.config.max_events)

    def apply(self, command: Message, context: ApplyContext) -> Message:
        handler = HANDLERS.get(type(command))
        assert handler is not None, f"not a groups command: {type(command).__name__}"
        given: int = getattr(command, "at_ms")  # noqa: B009 - every command carries it
        at_ms = max(given, self.table.clock_ms)  # a new leader's clock may be behind
        change = Change(self.table, self.log, self.config, context.emit, at_ms)
        result = handler(self.table, command, change)
        if change.settled:  # a command that changed nothing leaves the clock too: the
            self.table.clock_ms = at_ms  # table is always settled as of its clock
        self.table.check()
        return result

    def query(self, query: Message) -> Message:
        t = self.table
        if isinstance(query, ListGroups):
            return GroupList(t.group_infos(), self.log.revision)
        if isinstance(query, ListNodes):
            return NodeList(t.node_infos(), self.log.revision)
        if isinstance(query, Why):
            g = t.groups.get(query.group)
            if g is None:
                raise Rejected(f"no group named {query.group!r}")
            return g.decision or no_decision(g.name)
        if isinstance(query, WhatIf):
            return self._what_if(query)
        assert isinstance(query, GetEvents), f"not a groups query: {type(query).__name__}"
        return self.log.page(query.from_revision, query.limit)

    def _what_if(self, query: WhatIf) -> Placement:
        """Apply the hypothetical commands to a scratch copy; each group's decision is the
        last one they made for it, or else what placement says of it then."""
        scratch = GroupsPart(self.config)
        scratch.restore(self.snapshot())
        at = max(query.at_ms, self.table.clock_ms)
        commands: list[Message] = []
        if query.node_down:
            commands.append(NodeDown(query.node_down, at))
        if query.drain:
            commands.append(DrainNode(query.drain, at))
        if query.move_group:
            commands.append(MoveGroup(query.move_group, query.move_to, at))
        made: dict[str, Decision] = {}

        def seen(event: Message) -> None:
            if isinstance(event, GroupPlaced):
                made[event.decision.group] = event.decision

        for i, command in enumerate(commands):
            scratch.apply(command, ApplyContext(i + 1, seen))
        table = scratch.table
        now = place(table.groups, table.nodes, at, self.config.day_ms)
        return Placement(tuple(made.get(c.decision.group, c.decision) for c in now))

    def snapshot(self) -> Message:
        log = self.log
        return GroupsSnapshot(
            self.table.node_infos(),
            self.table.group_infos(),
            self.table.epoch,
            log.revision,
            tuple(log.events),
            log.first_revision,
            self.table.clock_ms,
        )

    def restore(self, snapshot: Message) -> None:
        state = expect_snapshot(snapshot, GroupsSnapshot, NAME)
        table = Table.of(state.nodes, state.groups, state.epoch, state.clock_ms)
        log = EventLog(self.config.max_events)
        log.restore(state.revision, state.first_revision, state.events)
        self.table, self.log = table, log


def spec(config: GroupsConfig | None = None) -> PartSpec:
    """The registration of the groups part, with `config` on every replica."""
    return PartSpec(NAME, lambda: GroupsPart(config), COMMANDS, QUERIES)
