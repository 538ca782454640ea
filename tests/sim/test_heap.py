"""`heap_frozen`: what existed before a run is out of the collector's passes during it,
and back in after it; a heap the caller froze stays frozen."""

from __future__ import annotations

import gc

from chaos.sim import KvWorkload, RandomFaults, SimConfig, Simulator
from chaos.sim.heap import heap_frozen


def test_the_heap_is_frozen_inside_and_unfrozen_after() -> None:
    assert gc.get_freeze_count() == 0
    kept = [object() for _ in range(10)]
    with heap_frozen():
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0


def test_a_run_leaves_the_heap_unfrozen() -> None:
    sim = Simulator(SimConfig(seed=1, nodes=3, duration_ms=2000), RandomFaults(), KvWorkload())
    assert sim.run().ok
    assert gc.get_freeze_count() == 0


def test_a_heap_frozen_by_the_caller_stays_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with heap_frozen():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
