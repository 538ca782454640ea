"""The named nemeses, each a seeded fault schedule (`Episodes`), by command-line name.

`chaos.sim.catalog.NEMESES` offers these and `random`; `make_nemesis("a,b")` combines.
"""

from __future__ import annotations

from collections.abc import Callable

from chaos.sim.nemeses.clocks import ClockSkew, ClockStrobe
from chaos.sim.nemeses.disks import Disks, LoseDisk
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemeses.hard_cases import HARD_CASES
from chaos.sim.nemeses.links import Duplicate, Loss, Reorder, SlowDown
from chaos.sim.nemeses.membership import Membership
from chaos.sim.nemeses.partitions import Bridge, Halves, IsolateLeader, MajoritiesRing
from chaos.sim.nemeses.processes import Kill, PauseNode
from chaos.sim.nemeses.replace import ReplaceDisk

NAMED: dict[str, Callable[[], Episodes]] = {
    cls.name: cls
    for cls in (
        Halves, IsolateLeader, MajoritiesRing, Bridge, Kill, PauseNode, ClockSkew,
        ClockStrobe, Loss, Duplicate, Reorder, SlowDown, Membership, Disks, LoseDisk,
        ReplaceDisk,
    )
}  # fmt: skip
NAMED.update(HARD_CASES)

__all__ = ["NAMED", "Episodes"]
