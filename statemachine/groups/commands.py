"""The groups part's command handlers: check everything, then change through `Change`.

Each handler raises (`Rejected`, `LimitExceeded`...) before it changes anything, so a
refused command leaves the table and the event log as they were. A command that would
change nothing (a `NodeUp` of a node already up with that incarnation, a `GroupsTick`
with nothing due, a repeated report) changes nothing and emits nothing.

A `GroupReport` from a node that does not own the group under that epoch is not an
error: it is answered with `ReportRefused` and recorded (`StaleReportRefused`), so the
refusal is visible in the event stream; see docs/groups.md, "Reports and epochs".
"""

from __future__ import annotations

from collections.abc import Callable

from statemachine.codec import Message
from statemachine.errors import LimitExceeded, Rejected
from statemachine.groups.change import Change
from statemachine.groups.messages import (
    MAX_GROUPS,
    MAX_NODES,
    NO_NODE,
    CreateGroup,
    Decision,
    DeleteGroup,
    Done,
    DrainNode,
    FenceFailed,
    GroupDefined,
    GroupReport,
    GroupSpec,
    GroupState,
    GroupsTick,
    JoinNode,
    MoveGroup,
    NodeChanged,
    NodeDown,
    NodeFenceFailed,
    NodeState,
    NodeUp,
    PauseNode,
    RemoveNode,
    ReportKind,
    ReportRefused,
    ResourceFailed,
    ResumeNode,
    SetGroupOffline,
    SetGroupOnline,
    StaleReportRefused,
    UpdateGroup,
)
from statemachine.groups.placement import Action, Hints, place
from statemachine.groups.table import Group, Node, Table

Handler = Callable[[Table, Message, Change], Message]


def _done(c: Change) -> Done:
    return Done(c.log.revision)


def _member(t: Table, node: int) -> Node:
    found = t.nodes.get(node)
    if found is None:
        raise Rejected(f"node {node} is not a member of the cluster service")
    return found


def _group(t: Table, name: str) -> Group:
    found = t.groups.get(name)
    if found is None:
        raise Rejected(f"no group named {name!r}")
    return found


def _set_node(c: Change, node: Node, state: NodeState) -> None:
    node.state, node.since_ms = state, c.at_ms
    c.emit(NodeChanged, node.node, state, c.at_ms)


# -- nodes -----------------------------------------------------------------------------------


def join_node(t: Table, cmd: JoinNode, c: Change) -> Message:
    if cmd.node in t.nodes:
        raise Rejected(f"node {cmd.node} is already a member")
    if len(t.nodes) >= MAX_NODES:
        raise LimitExceeded("JoinNode.node", MAX_NODES, len(t.nodes) + 1, "nodes")
    t.nodes[cmd.node] = node = Node(cmd.node, NodeState.UP, cmd.incarnation, cmd.at_ms)
    _set_node(c, node, NodeState.UP)
    c.settle()
    return _done(c)


def fence_failed(t: Table, cmd: FenceFailed, c: Change) -> Message:
    _member(t, cmd.node)
    c.emit(NodeFenceFailed, cmd.node, cmd.detail, cmd.at_ms)
    return _done(c)


def remove_node(t: Table, cmd: RemoveNode, c: Change) -> Message:
    node = _member(t, cmd.node)
    node.state, node.since_ms = NodeState.DOWN, cmd.at_ms
    c.emit(NodeChanged, node.node, NodeState.DOWN, cmd.at_ms, True)
    for g in t.owned_by(cmd.node):
        c.release(g, NO_NODE, "failover")
    del t.nodes[cmd.node]
    c.settle()
    return _done(c)


def node_up(t: Table, cmd: NodeUp, c: Change) -> Message:
    node = t.nodes.get(cmd.node)
    if node is None or cmd.incarnation < node.incarnation:
        return _done(c)  # not a member, or news older than what we know: nothing
    if node.state == NodeState.DOWN:
        node.incarnation = cmd.incarnation
        _set_node(c, node, NodeState.UP)
    elif cmd.incarnation > node.incarnation:  # it restarted while we thought it up
        node.incarnation = cmd.incarnation
        c.emit(NodeChanged, node.node, node.state, c.at_ms)
        for g in t.owned_by(cmd.node):
            c.release(g, cmd.node, "restart")
    else:
        return _done(c)
    c.settle()
    return _done(c)


def node_down(t: Table, cmd: NodeDown, c: Change) -> Message:
    node = t.nodes.get(cmd.node)
    if node is None or node.state == NodeState.DOWN:
        return _done(c)
    _set_node(c, node, NodeState.DOWN)
    for g in t.owned_by(cmd.node):
        c.release(g, cmd.node, "failover")
    c.settle()
    return _done(c)


