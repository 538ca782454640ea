"""Nemeses: seeded schedules of faults.

A `Nemesis` is asked when it next wants to act (`next_ms`) and, at that time, which
faults to inject (`fire`), given a read-only `ClusterView` (so it can target the leader).
It draws every choice from the generator it is given in `setup`, so a seed reproduces
the schedule. The simulator heals everything when the fault period ends, whatever the
nemesis left in place.

`RandomFaults` is the basic mix: partitions of any shape, isolating the leader, link
cuts, crashes (some during a sync, losing unsynced writes), restarts, pauses, clock jumps
and drift, and spells of message loss, duplication, delay and reordering.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from typing import Protocol

import attrs

from chaos.sim.faults import (
    ClockDrift,
    ClockJump,
    Crash,
    CutLinks,
    Fault,
    HealNetwork,
    NetworkConditions,
    Partition,
    Pause,
    Restart,
)


@attrs.frozen
class ClusterView:
    """What a nemesis may look at when it fires."""

    nodes: tuple[int, ...]
    running: tuple[int, ...]  # started and not crashed (paused ones included)
    paused: tuple[int, ...]
    leader: int  # the running leader of the highest term (0: none)
    # The leader's configuration (while none leads: the last leader's, as the engine knows
    # it, or every node a voter).
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()
    # Whether the engine takes membership steps (pysyncobj's adapter does not).
    membership_changes: bool = True
    # Whether its leaders confirm reads by heartbeat rounds (`Engine.read_rounds`).
    read_rounds: bool = True

    def voters_keep_a_majority(self, *, down: int = 0, removed: int = 0) -> bool:
        """Whether a majority of the voters (without `removed`, a voter to be removed)
        still runs with node `down` down as well (0: none). A node that is not running
        may never run again (a damaged disk refuses to start), so a fault that would
        leave the voters without a running majority is one healing cannot undo: every
        fault that takes a node down or removes a voter asks this first. With every node
        a voter it adds nothing to the older rule (`down + 1 <= (n - 1) // 2`)."""
        voters = [v for v in self.voters or self.nodes if v != removed]
        up = sum(1 for v in voters if v in self.running and v != down)
        return up >= len(voters) // 2 + 1


class Nemesis(Protocol):
    """`name` is what the command line calls it. A nemesis may also have `coverage`, a
    dict counting the faults it injected by "name.what": the result reports it."""

    name: str

    def setup(self, rng: random.Random, nodes: tuple[int, ...], base: NetworkConditions) -> None:
        """Called once before the run: the generator to draw from, the nodes, and the
        network conditions to come back to."""
        ...

    def next_ms(self) -> int | None:
        """When `fire` should next be called (None: never)."""
        ...

    def fire(self, now_ms: int, view: ClusterView) -> Sequence[Fault]:
        """The faults to inject now."""
        ...


@attrs.frozen
class FaultMix:
    """How often faults start, which kinds, and how long they last."""

    mean_gap_ms: int = 2_500  # between the starts of two faults (exponential)
    min_fault_ms: int = 300
    max_fault_ms: int = 8_000
    # Relative weights of the kinds a new fault is drawn from.
    partition: int = 3
    isolate_leader: int = 2
    link_cut: int = 2
    crash: int = 3
    pause: int = 2
    clock: int = 1
    network: int = 3
    # A scripted hard case (chaos/sim/nemeses/hard_cases.py): Figure 8, a deposed
    # leader's queued reads, a crash inside a vote's persist, a snapshot over a stale log,
    # a split vote under duplicated messages.
    hard_case: int = 2
    # An I/O error, or damage to synced data found at the next start (chaos/sim/nemeses/disks.py).
    disk: int = 2
    # A membership step and its way back (chaos/sim/nemeses/membership.py), where the
    # engine takes them. Last among the kinds: an engine that does not draws the others
    # as it did before this kind existed (a zero weight at the end moves no draw).
    membership: int = 1
    max_loss: float = 0.3
    max_duplicate: float = 0.2
    max_truncate: float = 0.05  # frames delivered cut short (the decoder must refuse them)
    max_delay_ms: int = 300

    def kinds(self) -> tuple[tuple[str, int], ...]:
        return (
            ("partition", self.partition),
            ("isolate-leader", self.isolate_leader),
            ("link-cut", self.link_cut),
            ("crash", self.crash),
            ("pause", self.pause),
            ("clock", self.clock),
            ("network", self.network),
            ("hard-case", self.hard_case),
            ("disk", self.disk),
            ("membership", self.membership),
        )


class RandomFaults:
    """A random mix of every fault kind, overlapping, each undone after a while."""

    name = "random"

    def __init__(self, mix: FaultMix | None = None) -> None:
        self.mix = mix or FaultMix()
        self._rng = random.Random(0)
        self._nodes: tuple[int, ...] = ()
        self._base = NetworkConditions()
        self._queue: list[tuple[int, int, Fault | None]] = []  # None: start a new fault
        self._seq = 0
        self.coverage: dict[str, int] = {}

    def setup(self, rng: random.Random, nodes: tuple[int, ...], base: NetworkConditions) -> None:
        self._rng, self._nodes, self._base = rng, nodes, base
        self._schedule(self._gap(), None)

    def next_ms(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def fire(self, now_ms: int, view: ClusterView) -> Sequence[Fault]:
        out: list[Fault] = []
        while self._queue and self._queue[0][0] <= now_ms:
            _, _, fault = heapq.heappop(self._queue)
            if fault is None:
                out.extend(self._start(now_ms, view))
                self._schedule(now_ms + self._gap(), None)
            else:
                out.append(fault)
        return out

    # -- drawing faults ---------------------------------------------------------------

    def _gap(self) -> int:
        return max(1, int(self._rng.expovariate(1 / self.mix.mean_gap_ms)))

    def _duration(self) -> int:
        return self._rng.randint(self.mix.min_fault_ms, self.mix.max_fault_ms)

    def _schedule(self, at_ms: int, fault: Fault | None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at_ms, self._seq, fault))

    def _later(self, at_ms: int, fault: Fault, label: str) -> None:
        self._schedule(at_ms, fault)

    def _start(self, now: int, view: ClusterView) -> list[Fault]:
        kinds = self.mix.kinds()
        weights = [w if k != "membership" or view.membership_changes else 0 for k, w in kinds]
        kind = self._rng.choices([k for k, _ in kinds], weights)[0]
        self.coverage[f"random.{kind}"] = self.coverage.get(f"random.{kind}", 0) + 1
        rng, until = self._rng, now + self._duration()
        if kind == "partition":
            return [self._partition(until)]
        if kind == "isolate-leader":
            target = view.leader or rng.choice(self._nodes)
            others = tuple(n for n in self._nodes if n != target)
            self._schedule(until, HealNetwork())
            return [Partition(((target,), others))]
        if kind == "link-cut":
            a, b = rng.sample(self._nodes, 2)
            links = ((a, b), (b, a)) if rng.random() < 0.5 else ((a, b),)
            self._schedule(until, HealNetwork())
            return [CutLinks(links)]
        if kind == "crash":
            return self._crash(until, view)
        if kind == "pause":
            return [Pause(rng.choice(self._nodes), until - now)]
        if kind == "disk":
            from chaos.sim.nemeses.disks import disk_fault  # (it imports this module)

            return disk_fault(rng, now, until, view, self._nodes, self._later)
        if kind == "hard-case":
            from chaos.sim.nemeses.hard_cases import SCRIPTS, scripts_for  # (imports us)

            name = rng.choice(scripts_for(len(self._nodes), view.read_rounds))
            self.coverage[f"random.{name}"] = self.coverage.get(f"random.{name}", 0) + 1
            return SCRIPTS[name](rng, now, view, self._nodes, self._later)
        if kind == "membership":
            from chaos.sim.nemeses.membership import membership_change  # (imports us)

            return membership_change(rng, now, until, view, self._nodes, self._later)
        if kind == "clock":
            node = rng.choice(self._nodes)
            if rng.random() < 0.5:
                return [ClockJump(node, rng.randint(1, 5_000))]
            self._schedule(until, ClockDrift(node, 0))
            return [ClockDrift(node, rng.choice((-1, 1)) * rng.randint(100, 50_000))]
        assert kind == "network"
        self._schedule(until, self._base)
        mix = self.mix
        delay = rng.randint(self._base.max_delay_ms, mix.max_delay_ms)
        return [
            NetworkConditions(
                loss=round(rng.uniform(0, mix.max_loss), 3),
                duplicate=round(rng.uniform(0, mix.max_duplicate), 3),
                min_delay_ms=self._base.min_delay_ms,
                max_delay_ms=delay,
                truncate=round(rng.uniform(0, mix.max_truncate), 3),
            )
        ]

    def _partition(self, until: int) -> Partition:
        """Any shape: two or three sides of any sizes (some may be empty)."""
        sides = self._rng.choice((2, 2, 3))
        groups: list[list[int]] = [[] for _ in range(sides)]
        for node in self._nodes:
            groups[self._rng.randrange(sides)].append(node)
        self._schedule(until, HealNetwork())
        return Partition(tuple(tuple(g) for g in groups if g))

    def _crash(self, until: int, view: ClusterView) -> list[Fault]:
        down = len(self._nodes) - len(view.running)
        if down + 1 > (len(self._nodes) - 1) // 2:
            return []  # keep a majority able to run: liveness is checked after healing
        node = self._rng.choice(view.running)
        if not view.voters_keep_a_majority(down=node):
            return []
        self._schedule(until, Restart(node))
        return [Crash(node, during_sync=self._rng.random() < 0.5)]


class ScriptedFaults:
    """Faults at fixed times: `ScriptedFaults([(5_000, Crash(1)), (8_000, Restart(1))])`.
    For tests and for turning a failing schedule into a regression test."""

    name = "scripted"

    def __init__(self, events: Sequence[tuple[int, Fault]]) -> None:
        self._events = sorted(events, key=lambda e: e[0])
        self._next = 0

    def setup(self, rng: random.Random, nodes: tuple[int, ...], base: NetworkConditions) -> None:
        self._next = 0

    def next_ms(self) -> int | None:
        return self._events[self._next][0] if self._next < len(self._events) else None

    def fire(self, now_ms: int, view: ClusterView) -> Sequence[Fault]:
        out = []
        while self._next < len(self._events) and self._events[self._next][0] <= now_ms:
            out.append(self._events[self._next][1])
            self._next += 1
        return out
