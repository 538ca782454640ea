"""The cluster service's messages (tags 300-399): resources, groups, nodes and their events.

The `groups` part of the replicated state holds which nodes serve the cluster service,
which resource groups exist with their policies, and which node owns each group. Every
decision (where a group runs, when it fails over or back) is made by `placement.py` as
a command applies, so every replica makes the same one from the same log; every change is
an event with a revision of its own (`GroupEvent.revision`).

Names follow Windows Server Failover Clustering and Pacemaker where one exists
(docs/groups.md maps each): `preferred_owners` is WSFC's PreferredOwners, `stickiness`
Pacemaker's resource-stickiness, `failover_threshold` / `failover_period_ms` WSFC's
FailoverThreshold / FailoverPeriod, `failback` its AutoFailbackType with the window...

Time: the part never reads a clock. Commands that depend on time carry `at_ms`, the
proposer's clock (the leader's services for `NodeUp`, `NodeDown` and `GroupsTick`).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from statemachine.codec import Message, int_range, max_len, non_negative, positive, tagged
from statemachine.errors import Code, InvalidArgument, StaleEpoch

MAX_GROUPS = 1_000  # groups in the cluster: placement is O(groups x nodes) per decision
MAX_RESOURCES_PER_GROUP = 32
MAX_NODES = 64  # cluster-service members (as many as Raft members may be)
MAX_NAME_CHARS = 64  # a group's, a resource's or a resource type's name
MAX_PARAMS = 64  # parameters of one resource
MAX_PARAM_CHARS = 4_096  # one parameter's value (a command line, an environment value)
MAX_DETAIL_CHARS = 512  # what a report says of a failure
MAX_EVENTS_PER_QUERY = 1_000  # events one `GetEvents` returns at most
# A group's failure history is kept for its threshold, so the threshold bounds it: at most
# MAX_FAILOVER_THRESHOLD + 1 records per group (WSFC's default is a handful; Pacemaker's
# migration-threshold INFINITY is `failover_threshold` = this maximum with a short period).
MAX_FAILOVER_THRESHOLD = 100
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# The node id 0 means "no node" (a group with no owner).
NO_NODE = 0

_name = max_len(MAX_NAME_CHARS, "characters")
_node = int_range(1, 2**31 - 1)


def _check_name(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    _name(instance, attribute, value)
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise InvalidArgument(
            f"{type(instance).__name__}.{attribute.name}",
            f"{value!r}: 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'",
        )


def _optional_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value:
        _check_name(instance, attribute, value)


def _group_names(
    instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    where = f"{type(instance).__name__}.{attribute.name}"
    if len(value) > MAX_GROUPS:
        raise InvalidArgument(where, f"{len(value)} groups, over {MAX_GROUPS}")
    if len(set(value)) != len(value):
        raise InvalidArgument(where, f"{value!r}: names must be distinct")
    for name in value:
        _check_name(instance, attribute, name)


def _distinct_nodes(
    instance: object, attribute: attrs.Attribute[tuple[int, ...]], value: tuple[int, ...]
) -> None:
    where = f"{type(instance).__name__}.{attribute.name}"
    if len(value) > MAX_NODES:
        raise InvalidArgument(where, f"{len(value)} nodes, over {MAX_NODES}")
    if len(set(value)) != len(value) or any(n <= 0 for n in value):
        raise InvalidArgument(where, f"{value!r}: distinct positive node ids")


class NodeState(enum.IntEnum):
    """A cluster-service member's state, as the cluster agreed on it."""

    UP = 1  # running groups, taking new ones
    DOWN = 2  # declared down by the leader's node manager: its groups failed over
    PAUSED = 3  # an operator's pause: keeps its groups, takes no new ones
    DRAINING = 4  # an operator's drain: its groups move off (planned), it takes none


class GroupState(enum.IntEnum):
    OFFLINE = 1  # no owner: not wanted online, waiting for a node, or for a dependency
    STARTING = 2  # granted to its owner, which is starting its resources in order
    ONLINE = 3  # every resource started on its owner
    STOPPING = 4  # its owner is stopping its resources (a move, a drain, offline)
    FAILED = 5  # failed over more than its threshold within its period: stays offline