def pause_node(t: Table, cmd: PauseNode, c: Change) -> Message:
    return _hold(t, cmd.node, NodeState.PAUSED, c)


def drain_node(t: Table, cmd: DrainNode, c: Change) -> Message:
    return _hold(t, cmd.node, NodeState.DRAINING, c)


def _hold(t: Table, node_id: int, state: NodeState, c: Change) -> Message:
    """An operator's pause or drain of an up node (placement then keeps, or moves off,
    its groups); asked again, it changes nothing."""
    node = _member(t, node_id)
    if node.state == NodeState.DOWN:
        raise Rejected(f"node {node_id} is down")
    if node.state == state:
        return _done(c)
    _set_node(c, node, state)
    c.settle()
    return _done(c)


def resume_node(t: Table, cmd: ResumeNode, c: Change) -> Message:
    node = _member(t, cmd.node)
    if node.state == NodeState.DOWN:
        raise Rejected(f"node {cmd.node} is down")
    if node.state != NodeState.UP:
        _set_node(c, node, NodeState.UP)
    elif not cmd.failback:
        return _done(c)
    if cmd.failback:
        c.failback_to = cmd.node
    c.settle()
    return _done(c)


# -- groups ----------------------------------------------------------------------------------


def _check_dependencies(t: Table, spec: GroupSpec) -> None:
    """Refuse a spec whose start_after / colocate_with would close a cycle (undefined
    names are allowed: the group waits for them)."""
    seen: set[str] = set()
    stack = _dependencies(spec)
    while stack:
        name = stack.pop()
        if name == spec.name:
            raise Rejected(f"group {spec.name!r}: start_after / colocate_with form a cycle")
        if name in seen or name not in t.groups:
            continue
        seen.add(name)
        stack.extend(_dependencies(t.groups[name].spec))


def _dependencies(spec: GroupSpec) -> list[str]:
    colocate = [spec.colocate_with] if spec.colocate_with else []
    return sorted({*spec.start_after, *colocate})


def create_group(t: Table, cmd: CreateGroup, c: Change) -> Message:
    if cmd.spec.name in t.groups:
        raise Rejected(f"a group named {cmd.spec.name!r} exists")
    if len(t.groups) >= MAX_GROUPS:
        raise LimitExceeded("CreateGroup.spec", MAX_GROUPS, len(t.groups) + 1, "groups")
    _check_dependencies(t, cmd.spec)
    t.groups[cmd.spec.name] = Group(cmd.spec, cmd.online)
    c.emit(GroupDefined, cmd.spec, False)
    c.settle()
    return _done(c)


def update_group(t: Table, cmd: UpdateGroup, c: Change) -> Message:
    g = _group(t, cmd.spec.name)
    stopped = g.state in (GroupState.OFFLINE, GroupState.FAILED)
    if cmd.spec.resources != g.spec.resources and not stopped:
        raise Rejected(f"group {g.name!r} is {g.state.name}: its resources change only offline")
    _check_dependencies(t, cmd.spec)
    if cmd.spec == g.spec:
        return _done(c)
    g.spec = cmd.spec
    c.emit(GroupDefined, cmd.spec, False)
    c.settle()
    return _done(c)


def delete_group(t: Table, cmd: DeleteGroup, c: Change) -> Message:
    g = _group(t, cmd.name)
    if g.state not in (GroupState.OFFLINE, GroupState.FAILED):
        raise Rejected(f"group {g.name!r} is {g.state.name}: set it offline first")
    del t.groups[cmd.name]
    c.emit(GroupDefined, g.spec, True)
    c.settle()
    return _done(c)


def move_group(t: Table, cmd: MoveGroup, c: Change) -> Message:
    g = _group(t, cmd.name)
    if g.state not in (GroupState.STARTING, GroupState.ONLINE) or not g.online:
        raise Rejected(f"group {g.name!r} is {g.state.name}: only a running group moves")
    if cmd.node == g.owner:
        return _done(c)
    if cmd.node == NO_NODE:
        hints = Hints(away={g.name: g.owner})
        choices = place(t.groups, t.nodes, c.at_ms, c.config.day_ms, hints)
        mine = next(x for x in choices if x.decision.group == g.name)
        if mine.action != Action.MOVE:
            raise Rejected(f"group {g.name!r} cannot move: {mine.decision.reason}")
        c.away[g.name] = g.owner
        c.settle()
        return _done(c)
    target = _member(t, cmd.node)
    spec = g.spec
    if target.state != NodeState.UP:
        raise Rejected(f"node {cmd.node} is {target.state.name}: it takes no group")
    if spec.possible_owners and cmd.node not in spec.possible_owners:
        raise Rejected(f"node {cmd.node} is not a possible owner of {g.name!r}")
    if spec.colocate_with:
        raise Rejected(f"{g.name!r} runs with {spec.colocate_with!r}: move that group")
    reason = f"moved by an operator from node {g.owner} to node {cmd.node}"
    g.state, g.moving_to = GroupState.STOPPING, cmd.node
    c.record(g, Decision(g.name, cmd.node, "move", reason))
    c.group_changed(g)
    c.settle()
    return _done(c)


