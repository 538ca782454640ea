"""The `raftcluster` command line.

Each subcommand lives in a module of this package with a `register(subparsers)`
function. Other installed packages extend the command line through the
`raftcluster.commands` entry point group (the chaos harness adds `chaos` this way,
so that raftcluster never imports it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from types import ModuleType

from raftcluster.cli import demo, init, kv, node, status, up
from statemachine.errors import ClusterError

# Built-in subcommand modules, in the order `--help` lists them.
BUILTIN: tuple[ModuleType, ...] = (init, up, node, status, kv, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftcluster",
        description="A cluster service on one Raft log, and the chaos harness that proves it.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in BUILTIN:
        module.register(subparsers)
    for plugin in sorted(entry_points(group="raftcluster.commands"), key=lambda e: e.name):
        plugin.load()(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ClusterError as e:
        print(f"raftcluster: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
