"""Helpers for the supervisor's and the resources' tests: real processes, checked
through /proc, and a running `Supervisor`."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import trio

from raftcluster.supervisor.children import Supervisor

PY = sys.executable


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is dead: it only awaits its reaping)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def children() -> set[int]:
    """Live (not zombie) processes whose parent is this one."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def py(code: str) -> list[str]:
    return [PY, "-c", code]


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
