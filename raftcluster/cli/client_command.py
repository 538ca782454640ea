"""Running one command line through a `Client`: the options every client command shares
(`--cluster DIR` / `--endpoints`, `--timeout-ms`, `--json`), connecting, and what a failure
prints.

`run_client_command(args, handler)` resolves the target, connects (`raftcluster.connect`),
runs `handler(client, args)` under trio and returns its exit status. Every failure is a
`ClusterError` with a message for people, which `raftcluster.cli.main` prints as
`raftcluster: error: ...` with exit status 1: a wrong secret or cluster id, no quorum
reachable (`unavailable: ...`), an outcome unknown, or the cluster's refusal.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

import trio

from raftcluster.cli.output import add_json_flag
from raftcluster.cli.target import ClusterTarget, add_target_options, resolve
from raftcluster.client.api import Client
from raftcluster.client.connect import ClientOptions, connect
from raftcluster.errors import OutcomeUnknown, Unavailable
from raftcluster.transport import AuthenticationFailed, HandshakeFailed, RefusalReason
from statemachine.errors import ClusterError

Handler = Callable[[Client, argparse.Namespace], Awaitable[int]]
DEFAULT_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_MS = 5_000


class CommandFailed(ClusterError):
    """A client command could not do what it was asked; the message says why."""


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """`--cluster`/`--endpoints` (and their secret and id), `--timeout-ms`, `--json`."""
    add_target_options(parser)
    parser.add_argument(
        "--timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS, metavar="MS",
        help=f"how long to try before giving up (default {DEFAULT_TIMEOUT_MS})",
    )  # fmt: skip
    add_json_flag(parser)


def run_client_command(args: argparse.Namespace, handler: Handler) -> int:
    """Connect to the cluster the options name and run `handler`; its exit status.
    Raises CommandFailed (or the ClusterError itself) with a message for people."""
    target = resolve(args)
    try:
        code: int = trio.run(_run, args, target, handler)
    except AuthenticationFailed:
        raise CommandFailed("the nodes refused our secret: check the secret file") from None
    except HandshakeFailed as e:
        if e.reason == RefusalReason.WRONG_CLUSTER:
            raise CommandFailed(f"the nodes belong to another cluster: {e}") from None
        raise CommandFailed(str(e)) from None
    except Unavailable as e:
        raise CommandFailed(f"unavailable: {e}") from None
    except OutcomeUnknown as e:
        raise CommandFailed(f"outcome unknown: {e}") from None
    return code


async def _run(args: argparse.Namespace, target: ClusterTarget, handler: Handler) -> int:
    timeout_ms: int = args.timeout_ms
    options = ClientOptions(
        connect_timeout_ms=min(CONNECT_TIMEOUT_MS, timeout_ms), request_timeout_ms=timeout_ms
    )
    if target.cluster is not None:
        opened = connect(target.cluster, options=options)
    else:
        opened = connect(
            endpoints=[a for t in target.targets for a in t.addresses],
            secret=target.transport.secret,
            cluster_id=target.transport.cluster_id,
            options=options,
        )
    async with opened as client:
        return await handler(client, args)
