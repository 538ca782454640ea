"""Nemeses that reshape the network between nodes: `halves`, `isolate-leader`,
`majorities-ring`, `bridge`. Each replaces the current cuts when its episode begins and
heals every cut when it ends (combined, they overwrite each other's shapes)."""

from __future__ import annotations

from chaos.sim.faults import CutLinks, Fault, HealNetwork, Partition
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemesis import ClusterView


class Halves(Episodes):
    """Two random halves (sizes n // 2 and the rest), cut from each other."""

    name = "halves"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        if len(self.nodes) < 2:
            return []
        nodes = list(self.nodes)
        self.rng.shuffle(nodes)
        half = len(nodes) // 2
        groups = (tuple(sorted(nodes[:half])), tuple(sorted(nodes[half:])))
        self.later(now_ms + hold_ms, HealNetwork(), "heal")
        return [self.inject("partition", Partition(groups))]


class IsolateLeader(Episodes):
    """The leader alone on one side, everyone else on the other (a random node when
    there is no leader)."""

    name = "isolate-leader"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        if len(self.nodes) < 2:
            return []
        target, label = view.leader, "isolate-leader"
        if not target:
            target, label = self.rng.choice(self.nodes), "isolate-node"
        others = tuple(n for n in self.nodes if n != target)
        self.later(now_ms + hold_ms, HealNetwork(), "heal")
        return [self.inject(label, Partition(((target,), others)))]


class MajoritiesRing(Episodes):
    """Nodes in a random ring; each hears only from itself and the next ones up to a
    majority, so every node sees a majority and no two see the same one (the links are
    cut in one direction: a node's messages reach those whose window holds it)."""

    name = "majorities-ring"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        n = len(self.nodes)
        if n < 3:
            return []
        ring = list(self.nodes)
        self.rng.shuffle(ring)
        majority = n // 2 + 1
        cuts: list[tuple[int, int]] = []
        for i, dst in enumerate(ring):
            hears = {ring[(i + j) % n] for j in range(majority)}
            cuts.extend((src, dst) for src in self.nodes if src not in hears)
        self.later(now_ms + hold_ms, HealNetwork(), "heal")
        return [HealNetwork(), self.inject("ring", CutLinks(tuple(cuts)))]


class Bridge(Episodes):
    """Two halves cut from each other, and one node that talks to both."""

    name = "bridge"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        if len(self.nodes) < 3:
            return []
        nodes = list(self.nodes)
        self.rng.shuffle(nodes)
        rest = nodes[1:]  # nodes[0] is the bridge
        a, b = rest[: len(rest) // 2], rest[len(rest) // 2 :]
        cuts = tuple(link for x in a for y in b for link in ((x, y), (y, x)))
        self.later(now_ms + hold_ms, HealNetwork(), "heal")
        return [HealNetwork(), self.inject("bridge", CutLinks(cuts))]
