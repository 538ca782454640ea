"""How `raftcluster group`, `node` and `events` print the cluster service: JSON documents
(`--json`) and text for people (tables and lines).

JSON: every value of statemachine/groups/messages.py becomes an object of its fields (an
enum by its name, a resource's parameters as an object, an event with its `type`, the
class name), so `--json` output reads as the Python API's values do.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from typing import Any

import attrs

from raftcluster.client.groups import ApplyResult
from raftcluster.client.nodes import MemberStatus
from statemachine.groups.messages import (
    NO_NODE,
    Decision,
    GroupChanged,
    GroupDefined,
    GroupEvent,
    GroupInfo,
    GroupPlaced,
    NodeChanged,
    NodeInfo,
    Placement,
    ResourceFailed,
    StaleReportRefused,
)

# -- JSON -------------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """`value` (a message of the groups part, or a tuple of them) as JSON-ready data."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if attrs.has(type(value)):
        out: dict[str, Any] = {}
        if isinstance(value, GroupEvent):
            out["type"] = type(value).__name__
        for field in attrs.fields(type(value)):
            item = getattr(value, field.name)
            if field.name == "params":
                out["params"] = dict(item)
            else:
                out[field.name] = to_json(item)
        return out
    return value


# -- text -------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    everything = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in everything) for i in range(len(header) - 1)]
    lines = []
    for row in everything:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _node(node: int) -> str:
    return str(node) if node != NO_NODE else "-"


def decision_text(decision: Decision) -> str:
    return f"{decision.rule}: {decision.reason}" if decision.reason else decision.rule


def groups_table(groups: Sequence[GroupInfo]) -> str:
    if not groups:
        return "no groups (raftcluster group create NAME, or group apply FILE.toml)"
    header = ("NAME", "STATE", "OWNER", "EPOCH", "ONLINE", "FAILBACK", "LAST DECISION")
    rows = [
        (
            g.spec.name,
            g.state.name + (f" -> {g.moving_to}" if g.moving_to else ""),
            _node(g.owner),
            str(g.epoch),
            "yes" if g.online else "no",
            g.spec.failback.name.lower(),
            decision_text(g.decision),
        )
        for g in groups
    ]
    return table(header, rows)


def group_details(g: GroupInfo) -> str:
    spec = g.spec
    where = f"on node {g.owner}" if g.owner else "no owner"
    moving = f", moving to node {g.moving_to}" if g.moving_to else ""
    lines = [
        f"group {spec.name}: {g.state.name}, {where}{moving} (epoch {g.epoch}); "
        f"wanted {'online' if g.online else 'offline'}",
        f"  preferred owners: {_nodes(spec.preferred_owners, 'none')}; "
        f"possible owners: {_nodes(spec.possible_owners, 'any')}",
        f"  priority {spec.priority}, stickiness {spec.stickiness}, failback "
        f"{_failback(g)}, failover threshold {spec.failover_threshold} within "
        f"{spec.failover_period_ms} ms",
    ]
    if spec.anti_affinity or spec.start_after or spec.colocate_with:
        lines.append(
            f"  anti-affinity {spec.anti_affinity or '-'}; starts after "
            f"{', '.join(spec.start_after) or '-'}; runs with {spec.colocate_with or '-'}"
        )
    lines.append("resources:" if spec.resources else "resources: none")
    for r in spec.resources:
        params = " ".join(f"{k}={v!r}" for k, v in r.params)
        lines.append(
            f"  {r.name} ({r.kind}) monitor every {r.monitor_interval_ms} ms, "
            f"{r.max_restarts} restarts within {r.restart_window_ms} ms"
            + (f"; {params}" if params else "")
        )
    if g.failures:
        lines.append("failures (oldest first):")
        lines += [f"  at {_time(f.at_ms)} on node {f.node}" for f in g.failures]
    else:
        lines.append("failures: none")
    lines.append(why_text(g.decision))
    return "\n".join(lines)


def _failback(g: GroupInfo) -> str:
    spec = g.spec
    name = spec.failback.name.lower()
    if name == "window":
        return f"window {spec.window_start_hour}..{spec.window_end_hour} h"
    if name == "stable":
        return f"stable after {spec.stable_ms} ms"
    return name


def _nodes(nodes: Sequence[int], empty: str) -> str:
    return ", ".join(map(str, nodes)) or empty


def _time(at_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at_ms / 1000))


