"""Named nemeses and workloads, as the command line offers them.

The named nemeses live in `chaos.sim.nemeses`; `make_nemesis("a,b")` combines several
into one schedule. A workload may also be a user's, named by import path.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from chaos.sim.append_workload import AppendWorkload
from chaos.sim.faults import Fault, NetworkConditions
from chaos.sim.groups.workload import GroupsWorkload
from chaos.sim.named import is_path, load_workload
from chaos.sim.nemeses import NAMED
from chaos.sim.nemesis import ClusterView, Nemesis, RandomFaults
from chaos.sim.register_workload import RegisterWorkload
from chaos.sim.workload import KvWorkload, Workload
from statemachine.errors import InvalidArgument

NEMESES: dict[str, Callable[[], Nemesis]] = {"random": RandomFaults, **NAMED}
WORKLOADS: dict[str, Callable[[], Workload]] = {
    "kv": KvWorkload,
    "register": RegisterWorkload,
    "append": AppendWorkload,
    "groups": GroupsWorkload,
}


class Combined:
    """Several nemeses at once, each with its own generator drawn from the seed."""

    def __init__(self, parts: Sequence[Nemesis]) -> None:
        self.parts = tuple(parts)
        self.name = ",".join(p.name for p in parts)

    @property
    def coverage(self) -> dict[str, int]:
        """Every part's coverage counters (their names start with the part's name)."""
        out: dict[str, int] = {}
        for part in self.parts:
            for what, count in getattr(part, "coverage", {}).items():
                out[what] = out.get(what, 0) + count
        return out

    def setup(self, rng: random.Random, nodes: tuple[int, ...], base: NetworkConditions) -> None:
        for part in self.parts:
            part.setup(random.Random(rng.getrandbits(64)), nodes, base)

    def next_ms(self) -> int | None:
        times = [t for t in (p.next_ms() for p in self.parts) if t is not None]
        return min(times) if times else None

    def fire(self, now_ms: int, view: ClusterView) -> Sequence[Fault]:
        out: list[Fault] = []
        for part in self.parts:
            due = part.next_ms()
            if due is not None and due <= now_ms:
                out.extend(part.fire(now_ms, view))
        return out


def make_nemesis(names: str) -> Nemesis:
    """The nemesis for a comma-separated list of names."""
    parts = [_lookup(NEMESES, name.strip(), "nemesis") for name in names.split(",")]
    return parts[0]() if len(parts) == 1 else Combined([p() for p in parts])


def make_workload(name: str) -> Workload:
    """A fresh workload: a catalog name, or an import path naming a workload class
    (``"bank:BankWorkload"``; `PartLoadError` if it does not load)."""
    if is_path(name):
        return load_workload(name.strip())
    return _lookup(WORKLOADS, name.strip(), "workload")()


T = TypeVar("T")


def _lookup(table: Mapping[str, Callable[[], T]], name: str, what: str) -> Callable[[], T]:
    if name not in table:
        raise InvalidArgument(what, f"{name!r} is not one of {', '.join(sorted(table))}")
    return table[name]
