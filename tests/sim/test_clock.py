"""A simulated node's clock: `virtual` is the exact inverse of `local` the loop needs."""

from __future__ import annotations

import random

from chaos.sim.clock import MAX_DRIFT_PPM, NodeClock


def test_virtual_is_the_first_time_the_clock_reads_a_value() -> None:
    """`virtual(local_ms, at_least)`: the first virtual time, not before `at_least`, at
    which the clock reads `local_ms` or later (brute force over clocks skewed, drifting
    either way, jumped and re-rated)."""
    rng = random.Random(7)
    for _ in range(2_000):
        clock = NodeClock(rng.randint(0, 5_000), rng.randint(-MAX_DRIFT_PPM, MAX_DRIFT_PPM))
        if rng.random() < 0.5:
            clock.jump(rng.randint(0, 2_000), rng.randint(0, 3_000))
        if rng.random() < 0.5:
            clock.set_drift(rng.randint(2_000, 4_000), rng.randint(-MAX_DRIFT_PPM, MAX_DRIFT_PPM))
        at_least = rng.randint(4_000, 6_000)
        local_ms = clock.local(at_least) + rng.randint(-50, 400)
        expected = at_least
        while clock.local(expected) < local_ms:
            expected += 1
        assert clock.virtual(local_ms, at_least) == expected
