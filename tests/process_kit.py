"""Shared pieces of the supervisor and resource tests: a running `Supervisor` and a wait."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import trio

from raftcluster.supervisor.children import Supervisor

SLEEP = "import time; time.sleep(60)"  # a `python -c` program that just stays alive


@contextlib.asynccontextmanager
async def running_supervisor(root: Path) -> AsyncIterator[Supervisor]:
    """A serving `Supervisor` on `root`; leaving kills whatever it started."""
    supervisor = Supervisor(root)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.serve)
        yield supervisor
        nursery.cancel_scope.cancel()


async def wait_for(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.02)
