"""`raftcluster chaos ...`: registered through the `raftcluster.commands` entry point.

Each chaos subcommand lives in a module of `chaos.commands` with a
`register(chaos_subparsers)` function that adds its parser and sets `run=func`
(func(args) -> exit status). Adding one (`live`) is one line in SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Any

from chaos.commands import check, live, regress, run

# In the order `raftcluster chaos --help` lists them.
SUBCOMMANDS: tuple[ModuleType, ...] = (run, live, check, regress)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "chaos", help="the chaos harness: simulated and live fault campaigns, history checkers"
    )
    chaos_sub = parser.add_subparsers(dest="chaos_command", metavar="CHAOS_COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(chaos_sub)
