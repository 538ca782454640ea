"""`membership`: change the cluster's membership under load, through the Replica's own
path (a `ChangeMembership` request to the leader, proposed as a configuration entry).

Each episode takes one step: while a node is out of the voters, bring it back (add it as
a learner, then promote it once the leader finds it caught up); otherwise remove a random
voter (the leader too, sometimes), keeping at least two. The leader may refuse a step
(another change uncommitted, a learner behind); the next episode tries again. Whatever is
left undone when the faults end, healing restores (every node a voter).
"""

from __future__ import annotations

from chaos.sim.faults import ChangeMembership, Fault
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemesis import ClusterView


class Membership(Episodes):
    name = "membership"

    def __init__(self) -> None:
        super().__init__(mean_gap_ms=1_000, min_hold_ms=200, max_hold_ms=2_000)

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        voters = view.voters or self.nodes
        missing = [n for n in self.nodes if n not in voters]
        if missing:
            node = missing[0]
            op = "promote" if node in view.learners else "add-learner"
            return [self.inject(op, ChangeMembership(op, node))]
        if len(voters) < 3:
            return []
        node = self.rng.choice(voters)
        return [self.inject("remove", ChangeMembership("remove", node))]
