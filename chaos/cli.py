"""`raftcluster chaos ...`: registered through the `raftcluster.commands` entry point."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "chaos", help="the chaos harness: simulated and live fault campaigns, history checkers"
    )
    chaos_sub = parser.add_subparsers(dest="chaos_command", metavar="CHAOS_COMMAND", required=True)
    del chaos_sub  # subcommands are added as the harness grows (run, check, live)
