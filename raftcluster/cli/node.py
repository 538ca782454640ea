"""`raftcluster node --config FILE --id ID`: run one node in the foreground.

SIGINT or SIGTERM stops it gracefully (a second one ends it at once). With
`--supervised` (used by `raftcluster up`) the node also stops when its standard input
closes, so that nodes never outlive a supervisor that was killed. Exit status 0 after a
graceful stop, 1 when the node could not start or failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path
from typing import Any

import trio

from raftcluster.cli.logs import LEVELS, setup_node_logging
from raftcluster.config import load_cluster, node_settings
from raftcluster.node.runtime import Node, unwrap_groups
from raftcluster.node.settings import NodeSettings

log = logging.getLogger("raftcluster.node")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "node",
        help="run one node of a cluster in the foreground",
        description="Run node ID of the cluster file FILE until SIGINT or SIGTERM.",
    )
    parser.add_argument(
        "--config", required=True, metavar="FILE",
        help="the cluster file (or the directory holding cluster.toml)",
    )  # fmt: skip
    parser.add_argument("--id", required=True, type=int, metavar="ID", help="this node's id")
    parser.add_argument("--log-file", type=Path, default=None, metavar="PATH",
                        help="append the log here (default: standard error)")  # fmt: skip
    parser.add_argument("--log-level", choices=LEVELS, default="info")
    parser.add_argument(
        "--supervised", action="store_true",
        help="also stop when standard input closes (for `raftcluster up`)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = node_settings(load_cluster(args.config), args.id)
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