class Failback(enum.IntEnum):
    """When a group moves back to a more preferred owner that comes back."""

    NEVER = 1  # WSFC's default (PreventFailback)
    IMMEDIATE = 2  # as soon as it is up
    WINDOW = 3  # only while the hour of day is within [window_start_hour, window_end_hour)
    STABLE = 4  # once the preferred owner has been up for `stable_ms`


class ReportKind(enum.IntEnum):
    """What a group's owner reports of it (`GroupReport`)."""

    STARTED = 1  # every resource started: the group is online
    STOPPED = 2  # every resource stopped (a planned stop completed)
    FAILED = 3  # it could not keep the group running here (restarts used up): stopped
    RESTARTED = 4  # one resource failed and was restarted in place (for the record)


# -- resources and groups ------------------------------------------------------------------


@tagged(300)
@attrs.frozen
class ResourceSpec(Message):
    """One resource of a group: what to run and how to watch it.

    `kind` is `process`, `ocf` or a type a user registered on every node; `params` its
    parameters as (name, value) pairs, in name order. The owner's resource controller
    restarts a failed resource in place up to `max_restarts` times within
    `restart_window_ms`, then gives the group up (a `FAILED` report)."""

    name: str = attrs.field(validator=_check_name)
    kind: str = attrs.field(validator=_check_name)
    params: tuple[tuple[str, str], ...] = ()
    monitor_interval_ms: int = attrs.field(default=10_000, validator=int_range(100, DAY_MS))
    start_timeout_ms: int = attrs.field(default=20_000, validator=int_range(1, DAY_MS))
    stop_timeout_ms: int = attrs.field(default=20_000, validator=int_range(1, DAY_MS))
    monitor_timeout_ms: int = attrs.field(default=20_000, validator=int_range(1, DAY_MS))
    max_restarts: int = attrs.field(default=3, validator=int_range(0, 1_000))
    restart_window_ms: int = attrs.field(default=600_000, validator=int_range(1, 7 * DAY_MS))

    def __attrs_post_init__(self) -> None:
        names = [name for name, _ in self.params]
        where = f"ResourceSpec({self.name}).params"
        if len(names) > MAX_PARAMS:
            raise InvalidArgument(where, f"{len(names)} parameters, over {MAX_PARAMS}")
        if names != sorted(set(names)):
            raise InvalidArgument(where, "names must be distinct and in order")
        for name, value in self.params:
            if not name or len(name) > MAX_NAME_CHARS or len(value) > MAX_PARAM_CHARS:
                raise InvalidArgument(where, f"parameter {name[:MAX_NAME_CHARS]!r} is too long")


@tagged(301)
@attrs.frozen
class GroupSpec(Message):
    """A resource group and its policies (every default is WSFC's or Pacemaker's).

    - `resources` start in order and stop in reverse;
    - `preferred_owners`: nodes in order of preference; `possible_owners`: the only
      nodes it may run on (empty: any);
    - `anti_affinity`: groups of one class avoid sharing a node when they can;
    - `priority`: higher starts first; 0 means it never starts on its own (an operator's
      `SetGroupOnline` does);
    - `failover_threshold` failures within `failover_period_ms` and it is left `FAILED`;
    - `failback`: see `Failback` (`window_start_hour`, `window_end_hour`, `stable_ms`);
    - `stickiness`: a score bonus for staying where it runs (with no failback policy,
      an online group never moves while its owner can keep it);
    - `start_after`: groups that must be online before it starts; `colocate_with`: a
      group it must run with (on that group's owner).
    """

    name: str = attrs.field(validator=_check_name)
    resources: tuple[ResourceSpec, ...] = attrs.field(
        default=(), validator=max_len(MAX_RESOURCES_PER_GROUP, "resources")
    )
    preferred_owners: tuple[int, ...] = attrs.field(default=(), validator=_distinct_nodes)
    possible_owners: tuple[int, ...] = attrs.field(default=(), validator=_distinct_nodes)
    anti_affinity: str = attrs.field(default="", validator=_optional_name)
    priority: int = attrs.field(default=1, validator=int_range(0, 1_000_000))
    failover_threshold: int = attrs.field(
        default=10, validator=int_range(0, MAX_FAILOVER_THRESHOLD)
    )
    failover_period_ms: int = attrs.field(default=6 * HOUR_MS, validator=int_range(1, 30 * DAY_MS))
    failback: Failback = Failback.NEVER
    window_start_hour: int = attrs.field(default=0, validator=int_range(0, 23))
    window_end_hour: int = attrs.field(default=0, validator=int_range(0, 24))
    stable_ms: int = attrs.field(default=0, validator=int_range(0, 30 * DAY_MS))
    stickiness: int = attrs.field(default=0, validator=int_range(0, 1_000_000))
    start_after: tuple[str, ...] = attrs.field(default=(), validator=_group_names)
    colocate_with: str = attrs.field(default="", validator=_optional_name)

    def __attrs_post_init__(self) -> None:
        names = [r.name for r in self.resources]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"GroupSpec({self.name}).resources", "names must be distinct")
        if self.name in self.start_after or self.name == self.colocate_with:
            raise InvalidArgument(f"GroupSpec({self.name})", "a group cannot depend on itself")


