"""Nemeses that move node clocks: `clock-skew` (a big jump forward and a strong drift for
a while) and `clock-strobe` (a clock whose rate flips between very fast and very slow
every few tens of milliseconds, with small jumps). Clocks never go back (the node core
requires a monotonic clock), so skew is made by jumping the others' future."""

from __future__ import annotations

from chaos.sim.clock import MAX_DRIFT_PPM
from chaos.sim.faults import ClockDrift, ClockJump, Fault
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemesis import ClusterView


class ClockSkew(Episodes):
    name = "clock-skew"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        rng = self.rng
        node = rng.choice(self.nodes)
        drift = rng.choice((-1, 1)) * rng.randint(10_000, MAX_DRIFT_PPM)
        self.later(now_ms + hold_ms, ClockDrift(node, 0), "drift-reset")
        return [
            self.inject("jump", ClockJump(node, rng.randint(500, 10_000))),
            self.inject("drift", ClockDrift(node, drift)),
        ]


class ClockStrobe(Episodes):
    name = "clock-strobe"

    def __init__(self) -> None:
        super().__init__(mean_gap_ms=2_000, min_hold_ms=300, max_hold_ms=2_000)

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        rng = self.rng
        node = rng.choice(self.nodes)
        period = rng.randint(20, 150)
        sign = 1
        for at in range(now_ms + period, now_ms + hold_ms, period):
            sign = -sign
            self.later(at, ClockDrift(node, sign * MAX_DRIFT_PPM), "drift")
            if rng.random() < 0.3:
                self.later(at, ClockJump(node, rng.randint(1, period)), "jump")
        self.later(now_ms + hold_ms, ClockDrift(node, 0), "drift-reset")
        return [self.inject("drift", ClockDrift(node, MAX_DRIFT_PPM))]
