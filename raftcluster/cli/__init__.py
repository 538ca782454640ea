"""The `raftcluster` command line.

Each subcommand lives in a module of this package with a `register(subparsers)`
function. Other installed packages extend the command line through the
`raftcluster.commands` entry point group (the chaos harness adds `chaos` this way,
so that raftcluster never imports it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from types import ModuleType

from raftcluster.cli import (
    client_keys,
    demo,
    events,
    group,
    init,
    kv,
    member,
    node,
    status,
    up,
)
from statemachine.errors import ClusterError

# Built-in subcommand modules, in the order `--help` lists them.
BUILTIN: tuple[ModuleType, ...] = (
    init,
    up,
    node,
    member,
    status,
    kv,
    group,
    events,
    demo,
    client_keys,
)


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


# The exit status of a command whose reader went away (`... | head`): as if SIGPIPE.
EXIT_READER_GONE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = node.with_run_word(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = parser.parse_args(words)
            code: int = args.run(args)
        finally:
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
    except ClusterError as e:
        print(f"raftcluster: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except BaseExceptionGroup as group:  # from inside trio.run (a streaming command)
        if group.split(BrokenPipeError)[1] is None:
            return _reader_gone()
        raise
    return code


def _reader_gone() -> int:
    """stdout's reader closed it: stop quietly. Later writes (the interpreter flushes
    stdout at exit) go to /dev/null rather than raise again and print a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_READER_GONE