def why_text(decision: Decision) -> str:
    where = f"node {decision.node}" if decision.node else "no node"
    lines = [f"decision: {where}, rule {decision.rule}: {decision.reason or '-'}"]
    if decision.scores:
        rows = [(str(s.node), str(s.score), s.why) for s in decision.scores]
        lines += ["  " + line for line in table(("NODE", "SCORE", "WHY"), rows).splitlines()]
    return "\n".join(lines)


def placement_text(placement: Placement, asked: str) -> str:
    rows = [
        (d.group, _node(d.node), d.rule, d.reason) for d in placement.decisions
    ]  # fmt: skip
    head = f"if {asked} (nothing was changed):"
    if not rows:
        return f"{head}\n  no groups"
    return head + "\n" + table(("GROUP", "NODE", "RULE", "WHY"), rows)


def apply_text(result: ApplyResult, path: str) -> str:
    lines = []
    if result.dry_run:
        lines.append(f"dry run of {path}: nothing was written")
    would = "would be " if result.dry_run else ""
    for word, names in (
        (f"{would}created", result.created),
        (f"{would}updated", result.updated),
        ("unchanged", result.unchanged),
        (f"{would}deleted", result.deleted),
    ):
        if names:
            lines.append(f"{word}: {', '.join(names)}")
    if result.left_alone:
        lines.append(
            f"left alone (in the cluster, not in the file; --prune deletes them): "
            f"{', '.join(result.left_alone)}"
        )
    if not result.dry_run:
        lines.append(f"{result.writes} writes (groups revision {result.revision})")
    return "\n".join(lines)


def nodes_table(nodes: Sequence[NodeInfo], groups: Sequence[GroupInfo]) -> str:
    if not nodes:
        return "no members of the cluster service yet"
    header = ("NODE", "STATE", "INCARNATION", "SINCE", "GROUPS")
    rows = [
        (
            str(n.node),
            n.state.name,
            str(n.incarnation),
            _time(n.since_ms),
            ", ".join(g.spec.name for g in groups if g.owner == n.node) or "-",
        )
        for n in nodes
    ]
    return table(header, rows)


def member_text(status: MemberStatus) -> str:
    n = status.info
    lines = [f"node {n.node}: {n.state.name} since {_time(n.since_ms)} "
             f"(incarnation {n.incarnation})"]  # fmt: skip
    if status.groups:
        rows = [(g.spec.name, g.state.name, str(g.epoch)) for g in status.groups]
        lines += [
            "owns:",
            *("  " + r for r in table(("GROUP", "STATE", "EPOCH"), rows).split("\n")),
        ]
    else:
        lines.append("owns no group")
    if status.incoming:
        lines.append("moving to it: " + ", ".join(g.spec.name for g in status.incoming))
    return "\n".join(lines)


def member_json(status: MemberStatus) -> dict[str, Any]:
    return {
        "node": to_json(status.info),
        "groups": to_json(status.groups),
        "incoming": to_json(status.incoming),
    }


def event_line(event: GroupEvent) -> str:
    """One line for people: `rev 12  group web  ONLINE on node 2 (epoch 5)`."""
    head = f"rev {event.revision}"
    if isinstance(event, GroupChanged):
        where = f" on node {event.owner}" if event.owner else ""
        return f"{head}  group {event.group}  {event.state.name}{where} (epoch {event.epoch})"
    if isinstance(event, GroupPlaced):
        d = event.decision
        if d.node:
            epoch = f" (epoch {event.epoch})" if event.epoch else ""
            what = f"placed on node {d.node} by {d.rule}{epoch}"
        else:
            what = f"{d.rule}, no node"
        return f"{head}  group {d.group}  {what}: {d.reason}"
    if isinstance(event, NodeChanged):
        removed = " (removed)" if event.removed else ""
        return f"{head}  node {event.node}  {event.state.name}{removed}"
    if isinstance(event, ResourceFailed):
        how = "restarted in place" if event.restarted else "given up there"
        detail = f": {event.detail}" if event.detail else ""
        return (f"{head}  group {event.group}  resource {event.resource or '-'} failed on node "
                f"{event.node} ({how}){detail}")  # fmt: skip
    if isinstance(event, StaleReportRefused):
        return (f"{head}  group {event.group}  stale report from node {event.node} under epoch "
                f"{event.epoch} refused (current epoch {event.current_epoch}, owner "
                f"{_node(event.current_owner)})")  # fmt: skip
    if isinstance(event, GroupDefined):
        return f"{head}  group {event.spec.name}  {'deleted' if event.deleted else 'defined'}"
    return f"{head}  {type(event).__name__}"
