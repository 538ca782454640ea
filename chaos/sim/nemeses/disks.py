"""Nemeses of the disk: `disk` (I/O errors, and damage to synced data found at the next
start) and `lose-disk` (a data directory gone).

`disk` is also a kind of the `random` mix. Damage is done to a node that is powered off
for it and started again: a node reads its data directory only when it starts, so that is
when the damage is found. Either the node recovers everything it had synced (the
durability oracle checks), or it refuses to start, naming the file and the byte offset;
it then stays down, so damage counts towards the nodes a nemesis may take down (never a
majority).

`lose-disk` is not in the `random` mix: a member whose directory is gone must not come
back as if it were new (it may vote twice in a term it voted in), and bringing it back
safely is a membership procedure. The simulator starts it empty, joining the cluster with
a fresh incarnation (`node run --join`): it neither votes nor campaigns until replaced,
which healing does at the end (`replace-disk` does it under load). One directory per run.
"""

from __future__ import annotations

import random

from chaos.sim.faults import DISK_FAULTS, Crash, DiskFault, Fault, Restart
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemeses.hard_cases import Later
from chaos.sim.nemesis import ClusterView

IO_ERRORS = tuple(what for what in DISK_FAULTS if what.startswith(("eio", "enospc")))


def disk_fault(
    rng: random.Random,
    now: int,
    until: int,
    view: ClusterView,
    nodes: tuple[int, ...],
    later: Later,
) -> list[Fault]:
    """One disk fault on a running node, undone (the node restarted) at `until`."""
    down = len(nodes) - len(view.running)
    if down + 1 > (len(nodes) - 1) // 2 or not view.running:
        return []  # keep a majority able to run
    node = rng.choice(view.running)
    if not view.voters_keep_a_majority(down=node):
        return []
    what = rng.choice(DISK_FAULTS)
    later(until, Restart(node), "restart")
    if what in IO_ERRORS:
        return [DiskFault(node, what)]
    return [Crash(node), DiskFault(node, what)]  # damage found when it starts again


class Disks(Episodes):
    """A disk fault at a time: an I/O error, or damage found at the next start."""

    name = "disk"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        faults = disk_fault(self.rng, now_ms, now_ms + hold_ms, view, self.nodes, self.later)
        return [self.inject(f.what if isinstance(f, DiskFault) else f.kind, f) for f in faults]


class LoseDisk(Episodes):
    """A node's data directory is lost: it is powered off, its directory emptied, and
    it is started again."""

    name = "lose-disk"

    def __init__(self) -> None:
        super().__init__()
        self._done = False

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        # One directory per run: nobody replaces the member (healing does, at the end), and
        # a member that lost its data no longer votes; two such could leave no majority.
        if self._done:
            return []
        down = len(self.nodes) - len(view.running)
        if down + 1 > (len(self.nodes) - 1) // 2 or not view.running:
            return []
        node = self.rng.choice(view.running)
        if not view.voters_keep_a_majority(down=node):
            return []
        self._done = True
        self.later(now_ms + hold_ms, Restart(node), "restart")
        return [self.inject("crash", Crash(node)), self.inject("lost", DiskFault(node, "lost"))]