# -- commands ------------------------------------------------------------------------------


@tagged(310)
@attrs.frozen
class JoinNode(Message):
    """`node` serves the cluster service from now on (UP), in its `incarnation` (the one
    its heartbeats carry: a later `NodeUp` with the same one is not a restart)."""

    node: int = attrs.field(validator=_node)
    at_ms: int = attrs.field(validator=non_negative)
    incarnation: int = attrs.field(default=0, validator=non_negative)


@tagged(311)
@attrs.frozen
class RemoveNode(Message):
    """`node` no longer serves the cluster service (its groups fail over)."""

    node: int = attrs.field(validator=_node)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(312)
@attrs.frozen
class NodeUp(Message):
    """The leader's node manager heard from `node` again (`incarnation`: its start count)."""

    node: int = attrs.field(validator=_node)
    incarnation: int = attrs.field(validator=non_negative)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(313)
@attrs.frozen
class NodeDown(Message):
    """The leader's node manager has not heard from `node` for `node_down_after_ms`: by
    the timing rule it has fenced itself, so its groups fail over at once."""

    node: int = attrs.field(validator=_node)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(314)
@attrs.frozen
class PauseNode(Message):
    node: int = attrs.field(validator=_node)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(315)
@attrs.frozen
class DrainNode(Message):
    """Move every group off `node` (planned: stopped there, then started elsewhere)."""

    node: int = attrs.field(validator=_node)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(316)
@attrs.frozen
class ResumeNode(Message):
    """A paused or drained node takes groups again; with `failback`, the groups that
    prefer it move back now (as planned moves), whatever their failback policy."""

    node: int = attrs.field(validator=_node)
    failback: bool
    at_ms: int = attrs.field(validator=non_negative)


@tagged(317)
@attrs.frozen
class CreateGroup(Message):
    spec: GroupSpec
    online: bool  # wanted online now (a priority-0 group starts only if so)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(318)
@attrs.frozen
class UpdateGroup(Message):
    """Replace a group's spec (its resources change only while it is offline)."""

    spec: GroupSpec
    at_ms: int = attrs.field(validator=non_negative)


@tagged(319)
@attrs.frozen
class DeleteGroup(Message):
    """Delete an offline group."""

    name: str = attrs.field(validator=_check_name)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(320)
@attrs.frozen
class MoveGroup(Message):
    """A planned move of `name` to `node` (0: wherever placement puts it, away from its
    owner)."""

    name: str = attrs.field(validator=_check_name)
    node: int = attrs.field(validator=int_range(0, 2**31 - 1))
    at_ms: int = attrs.field(validator=non_negative)


@tagged(321)
@attrs.frozen
class SetGroupOnline(Message):
    """Want `name` online (clears FAILED, and starts a priority-0 group)."""

    name: str = attrs.field(validator=_check_name)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(322)
@attrs.frozen
class SetGroupOffline(Message):
    name: str = attrs.field(validator=_check_name)
    at_ms: int = attrs.field(validator=non_negative)


