"""What a seed costs on the pysyncobj engine, against our own engine on the same seed.

Virtual seconds simulated per wall second, for the same configuration, nemesis and
workload on both engines (docs/chaos-pysyncobj.md): 3 nodes without faults, and the
default seed run on 5 nodes with random faults. pysyncobj's runs find faults; that is
expected and does not fail the benchmark (an exception does).

    python -m bench bench_sim_pysyncobj [--quick]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bench.table import Row
from chaos.sim import KvWorkload, RandomFaults, ScriptedFaults, SimConfig, simulate
from chaos.sim.nemesis import Nemesis
from chaos.sim.pysyncobj_engine import simulate_pysyncobj

PEER = "raftcluster engine, same seed"


def _virtual_per_wall(engine: str, config: SimConfig, nemesis: Nemesis) -> tuple[float, bool]:
    """Virtual seconds per wall second, and whether the run broke off with an exception."""
    started = time.perf_counter()
    if engine == "pysyncobj":
        result = simulate_pysyncobj(config, nemesis, KvWorkload(), check_timeout_s=None)
    else:
        result = simulate(config, nemesis, KvWorkload(), check_timeout_s=None)
    wall = time.perf_counter() - started
    return result.end_ms / 1000 / wall, result.error is not None


def run(quick: bool) -> list[Row]:
    logging.getLogger("raftcluster.storage").setLevel(logging.ERROR)
    virtual_s = 10 if quick else 60
    cases: list[tuple[str, int, Callable[[], Nemesis]]] = [
        ("3 nodes, no faults, kv", 3, lambda: ScriptedFaults([])),
        ("5 nodes, random faults, kv", 5, RandomFaults),
    ]
    rows = []
    for name, nodes, nemesis in cases:
        config = SimConfig(seed=1, nodes=nodes, duration_ms=virtual_s * 1000)
        ours, ours_failed = _virtual_per_wall("raftcluster", config, nemesis())
        theirs, theirs_failed = _virtual_per_wall("pysyncobj", config, nemesis())
        rows.append(
            Row(
                f"sim pysyncobj: virtual s per wall s, {name}",
                theirs,
                "x",
                peer=PEER,
                peer_value=ours,
                note=f"seed 1, {virtual_s} virtual s",
                failed=ours_failed or theirs_failed,
            )
        )
    return rows
