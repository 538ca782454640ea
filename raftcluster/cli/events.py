"""`raftcluster events [--follow] [--from REV] [--json]`: the cluster service's events.

Prints every event of the groups part from revision `--from` (default 1: the oldest
kept) in revision order, one line each: for people `rev 12  group web  ONLINE on node 2
(epoch 5)`, with `--json` one JSON object per line (its `type`, `revision` and fields).
Without `--follow` it prints what is there and exits 0; with `--follow` it goes on
printing events as they happen (`client.events`, polling 50 ms to 500 ms when caught
up) until Ctrl-C (exit 130). Events no longer kept: `raftcluster: error: ...` naming
the oldest available revision, exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from raftcluster.cli.client_command import add_client_options, run_client_command
from raftcluster.cli.group_output import event_line, to_json
from raftcluster.client.api import Client
from statemachine.groups.messages import GroupEvent


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "events",
        help="print the cluster service's events (--follow: as they happen)",
        description="Print the cluster service's events in revision order; with --follow, "
        "go on printing them as they happen until Ctrl-C.",
    )
    parser.add_argument("--follow", action="store_true", help="go on until Ctrl-C")
    parser.add_argument(
        "--from", dest="from_revision", type=int, default=1, metavar="REV",
        help="the first revision to print (default 1: the oldest kept)",
    )  # fmt: skip
    add_client_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_client_command(args, _events)


def _print(args: argparse.Namespace, event: GroupEvent) -> None:
    line = json.dumps(to_json(event), sort_keys=True) if args.json else event_line(event)
    sys.stdout.write(line + "\n")


async def _events(client: Client, args: argparse.Namespace) -> int:
    events = client.events(args.from_revision)
    if not args.follow:
        while page := await events.page():
            for event in page:
                _print(args, event)
        sys.stdout.flush()
        return 0
    async for event in events:
        _print(args, event)
        sys.stdout.flush()
    return 0  # not reached: following never ends on its own
