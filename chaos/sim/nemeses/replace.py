"""`replace-disk`: a node's data directory is lost, and the node is brought back through
the membership procedure an operator follows (`raftcluster member replace`).

An episode either starts a replacement or takes its next step (one step per episode; the
leader may refuse a step, and the next episode tries again):
1. a running voter is powered off and its directory wiped (`DiskFault(node, "lost")`);
   it is started again, empty, as a node joining the cluster with a fresh incarnation
   (the engine draws it), the way `node run --join` does: it never bootstraps, and it
   neither votes nor campaigns while the log records its old incarnation;
2. the node is removed from the configuration;
3. it is added again as a learner, with its new incarnation recorded;
4. it is promoted once caught up (the leader refuses until then).
Meanwhile, and over the whole campaign, the five Raft safety properties are checked at
every step. A replacement starts only while a majority stays able to run and the
configuration has at least three voters. The random mix does not include it (each
replacement needs several episodes in order).
"""

from __future__ import annotations

from chaos.sim.faults import ChangeMembership, Crash, DiskFault, Fault, Restart
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemesis import ClusterView


class ReplaceDisk(Episodes):
    name = "replace-disk"

    def __init__(self) -> None:
        super().__init__(mean_gap_ms=700, min_hold_ms=200, max_hold_ms=1_500)
        self._node = 0  # the node being replaced (0: none)
        self._step = ""  # its next step: "remove", "add-learner" or "promote"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        voters = view.voters or self.nodes
        if self._node:
            return self._next_step(view, voters)
        down = len(self.nodes) - len(view.running)
        candidates = [n for n in view.running if n in voters]
        if len(voters) < 3 or down + 1 > (len(voters) - 1) // 2 or not candidates:
            return []
        node = self.rng.choice(candidates)
        self._node, self._step = node, "remove"
        self.later(now_ms + hold_ms, Restart(node), "restart")
        return [self.inject("crash", Crash(node)), self.inject("wipe", DiskFault(node, "lost"))]

    def _next_step(self, view: ClusterView, voters: tuple[int, ...]) -> list[Fault]:
        node = self._node
        member = node in voters or node in view.learners
        if self._step == "remove" and not member:
            self._step = "add-learner"
        elif self._step == "add-learner" and node in view.learners:
            self._step = "promote"
        elif self._step == "promote" and node in voters:
            key = f"{self.name}.replaced"
            self.coverage[key] = self.coverage.get(key, 0) + 1
            self._node, self._step = 0, ""
            return []
        return [self.inject(self._step, ChangeMembership(self._step, node))]
