"""The deterministic simulator: real node and client cores under seeded faults.

    from chaos.sim import SimConfig, simulate
    result = simulate(SimConfig(seed=7, nodes=5, duration_ms=60_000))
    result.ok, result.trace_hash, result.violation, result.counters

`simulate(config, nemesis=..., workload=...)` runs one seed of our engine; `Nemesis` and
`Workload` are the extension points (docs/simulator.md). `Simulator(config, nemesis,
workload, engine)` runs any `Engine` (chaos/sim/engine.py), pysyncobj's among them.

A user's own state machine runs the same way (docs/your-state-machine.md): its parts in
`SimConfig(parts=...)` or `simulate(parts=...)`, its workload and model as objects or as
import paths (``"bank:BankWorkload"``, ``"bank:BankModel"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from chaos.checker import Model
from chaos.sim.catalog import make_workload
from chaos.sim.config import SimConfig
from chaos.sim.faults import FAULT_KINDS, Fault, NetworkConditions
from chaos.sim.invariants import SafetyViolation
from chaos.sim.named import parts_of
from chaos.sim.nemesis import ClusterView, FaultMix, Nemesis, RandomFaults, ScriptedFaults
from chaos.sim.planted import PLANTS
from chaos.sim.raftcluster_engine import RaftclusterEngine
from chaos.sim.result import Counters, SimResult
from chaos.sim.simulator import Simulator
from chaos.sim.workload import ClientHandle, ClientsWorkload, KvWorkload, OpClient, Workload
from statemachine.errors import InvalidArgument
from statemachine.part import PartSpec


def simulate(
    config: SimConfig,
    nemesis: Nemesis | None = None,
    workload: Workload | str | None = None,
    *,
    check_timeout_s: float | None = 10.0,
    plant: str | None = None,
    parts: Sequence[PartSpec | str] = (),
    model: Model | str | None = None,
) -> SimResult:
    """Run one seed. With `check_timeout_s`, the workload's history is also checked for
    linearizability (within that many seconds of search effort; past it the verdict is
    unknown), with `model` if given, else the workload's own. `plant` names a planted bug
    (`chaos.sim.planted.PLANTS`) to run instead of the real engine part it replaces: only
    for proving the checkers can fail.

    `workload` is a `Workload`, a catalog name (``"kv"``) or an import path naming a
    workload class; `parts` adds user parts (PartSpecs or import paths) to
    `config.parts`; `model` is a `Model`, a model's name or an import path. A path that
    does not load raises `PartLoadError` (or `ModelError`) before the run starts."""
    nemesis = nemesis if nemesis is not None else RandomFaults()
    workload = workload_of(workload if workload is not None else "kv")
    if parts:
        config = attrs.evolve(config, parts=config.parts + tuple(parts))
    parts_of(config.parts)  # a bad path fails here, before the run
    engine = RaftclusterEngine()
    if plant is not None:
        if plant not in PLANTS:
            raise InvalidArgument("plant", f"{plant!r} is not one of {', '.join(PLANTS)}")
        planted = PLANTS[plant]
        engine = planted.engine()
        config = attrs.evolve(config, **planted.config)
    simulator = Simulator(
        config, nemesis, workload, engine, check_timeout_s=check_timeout_s, model=model
    )
    return attrs.evolve(simulator.run(), plant=plant)


def workload_of(workload: Workload | str) -> Workload:
    """`workload` itself, or the workload a catalog name or an import path gives."""
    return make_workload(workload) if isinstance(workload, str) else workload


__all__ = [
    "FAULT_KINDS",
    "ClientHandle",
    "ClientsWorkload",
    "ClusterView",
    "Counters",
    "Fault",
    "FaultMix",
    "KvWorkload",
    "Nemesis",
    "NetworkConditions",
    "OpClient",
    "RandomFaults",
    "SafetyViolation",
    "ScriptedFaults",
    "SimConfig",
    "SimResult",
    "Simulator",
    "Workload",
    "simulate",
    "workload_of",
]