@tagged(323)
@attrs.frozen
class GroupReport(Message):
    """What `node`, owning `group` under `epoch`, did with it. Refused unless `node` owns
    the group under exactly that epoch: the result is then a `ReportRefused` (code
    STALE_EPOCH; not a `Failure`, because the refusal is recorded: a `StaleReportRefused`
    event). A repeated report (STARTED when already ONLINE under that epoch, STOPPED
    when that grant is already stopped) is accepted and changes nothing."""

    group: str = attrs.field(validator=_check_name)
    node: int = attrs.field(validator=_node)
    epoch: int = attrs.field(validator=positive)
    kind: ReportKind
    resource: str = attrs.field(default="", validator=max_len(MAX_NAME_CHARS, "characters"))
    detail: str = attrs.field(default="", validator=max_len(MAX_DETAIL_CHARS, "characters"))
    at_ms: int = attrs.field(default=0, validator=non_negative)


@tagged(324)
@attrs.frozen
class GroupsTick(Message):
    """Time passes (the leader's clock): failback windows and stable timers are judged,
    failures older than their period forgotten."""

    at_ms: int = attrs.field(validator=non_negative)


@tagged(325)
@attrs.frozen
class ReportRefused(Message):
    """The result of a `GroupReport` refused as stale: `node` does not own `group` under
    `epoch` (the group's grant is `current_epoch` to `current_owner`; 0 and 0 when the
    group does not exist). The refusal is recorded as a `StaleReportRefused` event, so
    this is a result, not a `Failure`; `error()` is the typed exception to raise."""

    group: str
    node: int
    epoch: int
    current_epoch: int
    current_owner: int
    revision: int  # of the `StaleReportRefused` event
    code: int = int(Code.STALE_EPOCH)

    def error(self) -> StaleEpoch:
        return StaleEpoch(
            f"node {self.node} does not own {self.group!r} under epoch {self.epoch} "
            f"(current epoch {self.current_epoch}, owner {self.current_owner})",
            detail=self.current_epoch,
        )


# -- what the part holds ---------------------------------------------------------------------


@tagged(326)
@attrs.frozen
class FenceFailed(Message):
    """The leader ran the fencing agent for `node` (which it found silent) and the agent
    failed (`detail`): the node is not declared down, its groups stay where they are, and
    the failure is recorded (`NodeFenceFailed`) for operators. Nothing else changes."""

    node: int = attrs.field(validator=_node)
    detail: str = attrs.field(validator=max_len(MAX_DETAIL_CHARS, "characters"))
    at_ms: int = attrs.field(validator=non_negative)


@tagged(330)
@attrs.frozen
class NodeInfo(Message):
    node: int
    state: NodeState
    incarnation: int
    since_ms: int  # when it entered its state (the proposer's clock)


@tagged(331)
@attrs.frozen
class Score(Message):
    node: int
    score: int
    why: str  # how the score was made ("preferred 1st +3000, anti-affinity -500")


@tagged(332)
@attrs.frozen
class Decision(Message):
    """Where placement put a group and why: `node` (0: nowhere), the rule that decided
    (`rule`: a word such as "start", "stay", "failover", "failback" (its policy's),
    "resume-failback" (an operator's resume with failback), "move", "drain", "wait",
    "failed", "offline"), a sentence for people (`reason`), and every node's score
    (only eligible nodes score; the others are named in `reason`)."""

    group: str
    node: int
    rule: str
    reason: str
    scores: tuple[Score, ...] = ()


@tagged(333)
@attrs.frozen
class FailureRecord(Message):
    """One failure of a group on a node, remembered for `failover_period_ms`."""

    at_ms: int
    node: int


@tagged(334)
@attrs.frozen
class GroupInfo(Message):
    """A group's spec and where it stands."""

    spec: GroupSpec
    state: GroupState
    owner: int  # NO_NODE when offline
    epoch: int  # of the current grant (0: never granted); grows with every grant
    online: bool  # wanted online
    moving_to: int  # a planned move's target while STOPPING (0: none)
    failures: tuple[FailureRecord, ...]
    decision: Decision  # the last placement decision


@tagged(335)
@attrs.frozen
class GroupsSnapshot(Message):
    nodes: tuple[NodeInfo, ...]
    groups: tuple[GroupInfo, ...]
    epoch: int  # the last epoch granted (epochs grow across every group)
    revision: int  # of the last event
    events: tuple[GroupEvent, ...]  # the retained events, oldest first
    first_revision: int  # the oldest event still retained (revision + 1 when none)
    clock_ms: int = 0  # the latest `at_ms` of a command that ran placement (never goes back)


