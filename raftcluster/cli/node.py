"""`raftcluster node run|status|drain|resume`: run a node, or look at and steer the
cluster service's members.

`raftcluster node run --config FILE --id ID [--join]` runs one node in the foreground
(`--join`: a node added to a running cluster, started from an empty data directory; it
never bootstraps a cluster of its own). SIGINT or
SIGTERM stops it gracefully (a second one ends it at once). With `--supervised` (used by
`raftcluster up`) the node also stops when its standard input closes, so that nodes never
outlive a supervisor that was killed. Exit status 0 after a graceful stop, 1 when the
node could not start or failed. The older form without `run` (`raftcluster node --config
FILE --id ID`: no subcommand, the first argument an option) still runs a node.

`node status [ID]`, `node drain ID` and `node resume ID [--no-failback]` reach a running
cluster through the client API (`client.nodes`, raftcluster/client/nodes.py), with
`--cluster DIR` or `--endpoints` and `--json`, as the other client commands do.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from raftcluster.cli.client_command import add_client_options, run_client_command
from raftcluster.cli.group_output import member_json, member_text, nodes_table, to_json
from raftcluster.cli.logs import LEVELS, setup_node_logging
from raftcluster.cli.output import emit
from raftcluster.client.api import Client
from raftcluster.config import load_cluster, node_settings
from raftcluster.node.runtime import Node, unwrap_groups
from raftcluster.node.settings import NodeSettings

log = logging.getLogger("raftcluster.node")


SUBCOMMANDS = ("run", "status", "drain", "resume")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "node",
        help="run a node (node run), or see and steer the cluster service's members",
        description="Run one node of a cluster (node run --config FILE --id ID), or see "
        "and steer the members of the cluster service (status, drain, resume).",
    )
    commands = parser.add_subparsers(dest="node_command", metavar="COMMAND", required=True)
    runner: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run one node of a cluster in the foreground",
        description="Run node ID of the cluster file FILE until SIGINT or SIGTERM.",
    )
    runner.add_argument(
        "--config", required=True, metavar="FILE",
        help="the cluster file (or the directory holding cluster.toml)",
    )  # fmt: skip
    runner.add_argument("--id", required=True, type=int, metavar="ID", help="this node's id")
    runner.add_argument(
        "--join", action="store_true",
        help="join the running cluster (after `member add` or `member replace`) from an empty "
        "data directory; never bootstrap a cluster of its own",
    )  # fmt: skip
    runner.add_argument("--log-file", type=Path, default=None, metavar="PATH",
                        help="append the log here (default: standard error)")  # fmt: skip
    runner.add_argument("--log-level", choices=LEVELS, default="info")
    runner.add_argument(
        "--supervised", action="store_true",
        help="also stop when standard input closes (for `raftcluster up`)",
    )  # fmt: skip
    runner.set_defaults(run=run)

    status = _member_command(commands, "status", "the members, or one member and its groups")
    status.add_argument("node", nargs="?", type=int, default=None, metavar="ID")
    drain = _member_command(commands, "drain", "move every group off a node (planned)")
    drain.add_argument("node", type=int, metavar="ID")
    resume = _member_command(commands, "resume", "a drained or paused node takes groups again")
    resume.add_argument("node", type=int, metavar="ID")
    resume.add_argument("--no-failback", dest="failback", action="store_false",
                        help="do not move back the groups that prefer it")  # fmt: skip


def _member_command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text
    )
    add_client_options(parser)
    parser.set_defaults(run=run_member_command)
    return parser


def with_run_word(argv: Sequence[str]) -> list[str]:
    """`argv` with `run` after `node` when the older form is used (`node --config ...`:
    no subcommand, the first argument an option other than help)."""
    args = list(argv)
    if len(args) >= 2 and args[0] == "node":
        first = args[1]
        if first.startswith("-") and first not in ("-h", "--help"):
            return ["node", "run", *args[1:]]
    return args


def run_member_command(args: argparse.Namespace) -> int:
    return run_client_command(args, _member_handler)


async def _member_handler(client: Client, args: argparse.Namespace) -> int:
    nodes = client.nodes
    if args.node_command == "status" and args.node is None:
        members = await nodes.list()
        groups = await client.groups.list()
        emit(args, {"nodes": to_json(members)}, lambda _: nodes_table(members, groups))
        return 0
    if args.node_command == "status":
        status = await nodes.status(args.node)
        emit(args, member_json(status), lambda _: member_text(status))
        return 0
    if args.node_command == "drain":
        done = await nodes.drain(args.node)
        what = f"node {args.node} draining: its groups move off"
    else:
        done = await nodes.resume(args.node, failback=args.failback)
        back = ", its preferred groups move back" if args.failback else ""
        what = f"node {args.node} resumed{back}"
    emit(args, {"ok": True, "revision": done.revision, "what": what},
         lambda _: f"OK: {what} (groups revision {done.revision})")  # fmt: skip
    return 0


def run(args: argparse.Namespace) -> int:
    settings = node_settings(load_cluster(args.config), args.id, join=args.join)
    setup_node_logging(args.id, args.log_level, args.log_file)
    trio.run(serve_until_signalled, settings, args.supervised)
    return 0


async def serve_until_signalled(settings: NodeSettings, supervised: bool = False) -> None:
    """Run a node until SIGINT/SIGTERM (or, if `supervised`, end of standard input),
    then stop it gracefully; a second signal cancels it. Raises what `Node.serve` raises.
    Cancellation ends the node as cancelling `Node.serve` does."""
    node = Node(settings)
    with unwrap_groups(), trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_on_signals, signals, node, nursery.cancel_scope)
            if supervised:
                nursery.start_soon(_on_stdin_closed, node)
            await node.serve()
            nursery.cancel_scope.cancel()


async def _on_signals(signals: Any, node: Node, scope: trio.CancelScope) -> None:
    count = 0
    async for signum in signals:
        count += 1
        name = signal.Signals(signum).name
        if count == 1:
            log.info("node %d: %s: stopping", node.node_id, name)
            node.stop()
        else:
            log.warning("node %d: %s again: stopping at once", node.node_id, name)
            scope.cancel()


async def _on_stdin_closed(node: Node) -> None:
    stream = trio.lowlevel.FdStream(os.dup(0))
    async with stream:
        while await stream.receive_some(4096):
            pass
    log.info("node %d: standard input closed (the supervisor is gone): stopping", node.node_id)
    node.stop()
