"""A user's parts and workloads, given as objects or named by import path.

The simulator takes user parts (`SimConfig(parts=...)`) and workloads (`simulate(workload=
...)`) either as objects or as import paths, ``"module:NAME"``, the one syntax of
`raftcluster.loading` (which imports them; nothing here imports anything itself). A
workload may also be one of the catalog's names (``"kv"``, ``"register"``...). Every
failure is a `PartLoadError` naming the path, raised before a run starts.

A workload path names a `Workload` class (or any callable taking no arguments that
returns a workload), built fresh for each run: a workload keeps the run's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from chaos.sim.workload import Workload
from raftcluster.loading import PartLoadError, load_object, load_parts
from statemachine.part import PartSpec

# What a workload must have for the simulator to drive it (chaos.sim.workload.Workload).
WORKLOAD_METHODS = ("setup", "next_ms", "act", "completed", "stop", "history", "check")


def is_path(name: str) -> bool:
    """Whether `name` is an import path (it has a colon) rather than a catalog name."""
    return ":" in name


def parts_of(parts: Sequence[PartSpec | str]) -> tuple[PartSpec, ...]:
    """The parts `parts` gives: PartSpecs as they are, import paths loaded (in order)."""
    out: list[PartSpec] = []
    for item in parts:
        if isinstance(item, PartSpec):
            out.append(item)
        else:
            out.extend(load_parts([item]))
    return tuple(out)


def load_workload(path: str) -> Workload:
    """A fresh workload from the class or factory `path` names."""
    expected = "a Workload class, or a callable taking no arguments that returns a Workload"
    factory = load_object(path, expected=expected, check=callable)
    assert callable(factory)
    try:
        workload = factory()
    except Exception as e:  # noqa: BLE001 - the user's code may raise anything; report it
        raise PartLoadError(path, f"building it raised {type(e).__name__}: {e}") from e
    missing = [m for m in WORKLOAD_METHODS if not callable(getattr(workload, m, None))]
    if missing or not isinstance(getattr(workload, "clients", None), int):
        lacks = ", ".join(missing) or "an int `clients`"
        raise PartLoadError(path, f"built {type(workload).__name__}, which lacks {lacks}")
    return cast(Workload, workload)