# -- events ----------------------------------------------------------------------------------


class GroupEvent(Message):
    """Base of the part's events: each carries its revision (1, 2, 3... without gaps)."""

    __slots__ = ()
    revision: int


@tagged(340)
@attrs.frozen
class NodeChanged(GroupEvent):
    revision: int
    node: int
    state: NodeState
    at_ms: int
    removed: bool = False  # the node left the cluster service (`RemoveNode`)


@tagged(341)
@attrs.frozen
class GroupPlaced(GroupEvent):
    """A placement decision that changed where a group goes (or why it goes nowhere)."""

    revision: int
    decision: Decision
    epoch: int  # the grant's epoch when it granted the group to `decision.node`
    at_ms: int  # the time of the command that caused it (the proposer's clock)


@tagged(342)
@attrs.frozen
class GroupChanged(GroupEvent):
    """A group's state changed (on `owner`, under `epoch`)."""

    revision: int
    group: str
    state: GroupState
    owner: int
    epoch: int


@tagged(343)
@attrs.frozen
class ResourceFailed(GroupEvent):
    revision: int
    group: str
    node: int
    resource: str
    detail: str
    restarted: bool  # restarted in place (else the group was given up there)


@tagged(344)
@attrs.frozen
class StaleReportRefused(GroupEvent):
    revision: int
    group: str
    node: int
    epoch: int  # the report's
    current_epoch: int
    current_owner: int


@tagged(345)
@attrs.frozen
class GroupDefined(GroupEvent):
    """A group was created, updated (`spec`) or deleted (`deleted`)."""

    revision: int
    spec: GroupSpec
    deleted: bool


@tagged(346)
@attrs.frozen
class NodeFenceFailed(GroupEvent):
    """The fencing agent failed for `node`: its groups stay until it is fenced or heard."""

    revision: int
    node: int
    detail: str
    at_ms: int


# -- queries ---------------------------------------------------------------------------------


@tagged(350)
@attrs.frozen
class ListGroups(Message):
    pass


@tagged(351)
@attrs.frozen
class GroupList(Message):
    groups: tuple[GroupInfo, ...]
    revision: int


@tagged(352)
@attrs.frozen
class ListNodes(Message):
    pass


@tagged(353)
@attrs.frozen
class NodeList(Message):
    nodes: tuple[NodeInfo, ...]
    revision: int


@tagged(354)
@attrs.frozen
class Why(Message):
    """The last placement decision of `group`, with every node's score."""

    group: str = attrs.field(validator=_check_name)


@tagged(355)
@attrs.frozen
class WhatIf(Message):
    """Where every group would go if this happened (nothing is changed): `node_down`,
    `drain` (node ids, 0: none) and a move (`move_group` to `move_to`)."""

    node_down: int = attrs.field(default=0, validator=non_negative)
    drain: int = attrs.field(default=0, validator=non_negative)
    move_group: str = attrs.field(default="", validator=max_len(MAX_NAME_CHARS, "characters"))
    move_to: int = attrs.field(default=0, validator=non_negative)
    at_ms: int = attrs.field(default=0, validator=non_negative)


@tagged(356)
@attrs.frozen
class Placement(Message):
    """Every group's decision (the answer to `WhatIf`)."""

    decisions: tuple[Decision, ...]


@tagged(357)
@attrs.frozen
class GetEvents(Message):
    """Events from `from_revision` on (at most `limit`). A revision no longer retained is
    refused with code COMPACTED (detail: the oldest retained), as the kv watch does."""

    from_revision: int = attrs.field(validator=positive)
    limit: int = attrs.field(
        default=MAX_EVENTS_PER_QUERY, validator=int_range(1, MAX_EVENTS_PER_QUERY)
    )


@tagged(358)
@attrs.frozen
class EventPage(Message):
    events: tuple[GroupEvent, ...]
    revision: int  # the latest revision (events end there, or `limit` cut them)


@tagged(359)
@attrs.frozen
class Done(Message):
    """The result of a command that returns nothing more than the revision it reached."""

    revision: int
