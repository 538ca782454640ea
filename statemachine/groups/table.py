"""The groups part's state: the members, the groups, and the last epoch granted.

`Node` and `Group` are mutable records owned by the part; placement reads them and
never changes them. Invariants (`check` asserts them after each command; `Table.of`
refuses a snapshot that breaks them):
- a group has an owner exactly while STARTING, ONLINE or STOPPING, and the owner is a
  member; `moving_to` is set only while STOPPING;
- every group's epoch is at most the table's epoch, and the epochs of the groups that
  have an owner are distinct (each grant has its own);
- nodes are at most MAX_NODES, groups at most MAX_GROUPS, each group's failure records
  at most MAX_FAILOVER_THRESHOLD + 1, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from statemachine.errors import DecodeError
from statemachine.groups.messages import (
    MAX_FAILOVER_THRESHOLD,
    MAX_GROUPS,
    MAX_NODES,
    NO_NODE,
    Decision,
    FailureRecord,
    GroupInfo,
    GroupSpec,
    GroupState,
    NodeInfo,
    NodeState,
)

MAX_FAILURE_RECORDS = MAX_FAILOVER_THRESHOLD + 1
OWNED = (GroupState.STARTING, GroupState.ONLINE, GroupState.STOPPING)


@attrs.define
class Node:
    node: int
    state: NodeState
    incarnation: int
    since_ms: int  # when it entered `state`

    def info(self) -> NodeInfo:
        return NodeInfo(self.node, self.state, self.incarnation, self.since_ms)


def no_decision(group: str) -> Decision:
    return Decision(group, NO_NODE, "none", "not placed yet")


@attrs.define
class Group:
    spec: GroupSpec
    online: bool
    state: GroupState = GroupState.OFFLINE
    owner: int = NO_NODE
    epoch: int = 0
    moving_to: int = NO_NODE
    failures: list[FailureRecord] = attrs.Factory(list)
    decision: Decision | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def info(self) -> GroupInfo:
        decision = self.decision or no_decision(self.name)
        return GroupInfo(
            self.spec,
            self.state,
            self.owner,
            self.epoch,
            self.online,
            self.moving_to,
            tuple(self.failures),
            decision,
        )

    def recent_failures(self, at_ms: int) -> list[FailureRecord]:
        """The failures within the group's period before `at_ms`."""
        period = self.spec.failover_period_ms
        return [f for f in self.failures if at_ms - f.at_ms < period]

    def avoided(self, at_ms: int, nodes: Mapping[int, Node]) -> set[int]:
        """The nodes placement avoids for this group: where it failed within its period
        and since that node last changed state (a node that went down and came back, or
        was paused and resumed, starts afresh; else failback could never happen)."""
        return {
            f.node
            for f in self.recent_failures(at_ms)
            if f.node in nodes and f.at_ms >= nodes[f.node].since_ms
        }


@attrs.define
class Table:
    nodes: dict[int, Node] = attrs.Factory(dict)
    groups: dict[str, Group] = attrs.Factory(dict)
    epoch: int = 0  # the last epoch granted, to any group
    clock_ms: int = 0  # the latest command time applied (time never runs backwards here)

    def owned_by(self, node: int) -> list[Group]:
        """The groups `node` owns, by name."""
        return [self.groups[n] for n in sorted(self.groups) if self.groups[n].owner == node]

    def check(self) -> None:
        """Assert the invariants (a violation is a bug of the part, not of a command)."""
        assert len(self.nodes) <= MAX_NODES and len(self.groups) <= MAX_GROUPS
        problem = _problem(self)
        assert problem is None, problem

    def node_infos(self) -> tuple[NodeInfo, ...]:
        return tuple(self.nodes[n].info() for n in sorted(self.nodes))

    def group_infos(self) -> tuple[GroupInfo, ...]:
        return tuple(self.groups[n].info() for n in sorted(self.groups))

    @classmethod
    def of(
        cls, nodes: tuple[NodeInfo, ...], groups: tuple[GroupInfo, ...], epoch: int, clock_ms: int
    ) -> Table:
        """The table a snapshot describes; DecodeError if it is not one `check` accepts."""
        table = cls(epoch=epoch, clock_ms=clock_ms)
        if len(nodes) > MAX_NODES or len(groups) > MAX_GROUPS:
            raise DecodeError("GroupsSnapshot", "too many nodes or groups")
        for i, n in enumerate(nodes):
            if i and n.node <= nodes[i - 1].node or n.node <= 0:
                raise DecodeError(f"GroupsSnapshot.nodes[{i}]", "ids are not ascending")
            table.nodes[n.node] = Node(n.node, n.state, n.incarnation, n.since_ms)
        for i, g in enumerate(groups):
            where = f"GroupsSnapshot.groups[{i}]"
            if i and g.spec.name <= groups[i - 1].spec.name:
                raise DecodeError(where, "names are not ascending")
            if len(g.failures) > MAX_FAILURE_RECORDS or list(g.failures) != sorted(
                g.failures, key=lambda f: f.at_ms
            ):
                raise DecodeError(f"{where}.failures", "too many, or not oldest first")
            if g.decision.group != g.spec.name:
                raise DecodeError(f"{where}.decision", "names another group")
            decision = None if g.decision == no_decision(g.spec.name) else g.decision
            table.groups[g.spec.name] = Group(
                g.spec, g.online, g.state, g.owner, g.epoch, g.moving_to, list(g.failures), decision
            )
        problem = _problem(table)
        if problem is not None:
            raise DecodeError("GroupsSnapshot", problem)
        return table


def _problem(table: Table) -> str | None:
    epochs: set[int] = set()
    for name in sorted(table.groups):
        g = table.groups[name]
        owned = g.state in OWNED
        if owned != (g.owner != NO_NODE) or (owned and g.owner not in table.nodes):
            return f"group {name!r}: {g.state.name} with owner {g.owner}"
        if g.moving_to != NO_NODE and g.state != GroupState.STOPPING:
            return f"group {name!r}: moving to {g.moving_to} while {g.state.name}"
        if not 0 <= g.epoch <= table.epoch or (owned and g.epoch == 0):
            return f"group {name!r}: epoch {g.epoch} (last granted {table.epoch})"
        if owned:
            if g.epoch in epochs:
                return f"group {name!r}: epoch {g.epoch} granted twice"
            epochs.add(g.epoch)
        if len(g.failures) > MAX_FAILURE_RECORDS:
            return f"group {name!r}: {len(g.failures)} failure records"
    return None
