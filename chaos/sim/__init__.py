"""The deterministic simulator: real node and client cores under seeded faults.

    from chaos.sim import SimConfig, simulate
    result = simulate(SimConfig(seed=7, nodes=5, duration_ms=60_000))
    result.ok, result.trace_hash, result.violation, result.counters

`simulate(config, nemesis=..., workload=...)` runs one seed of our engine; `Nemesis` and
`Workload` are the extension points (docs/simulator.md). `Simulator(config, nemesis,
workload, engine)` runs any `Engine` (chaos/sim/engine.py), pysyncobj's among them.
"""

from __future__ import annotations

import attrs

from chaos.sim.config import SimConfig
from chaos.sim.faults import FAULT_KINDS, Fault, NetworkConditions
from chaos.sim.invariants import SafetyViolation
from chaos.sim.nemesis import ClusterView, FaultMix, Nemesis, RandomFaults, ScriptedFaults
from chaos.sim.planted import PLANTS
from chaos.sim.raftcluster_engine import RaftclusterEngine
from chaos.sim.result import Counters, SimResult
from chaos.sim.simulator import Simulator
from chaos.sim.workload import KvWorkload, Workload
from statemachine.errors import InvalidArgument


def simulate(
    config: SimConfig,
    nemesis: Nemesis | None = None,
    workload: Workload | None = None,
    *,
    check_timeout_s: float | None = 10.0,
    plant: str | None = None,
) -> SimResult:
    """Run one seed. With `check_timeout_s`, the workload's history is also checked for
    linearizability (within that many wall seconds; past it the verdict is unknown).
    `plant` names a planted bug (`chaos.sim.planted.PLANTS`) to run instead of the real
    engine part it replaces: only for proving the checkers can fail."""
    nemesis = nemesis if nemesis is not None else RandomFaults()
    workload = workload if workload is not None else KvWorkload()
    engine = RaftclusterEngine()
    if plant is not None:
        if plant not in PLANTS:
            raise InvalidArgument("plant", f"{plant!r} is not one of {', '.join(PLANTS)}")
        planted = PLANTS[plant]
        engine = planted.engine()
        config = attrs.evolve(config, **planted.config)
    result = Simulator(config, nemesis, workload, engine).run()
    result = attrs.evolve(result, plant=plant)
    if check_timeout_s is None:
        return result
    return attrs.evolve(result, linearizability=workload.check(check_timeout_s))


__all__ = [
    "FAULT_KINDS",
    "ClusterView",
    "Counters",
    "Fault",
    "FaultMix",
    "KvWorkload",
    "Nemesis",
    "NetworkConditions",
    "RandomFaults",
    "SafetyViolation",
    "ScriptedFaults",
    "SimConfig",
    "SimResult",
    "Simulator",
    "Workload",
    "simulate",
]