def set_online(t: Table, cmd: SetGroupOnline, c: Change) -> Message:
    g = _group(t, cmd.name)
    if g.online and g.state != GroupState.FAILED:
        return _done(c)
    g.online = True
    if g.state == GroupState.FAILED:
        g.state, g.failures = GroupState.OFFLINE, []
        c.group_changed(g)
    c.settle()
    return _done(c)


def set_offline(t: Table, cmd: SetGroupOffline, c: Change) -> Message:
    g = _group(t, cmd.name)
    if not g.online and g.state != GroupState.FAILED and g.moving_to == NO_NODE:
        return _done(c)
    g.online = False
    if g.state == GroupState.FAILED:
        g.state = GroupState.OFFLINE
        c.group_changed(g)
    elif g.state == GroupState.STOPPING and g.moving_to != NO_NODE:
        g.moving_to = NO_NODE  # the move's stop continues; nothing starts after it
        c.record(g, Decision(g.name, NO_NODE, "offline", f"set offline: stops on {g.owner}"))
        c.group_changed(g)
    c.settle()
    return _done(c)


def tick(t: Table, cmd: GroupsTick, c: Change) -> Message:
    c.forget_failures()
    c.settle()
    return _done(c)


def report(t: Table, cmd: GroupReport, c: Change) -> Message:
    g = t.groups.get(cmd.group)
    if g is None or g.owner != cmd.node or g.epoch != cmd.epoch:
        over = g is not None and g.epoch == cmd.epoch and g.owner == NO_NODE
        if over and cmd.kind in (ReportKind.STOPPED, ReportKind.FAILED):
            return _done(c)  # that grant is already over: a repeated stop
        epoch, owner = (g.epoch, g.owner) if g is not None else (0, NO_NODE)
        revision = c.emit(StaleReportRefused, cmd.group, cmd.node, cmd.epoch, epoch, owner)
        return ReportRefused(cmd.group, cmd.node, cmd.epoch, epoch, owner, revision)
    kind = cmd.kind
    if kind == ReportKind.RESTARTED:
        c.emit(ResourceFailed, g.name, cmd.node, cmd.resource, cmd.detail, True)
        return _done(c)
    if kind == ReportKind.STARTED:
        if g.state != GroupState.STARTING:
            return _done(c)  # already online, or stopping: nothing to change
        g.state = GroupState.ONLINE
        c.group_changed(g)
    elif kind == ReportKind.STOPPED and g.state == GroupState.STOPPING:
        c.release(g, NO_NODE, "move")
    else:  # FAILED, or STOPPED unasked: it no longer runs there
        c.emit(ResourceFailed, g.name, cmd.node, cmd.resource, cmd.detail, False)
        c.release(g, cmd.node, "failover")
    c.settle()
    return _done(c)


HANDLERS: dict[type[Message], Handler] = {
    JoinNode: join_node,  # type: ignore[dict-item]
    RemoveNode: remove_node,  # type: ignore[dict-item]
    FenceFailed: fence_failed,  # type: ignore[dict-item]
    NodeUp: node_up,  # type: ignore[dict-item]
    NodeDown: node_down,  # type: ignore[dict-item]
    PauseNode: pause_node,  # type: ignore[dict-item]
    DrainNode: drain_node,  # type: ignore[dict-item]
    ResumeNode: resume_node,  # type: ignore[dict-item]
    CreateGroup: create_group,  # type: ignore[dict-item]
    UpdateGroup: update_group,  # type: ignore[dict-item]
    DeleteGroup: delete_group,  # type: ignore[dict-item]
    MoveGroup: move_group,  # type: ignore[dict-item]
    SetGroupOnline: set_online,  # type: ignore[dict-item]
    SetGroupOffline: set_offline,  # type: ignore[dict-item]
    GroupReport: report,  # type: ignore[dict-item]
    GroupsTick: tick,  # type: ignore[dict-item]
}
