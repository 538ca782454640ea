"""`raftcluster member ...` and `raftcluster leader transfer`: the cluster's Raft members.

    raftcluster member list [--json]
    raftcluster member add ID --address HOST:PORT [--address ...] [--voter]
                           [--incarnation N] [--write-config FILE]
    raftcluster member promote ID
    raftcluster member remove ID
    raftcluster member replace ID [--address HOST:PORT ...] [--write-config FILE]
    raftcluster leader transfer [--to ID]

Each reaches the cluster like the other client commands (`--cluster DIR` or
`--endpoints`, `--timeout-ms`, `--json`) and goes through `client.membership`
(raftcluster/client/membership.py). A refusal (an id or address in use, the last voter, a
change in progress, a promotion of a node that is not a caught-up learner) changes
nothing and prints the leader's reason on one line, with exit status 1.
`--write-config FILE` (with `--cluster`) writes the cluster file the new node starts
with: `raftcluster node run --config FILE --id ID --join` (docs/operations.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from raftcluster.cli.client_command import CommandFailed, add_client_options, run_client_command
from raftcluster.cli.output import emit
from raftcluster.cli.target import resolve
from raftcluster.client.api import Client
from raftcluster.client.membership import Changed, MembershipView
from raftcluster.config.member_file import write_member_file


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "member",
        help="list, add, promote, remove or replace the cluster's Raft members",
        description="Change the cluster's membership while it runs, one step at a time.",
    )
    commands = parser.add_subparsers(dest="member_command", metavar="COMMAND", required=True)
    _command(commands, "list", "every member: role, addresses, incarnation, how far caught up")
    add = _command(commands, "add", "add a node as a learner (a voter once caught up: --voter)")
    add.add_argument("node", type=int, metavar="ID")
    _addresses(add, required=True)
    add.add_argument("--voter", action="store_true",
                     help="promote it to voter as soon as it has caught up")  # fmt: skip
    add.add_argument("--incarnation", type=int, default=None, metavar="N",
                     help="the new node's incarnation (default: a fresh random one)")  # fmt: skip
    _write_config(add)
    promote = _command(commands, "promote", "promote a caught-up learner to voter")
    promote.add_argument("node", type=int, metavar="ID")
    remove = _command(commands, "remove", "remove a member (a leader hands over first)")
    remove.add_argument("node", type=int, metavar="ID")
    replace = _command(
        commands, "replace", "bring back a member whose data is lost: remove it, add it afresh"
    )
    replace.add_argument("node", type=int, metavar="ID")
    _addresses(replace, required=False)
    _write_config(replace)

    leader: argparse.ArgumentParser = subparsers.add_parser(
        "leader", help="hand leadership to another voter",
        description="Hand leadership to another voter.",
    )  # fmt: skip
    leader_commands = leader.add_subparsers(dest="leader_command", metavar="COMMAND", required=True)
    transfer = leader_commands.add_parser(
        "transfer", help="hand leadership over", description="Hand leadership to a voter."
    )
    transfer.add_argument("--to", type=int, default=None, metavar="ID",
                          help="the new leader (default: the most caught-up voter)")  # fmt: skip
    add_client_options(transfer)
    transfer.set_defaults(run=lambda args: run_client_command(args, _transfer))


def _command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text
    )
    add_client_options(parser)
    parser.set_defaults(run=lambda args: run_client_command(args, _handle))
    return parser


def _addresses(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--address", dest="addresses", action="append", required=required,
        metavar="HOST:PORT", help="where the node listens (repeat for bonded links)",
    )  # fmt: skip


def _write_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write-config", default=None, metavar="FILE",
        help="write the new node's cluster file here (needs --cluster)",
    )  # fmt: skip


async def _handle(client: Client, args: argparse.Namespace) -> int:
    membership = client.membership
    command = args.member_command
    if command == "list":
        view = await membership.list()
        emit(args, _view_json(view), lambda _: _view_text(view))
        return 0
    if getattr(args, "write_config", None) and resolve(args).cluster is None:
        raise CommandFailed("--write-config needs --cluster DIR (the running cluster's file)")
    node = args.node
    if command == "add":
        done = await membership.add(
            node, args.addresses, voter=args.voter, incarnation=args.incarnation
        )
        what = f"node {node} added as a learner" + (
            ", promoted to voter once caught up" if args.voter else ""
        )
    elif command == "promote":
        done = await membership.promote(node)
        what = f"node {node} promoted to voter"
    elif command == "remove":
        done = await membership.remove(node)
        what = f"node {node} removed"
    else:
        done = await membership.replace(node, args.addresses)
        what = f"node {node} replaced: added again with a fresh incarnation"
    data: dict[str, Any] = {"ok": True, "what": what, **_changed_json(done)}
    config = getattr(args, "write_config", None)
    if config:
        data["config"] = await _write(client, args, node, done)
        what += (
            f"; start it with: raftcluster node run --config {data['config']} --id {node} --join"
        )
    emit(args, data, lambda _: f"OK: {what} (log index {done.index})")
    return 0


async def _write(client: Client, args: argparse.Namespace, node: int, done: Changed) -> str:
    cluster = resolve(args).cluster
    assert cluster is not None
    view = await client.membership.list()
    members = {m.node_id: m.addresses for m in view.members}
    for entry in cluster.nodes:  # a member the log records no address for
        if entry.id in members and not members[entry.id]:
            members[entry.id] = tuple(str(a) for a in entry.addresses)
    written = write_member_file(cluster, args.write_config, members, node, done.incarnation)
    return str(written.path)


async def _transfer(client: Client, args: argparse.Namespace) -> int:
    leader = await client.membership.transfer_leadership(args.to)
    emit(args, {"ok": True, "leader": leader}, lambda _: f"OK: node {leader} leads")
    return 0


def _changed_json(done: Changed) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": done.index,
        "voters": list(done.voters),
        "learners": list(done.learners),
    }
    if done.incarnation:
        out["incarnation"] = done.incarnation
    return out


def _view_json(view: MembershipView) -> dict[str, Any]:
    return {
        "leader": view.leader,
        "term": view.term,
        "commit_index": view.commit_index,
        "last_index": view.last_index,
        "members": [
            {
                "id": m.node_id,
                "role": m.role,
                "addresses": list(m.addresses),
                "incarnation": m.incarnation,
                "match_index": m.match_index,
                "caught_up": m.caught_up,
                "promote_when_caught_up": m.promote_when_caught_up,
            }
            for m in view.members
        ],
    }


def _view_text(view: MembershipView) -> str:
    lines = [
        f"leader {view.leader or 'unknown'}, term {view.term}, commit {view.commit_index}",
        f"{'ID':>4}  {'ROLE':<8}  {'MATCH':>8}  {'CAUGHT UP':<9}  ADDRESSES",
    ]
    for m in view.members:
        role = m.role + ("*" if m.node_id == view.leader else "")
        caught = "yes" if m.caught_up else ("no" if view.leader else "?")
        if m.promote_when_caught_up:
            caught += " (then voter)"
        addresses = ", ".join(m.addresses) or "(not recorded)"
        lines.append(f"{m.node_id:>4}  {role:<8}  {m.match_index:>8}  {caught:<9}  {addresses}")
    lines.append("* leads")
    return "\n".join(lines)
