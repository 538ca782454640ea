"""Nemeses that degrade messages: `loss`, `duplicate`, `reorder` (network-wide, for an
episode, each as its own `Degrade` source, so combined they act together) and
`slow-links` (extra delay on some directed links)."""

from __future__ import annotations

from chaos.sim.faults import Degrade, Fault, NetworkConditions, SlowLinks
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemesis import ClusterView


class _Conditions(Episodes):
    label = ""

    def conditions(self) -> NetworkConditions:
        raise NotImplementedError

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        self.later(now_ms + hold_ms, Degrade(self.name, None), "restore")
        return [self.inject(self.label, Degrade(self.name, self.conditions()))]


class Loss(_Conditions):
    """Drop 5% to 50% of all messages."""

    name = label = "loss"

    def conditions(self) -> NetworkConditions:
        return NetworkConditions(loss=round(self.rng.uniform(0.05, 0.5), 3))


class Duplicate(_Conditions):
    """Deliver 10% to 60% of node-to-node messages twice (at independent times)."""

    name = label = "duplicate"

    def conditions(self) -> NetworkConditions:
        duplicate = round(self.rng.uniform(0.1, 0.6), 3)
        return NetworkConditions(duplicate=duplicate, max_delay_ms=max(self.base.max_delay_ms, 50))


class Reorder(_Conditions):
    """Delays up to 50..400 ms, drawn per message, so messages overtake each other."""

    name = label = "reorder"

    def conditions(self) -> NetworkConditions:
        delay = self.rng.randint(max(50, self.base.max_delay_ms), 400)
        return NetworkConditions(max_delay_ms=delay)


class SlowDown(Episodes):
    """Some directed links (or every link of one node, a third of the time) add 50 to
    800 ms to every message."""

    name = "slow-links"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        rng, nodes = self.rng, self.nodes
        pairs = [(a, b) for a in nodes for b in nodes if a != b]
        if not pairs:
            return []
        if rng.random() < 1 / 3:
            slow = rng.choice(nodes)
            links, label = tuple(p for p in pairs if slow in p), "slow-node"
        else:
            links, label = tuple(rng.sample(pairs, rng.randint(1, len(pairs)))), "slow-links"
        self.later(now_ms + hold_ms, SlowLinks(()), "restore")
        return [self.inject(label, SlowLinks(links, rng.randint(50, 800)))]
