"""`Episodes`: the shape every named nemesis shares.

After a gap (exponential, `mean_gap_ms` on average), an episode begins: the nemesis
injects its faults and schedules their undoing within the episode's hold time (drawn in
`[min_hold_ms, max_hold_ms]`); the next episode begins a gap after the hold ends, so one
nemesis's episodes never overlap (several nemeses combined do). Every fault it injects is
counted in `coverage` as "name.what", which the result reports.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

from chaos.sim.faults import Fault, NetworkConditions
from chaos.sim.nemesis import ClusterView


class Episodes:
    name = "episodes"

    def __init__(
        self, mean_gap_ms: int = 2_000, min_hold_ms: int = 500, max_hold_ms: int = 5_000
    ) -> None:
        assert mean_gap_ms > 0 and 0 < min_hold_ms <= max_hold_ms
        self.mean_gap_ms, self.min_hold_ms, self.max_hold_ms = mean_gap_ms, min_hold_ms, max_hold_ms
        self.rng = random.Random(0)
        self.nodes: tuple[int, ...] = ()
        self.base = NetworkConditions()
        self.coverage: dict[str, int] = {}
        # (time, order, fault or None to begin an episode, coverage label)
        self._queue: list[tuple[int, int, Fault | None, str]] = []
        self._seq = 0

    def setup(self, rng: random.Random, nodes: tuple[int, ...], base: NetworkConditions) -> None:
        self.rng, self.nodes, self.base = rng, nodes, base
        self._queue, self.coverage = [], {}
        self._push(self._gap(), None, "")

    def next_ms(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def fire(self, now_ms: int, view: ClusterView) -> Sequence[Fault]:
        out: list[Fault] = []
        while self._queue and self._queue[0][0] <= now_ms:
            _, _, fault, label = heapq.heappop(self._queue)
            if fault is None:
                hold = self.rng.randint(self.min_hold_ms, self.max_hold_ms)
                out.extend(self.begin(now_ms, view, hold))
                self._push(now_ms + hold + self._gap(), None, "")
            else:
                out.append(self.inject(label, fault))
        return out

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        """The faults that start an episode (`later` schedules what ends it)."""
        raise NotImplementedError

    # -- for subclasses ---------------------------------------------------------------

    def inject(self, label: str, fault: Fault) -> Fault:
        """`fault`, counted as "name.label"."""
        key = f"{self.name}.{label}"
        self.coverage[key] = self.coverage.get(key, 0) + 1
        return fault

    def later(self, at_ms: int, fault: Fault, label: str) -> None:
        """Inject `fault` at `at_ms` (counted as "name.label" then)."""
        self._push(at_ms, fault, label)

    def _push(self, at_ms: int, fault: Fault | None, label: str) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at_ms, self._seq, fault, label))

    def _gap(self) -> int:
        return max(1, int(self.rng.expovariate(1 / self.mean_gap_ms)))
