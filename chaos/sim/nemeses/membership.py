"""`membership`: change the cluster's membership under load, through the Replica's own
path (a `ChangeMembership` request to the leader, proposed as a configuration entry).

Each episode takes one step (`next_step`): while a node is out of the voters, bring it
back (add it as a learner, then promote it once the leader finds it caught up); otherwise
remove a random voter (the leader too, sometimes), keeping at least two. The leader may
refuse a step (another change uncommitted, a learner behind); the next episode tries
again. Whatever is left undone when the faults end, healing restores (every node a voter).

The `random` mix takes the same steps as one of its kinds (`membership_change`), each with
its way back scheduled, so every default campaign changes the membership too: a bug in
configuration changes (who counts towards a quorum, a removed leader) is not left to a
campaign aimed at it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from chaos.sim.faults import ChangeMembership, Fault
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemesis import ClusterView

# Between the way back's two steps (add as a learner, then promote): time for the leader
# to catch the learner up, in virtual ms (a promotion it refuses waits for healing).
PROMOTE_AFTER_MS = (500, 2_000)


def next_step(
    rng: random.Random, view: ClusterView, nodes: tuple[int, ...]
) -> ChangeMembership | None:
    """The next step: bring back a node out of the voters, else remove a voter, keeping
    at least two and a running majority of the others (None when it cannot)."""
    voters = view.voters or nodes
    missing = [n for n in nodes if n not in voters]
    if missing:
        node = missing[0]
        return ChangeMembership("promote" if node in view.learners else "add-learner", node)
    if len(voters) < 3:
        return None
    node = rng.choice(voters)
    if not view.voters_keep_a_majority(removed=node):
        return None  # the others would have no running majority: healing could not undo it
    return ChangeMembership("remove", node)


def membership_change(
    rng: random.Random,
    now: int,
    until: int,
    view: ClusterView,
    nodes: tuple[int, ...],
    later: Callable[[int, Fault, str], None],
) -> list[Fault]:
    """One step now and the way back from `until`: a removed voter is added again as a
    learner at `until`, then promoted; a node added as a learner is promoted at `until`.
    A step the leader refuses (or a way back that is not needed any more) changes
    nothing, and healing restores every node as a voter in the end."""
    step = next_step(rng, view, nodes)
    if step is None:
        return []
    if step.op == "remove":
        later(until, ChangeMembership("add-learner", step.node), "add-learner")
        until += rng.randint(*PROMOTE_AFTER_MS)
    if step.op != "promote":
        later(until, ChangeMembership("promote", step.node), "promote")
    return [step]


class Membership(Episodes):
    name = "membership"

    def __init__(self) -> None:
        super().__init__(mean_gap_ms=1_000, min_hold_ms=200, max_hold_ms=2_000)

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        step = next_step(self.rng, view, self.nodes)
        return [] if step is None else [self.inject(step.op, step)]
