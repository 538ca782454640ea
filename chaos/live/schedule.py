"""The nemesis schedule of a live run: which faults, in which order, for how long.

A pure function of the seed (`plan`): the kinds, their order, their durations and every
random choice (which halves, which node, how much loss or delay) are drawn here, before
the run. What the plan cannot know is left as a rule the run resolves when the fault
starts: "the leader" is whichever node leads at that moment. Timing is real, so the
same seed gives the same plan but not the same interleaving of faults and messages.

Faults never overlap: each step is injected, held, healed, then the cluster gets a
quiet gap before the next. The first steps take every asked-for kind once (in a
seeded order), so a short run still fires each of them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

HOLD_MS = (1_000, 2_500)  # how long a fault lasts
GAP_MS = (500, 1_500)  # quiet time between two faults
# The last fault heals at least this long before the clients stop: the stats check
# (chaos.checker.stats) needs operations after the last heal.
AFTER_LAST_HEAL_MS = GAP_MS[1]
DROP_PROBABILITY = (0.1, 0.4)
DELAY_MS = (20, 200)
MAX_STEPS = 10_000


@attrs.frozen
class Step:
    """One fault. `target` says whom it hits:
    partition: "halves" (sides in `groups`) or "leader" (the leader alone, else `node`);
    kill, pause: "leader" (else `node`) or "node"; drop / delay: "node" (all of its links)."""

    start_ms: int
    hold_ms: int
    nemesis: str
    target: str
    node: int  # the seeded node: the target, or the fallback when no leader is known
    groups: tuple[tuple[int, ...], ...] = ()
    drop_probability: float = 0.0
    delay_ms: int = 0

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.hold_ms


def plan(
    rng: random.Random,
    nemeses: Sequence[str],
    nodes: Sequence[int],
    *,
    duration_ms: int,
    warmup_ms: int,
) -> tuple[Step, ...]:
    """Faults from `warmup_ms` on, each healed by `duration_ms - AFTER_LAST_HEAL_MS`; in
    order of start."""
    assert nodes, "a cluster has nodes"
    if not nemeses:
        return ()
    first = list(nemeses)
    rng.shuffle(first)
    steps: list[Step] = []
    at = warmup_ms
    while len(steps) < MAX_STEPS:
        nemesis = first[len(steps)] if len(steps) < len(first) else rng.choice(list(nemeses))
        step = _step(rng, nemesis, tuple(nodes), at)
        if step.end_ms > duration_ms - AFTER_LAST_HEAL_MS:
            break
        steps.append(step)
        at = step.end_ms + rng.randint(*GAP_MS)
    return tuple(steps)


def _step(rng: random.Random, nemesis: str, nodes: tuple[int, ...], at: int) -> Step:
    hold = rng.randint(*HOLD_MS)
    node = rng.choice(nodes)
    if nemesis == "partition":
        if rng.random() < 0.5 or len(nodes) < 3:
            return Step(at, hold, nemesis, "leader", node)
        shuffled = list(nodes)
        rng.shuffle(shuffled)
        cut = len(shuffled) // 2
        groups = (tuple(sorted(shuffled[:cut])), tuple(sorted(shuffled[cut:])))
        return Step(at, hold, nemesis, "halves", node, groups=groups)
    if nemesis in ("kill", "pause"):
        return Step(at, hold, nemesis, "leader" if rng.random() < 0.5 else "node", node)
    if nemesis == "drop":
        p = round(rng.uniform(*DROP_PROBABILITY), 2)
        return Step(at, hold, nemesis, "node", node, drop_probability=p)
    assert nemesis == "delay", nemesis
    return Step(at, hold, nemesis, "node", node, delay_ms=rng.randint(*DELAY_MS))


def isolate(node: int, nodes: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """The sides of a partition that cuts `node` off from the others."""
    rest = tuple(n for n in nodes if n != node)
    return ((node,), rest) if rest else ((node,),)
