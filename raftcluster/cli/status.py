"""`raftcluster status --cluster DIR | --endpoints HOST:PORT,... [--json]`.

Asks every node for its NodeInfo (at once, each within --timeout-ms) and shows each
node's id, address, process id, role, term, leader, commit and apply index, and health
(reachable or why not). Exit status 0 when a quorum of the voters answered, 2 when no
quorum is reachable (the cluster cannot serve writes or linearizable reads), 1 for a bad
command line or cluster file.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import trio

from raftcluster.cli.output import add_json_flag, emit
from raftcluster.cli.target import add_target_options, resolve
from raftcluster.client.probe import Probe, probe_all
from raftcluster.node.protocol import NodeStatus
from raftcluster.raft.quorum import majority

EXIT_NO_QUORUM = 2


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "status",
        help="show every node's role, term, indexes and health",
        description="Show each node of a cluster; exit 2 when no quorum is reachable.",
    )
    add_target_options(parser)
    parser.add_argument("--timeout-ms", type=int, default=2000, metavar="MS",
                        help="how long to wait for each node (default 2000)")  # fmt: skip
    add_json_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    target = resolve(args)
    probes = trio.run(lambda: probe_all(target.targets, target.transport,
                                        timeout_ms=args.timeout_ms))  # fmt: skip
    summary = summarize(target.transport.cluster_id, probes)
    emit(args, summary, human)
    return 0 if summary["quorum"] else EXIT_NO_QUORUM


def summarize(cluster_id: str, probes: list[Probe]) -> dict[str, Any]:
    """The status document (`--json`): the nodes, the leader, whether a quorum answered."""
    nodes = [_node(p) for p in probes]
    infos = [p.info for p in probes if p.info is not None]
    # The membership as the freshest log records it: the leader's, else the node that
    # applied the most (a removed node's own log stops at its removal).
    freshest = max(
        infos, key=lambda i: (i.status.role == "leader", i.status.term, i.status.applied_index),
        default=None,
    )  # fmt: skip
    voters: set[int] = set(freshest.status.voters) if freshest is not None else set()
    members = _members(freshest.status) if freshest is not None else []
    if not voters:
        voters = {p.target.node_id for p in probes if p.target.node_id}
    answered = {info.node_id for info in infos} & voters
    needed = majority(len(voters)) if voters else 1
    # The leader is a node that says so (the highest term wins: an old leader that has not
    # yet heard of the new term may still say so too). Followers' belief is only a hint.
    leaders = [i for i in infos if i.status.role == "leader"]
    leader = max(leaders, key=lambda i: i.status.term) if leaders else None
    believed = Counter(i.status.leader for i in infos if i.status.leader)
    problems = Counter(p.problem for p in probes if not p.reachable)
    return {
        "cluster_id": cluster_id,
        "leader": leader.node_id if leader else 0,
        "leader_term": leader.status.term if leader else 0,
        "followers_believe": believed.most_common(1)[0][0] if believed else 0,
        "voters": sorted(voters),
        "learners": [m["id"] for m in members if m["role"] == "learner"],
        "members": members,
        "answered": len(answered),
        "needed": needed,
        "quorum": len(answered) >= needed,
        "problems": dict(problems),
        "nodes": nodes,
    }


def _members(status: NodeStatus) -> list[dict[str, Any]]:
    """Each member's id, role and addresses, as `status`'s log records them."""
    recorded = {m.node_id: m for m in status.members}
    out = []
    for node_id in sorted(status.voters + status.learners):
        m = recorded.get(node_id)
        role = "voter" if node_id in status.voters else "learner"
        addresses = list(m.addresses) if m is not None else []
        out.append({"id": node_id, "role": role, "addresses": addresses})
    return out


def _node(p: Probe) -> dict[str, Any]:
    address = ", ".join(str(a) for a in p.target.addresses)
    if p.info is None:
        return {"id": p.target.node_id or None, "address": address, "reachable": False,
                "problem": p.problem, "error": p.error}  # fmt: skip
    info, status = p.info, p.info.status
    return {
        "id": info.node_id,
        "address": address,
        "reachable": True,
        "problem": "",
        "error": "",
        "pid": info.pid,
        "role": status.role,
        "term": status.term,
        "leader": status.leader,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "last_index": status.last_index,
        "snapshot_index": status.snapshot_index,
        "voters": list(status.voters),
        "learners": list(status.learners),
        "uptime_ms": info.uptime_ms,
        "pending_requests": info.pending_requests,
        "peers_connected": [s.node_id for s in info.transport.peers if s.connected],
        "handshakes_refused": info.transport.handshakes_refused,
        "data_dir": info.data_dir,
    }


_COLUMNS = ("ID", "ADDRESS", "PID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "HEALTH")


def human(summary: dict[str, Any]) -> str:
    rows = [_COLUMNS]
    for n in summary["nodes"]:
        if n["reachable"]:
            peers = n["peers_connected"]
            health = f"ok, peers {', '.join(map(str, peers)) or 'none'} connected"
            rows.append((str(n["id"]), n["address"], str(n["pid"]), n["role"], str(n["term"]),
                         str(n["leader"] or "-"), str(n["commit_index"]),
                         str(n["applied_index"]), health))  # fmt: skip
        else:
            health = f"{n['problem']}: {n['error']}"
            rows.append((str(n["id"] or "?"), n["address"], "-", "-", "-", "-", "-", "-",
                         health))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS) - 1)]
    lines = [_headline(summary)]
    if summary["members"]:
        described = [
            f"{m['id']} {m['role']}"
            + (f" at {', '.join(m['addresses'])}" if m["addresses"] else "")
            for m in summary["members"]
        ]
        lines.append("members: " + "; ".join(described))
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _headline(summary: dict[str, Any]) -> str:
    head = f"cluster {summary['cluster_id']}: "
    if summary["leader"]:
        head += f"leader node {summary['leader']} (term {summary['leader_term']})"
    else:
        head += "no node says it leads"
    counted = f"{summary['answered']} of {len(summary['voters'])} voters answered"
    if summary["quorum"]:
        return f"{head}; quorum reachable ({counted})"
    line = f"{head}; NO QUORUM REACHABLE ({counted}, {summary['needed']} needed)"
    problems = summary["problems"]
    if problems.get("wrong-secret"):
        line += "\n  nodes refused our secret: is the secret file this cluster's?"
    if problems.get("wrong-cluster"):
        line += "\n  nodes belong to another cluster: check --cluster-id"
    if problems.get("unreachable"):
        line += "\n  nodes unreachable: are they running (raftcluster up)?"
    return line
