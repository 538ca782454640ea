"""`Change`: how one accepted command changes the table, and the events that say so.

A command handler (commands.py) checks everything first, raising before any change;
then it changes the table through a `Change`, which numbers every event (`EventLog`),
and ends with `settle`: placement runs to a fixed point and its choices are carried out
(grants with new epochs, planned moves, stops). Grants and moves happen only here, so
the rules about epochs live in one place:
- a grant takes `table.epoch + 1`: epochs grow across all groups and never repeat;
- a group loses its owner only through `release` (a stop confirmed, a failure, its
  owner down, restarted or removed), which records a failure when there was one and
  leaves the group FAILED past its threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from statemachine.codec import Message
from statemachine.groups.config import GroupsConfig
from statemachine.groups.events import EventLog
from statemachine.groups.messages import (
    NO_NODE,
    Decision,
    FailureRecord,
    GroupChanged,
    GroupEvent,
    GroupPlaced,
    GroupState,
)
from statemachine.groups.placement import Action, Choice, Hints, place
from statemachine.groups.table import MAX_FAILURE_RECORDS, Group, Table, no_decision


class Change:
    def __init__(
        self,
        table: Table,
        log: EventLog,
        config: GroupsConfig,
        emit: Callable[[Message], None],
        at_ms: int,
    ) -> None:
        self.table = table
        self.log = log
        self.config = config
        self._emit = emit
        self.at_ms = at_ms
        self.targets: dict[str, int] = {}
        self.away: dict[str, int] = {}
        self.rules: dict[str, str] = {}
        self.failback_to = NO_NODE
        self.settled = False  # placement ran: the table is judged as of `at_ms`

    def emit(self, kind: type[GroupEvent], *fields: Any) -> int:
        return self.log.add(self._emit, kind, *fields)

    def hints(self) -> Hints:
        return Hints(self.targets, self.away, self.rules, self.failback_to)

    def group_changed(self, g: Group) -> None:
        self.emit(GroupChanged, g.name, g.state, g.owner, g.epoch)

    def record(self, g: Group, decision: Decision, epoch: int = 0) -> None:
        g.decision = decision
        self.emit(GroupPlaced, decision, epoch, self.at_ms)

    # -- losing an owner -------------------------------------------------------------------

    def release(self, g: Group, failed_on: int, rule: str) -> None:
        """`g` no longer runs on its owner: a stop confirmed (`failed_on` 0) or a failure
        on `failed_on`. A planned move's target is kept as a hint for placement."""
        assert g.owner != NO_NODE, f"{g.name} has no owner to release"
        if g.moving_to != NO_NODE:
            self.targets[g.name] = g.moving_to
        self.rules[g.name] = rule
        g.owner, g.moving_to, g.state = NO_NODE, NO_NODE, GroupState.OFFLINE
        if failed_on != NO_NODE and g.online:
            g.failures.append(FailureRecord(self.at_ms, failed_on))
            del g.failures[:-MAX_FAILURE_RECORDS]
            recent = len(g.recent_failures(self.at_ms))
            spec = g.spec
            if recent > spec.failover_threshold:
                g.state = GroupState.FAILED
                self.group_changed(g)
                reason = (
                    f"failed {recent} times within {spec.failover_period_ms} ms, over its "
                    f"threshold of {spec.failover_threshold}: stays failed until set online"
                )
                self.record(g, Decision(g.name, NO_NODE, "failed", reason))
                return
            if spec.priority == 0:
                g.online = False  # priority 0: no automatic start after a failure
        self.group_changed(g)

    def forget_failures(self) -> None:
        for name in sorted(self.table.groups):
            g = self.table.groups[name]
            g.failures = g.recent_failures(self.at_ms)

    # -- placement -----------------------------------------------------------------------

    def settle(self) -> None:
        """Run placement and carry out its choices until it asks for nothing more (each
        group is granted or starts a move at most once a round, and a moving group waits
        for its stop, so this ends)."""
        table = self.table
        for _ in range(2 * len(table.groups) + 2):
            choices = place(table.groups, table.nodes, self.at_ms, self.config.day_ms, self.hints())
            acted = [self._carry_out(c) for c in choices]
            if not any(acted):
                table.check()
                self.settled = True
                return
        raise AssertionError("placement did not settle")

    def _carry_out(self, choice: Choice) -> bool:
        d = choice.decision
        g = self.table.groups[d.group]
        if choice.action == Action.GRANT:
            assert g.owner == NO_NODE and d.node in self.table.nodes
            self.table.epoch += 1
            assert self.table.epoch > g.epoch
            g.owner, g.epoch, g.state = d.node, self.table.epoch, GroupState.STARTING
            self.targets.pop(g.name, None)
            self.record(g, d, g.epoch)
            self.group_changed(g)
            return True
        if choice.action in (Action.MOVE, Action.STOP):
            assert g.state in (GroupState.STARTING, GroupState.ONLINE)
            g.state, g.moving_to = GroupState.STOPPING, d.node
            self.record(g, d)
            self.group_changed(g)
            return True
        if d.rule != "stay" and d != (g.decision or no_decision(g.name)):
            self.record(g, d)  # a new reason to wait (or to stay): said once
        return False
