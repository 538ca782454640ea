"""Placement: one pure, deterministic function from the groups' state to decisions.

`place(groups, nodes, at_ms, day_ms, hints)` reads the records (never changes them) and
returns one `Choice` per group: a `Decision` (the node, the deciding rule, a reason,
every eligible node's score and how it was made) and the `Action` it asks of the part.
It iterates over nothing whose order depends on hashing (every walk is over sorted
keys; sets are only asked for membership) and reads no clock: time is `at_ms`.

The rules (docs/groups.md, "Placement", says the same for people):
- groups are decided in descending priority, then name; each decision counts at once in
  the load and anti-affinity of the groups decided after it;
- eligible for a new grant: a member that is UP, in `possible_owners` (if any), on the
  owner of `colocate_with` (if set: wait while it has none); nodes where the group failed
  within its period are avoided unless no other node is eligible;
- score: preferred 1st (of P) +P*1000, 2nd +(P-1)*1000...; `stickiness` on the current
  owner; -500 per group of the same anti-affinity class on the node; -1 per group on the
  node; ties go to the lowest node id;
- failback (unless a resume asked for it) also needs the target to score above the
  owner, whose score includes `stickiness`;
- a group with an owner stays (stability) unless the owner is DRAINING, no longer a
  possible owner, left by an operator's move (`Hints.away`), or away from its colocation
  target; or, ONLINE, failback sends it to a more preferred UP node (`Failback`);
- a group with no owner waits for `start_after` groups to be ONLINE, and for a node.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from statemachine.groups.config import hour_of_day
from statemachine.groups.messages import (
    NO_NODE,
    Decision,
    Failback,
    GroupState,
    NodeState,
    Score,
)
from statemachine.groups.table import Group, Node, no_decision

RANK_BONUS = 1_000  # per place of preference: preferred 1st of 3 gets +3000, 3rd +1000
ANTI_AFFINITY_PENALTY = 500  # per group of the same anti-affinity class on the node
LOAD_PENALTY = 1  # per group on the node: a tie-break between otherwise equal nodes
MAX_REASON_CHARS = 1_000


class Action(enum.Enum):
    STAY = "stay"  # nothing to do (it keeps its owner, or is stopping, or failed)
    GRANT = "grant"  # no owner: grant it to `decision.node` (a new epoch)
    MOVE = "move"  # a planned move to `decision.node`: stop on the owner, then start there
    STOP = "stop"  # wanted offline: stop on the owner
    WAIT = "wait"  # no owner, and nowhere to go now


@attrs.frozen
class Choice:
    decision: Decision
    action: Action


@attrs.frozen
class Hints:
    """What the command being applied adds to the inputs.

    `targets`: a planned move's target, honoured if still eligible when the group has
    no owner (its stop completed, or its owner went down); `away`: the node an
    operator's `MoveGroup(node=0)` takes the group from; `rules`: the rule word of a
    group that lost its owner in this command ("failover", "restart", "move");
    `failback_to`: a node resumed with failback (groups preferring it move back)."""

    targets: Mapping[str, int] = attrs.field(factory=dict)
    away: Mapping[str, int] = attrs.field(factory=dict)
    rules: Mapping[str, str] = attrs.field(factory=dict)
    failback_to: int = NO_NODE


def in_window(hour: int, start: int, end: int) -> bool:
    """[start, end) in hours of the day, wrapping past midnight when start > end; an
    empty window when start == end (use 0..24 for the whole day)."""
    if start < end:
        return start <= hour < end
    if start > end:
        return hour >= start or hour < end
    return False


def position(group: Group) -> int:
    """Where a group counts for load and anti-affinity: its owner, or where it is moving."""
    if group.state == GroupState.STOPPING:
        return group.moving_to
    if group.state in (GroupState.STARTING, GroupState.ONLINE):
        return group.owner
    return NO_NODE


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


class _Tally:
    """Groups per node, and per (anti-affinity class, node), as placement proceeds."""

    def __init__(self) -> None:
        self.load: dict[int, int] = {}
        self.classes: dict[tuple[str, int], int] = {}

    def add(self, group: Group, node: int, step: int) -> None:
        if node == NO_NODE:
            return
        self.load[node] = self.load.get(node, 0) + step
        if group.spec.anti_affinity:
            key = (group.spec.anti_affinity, node)
            self.classes[key] = self.classes.get(key, 0) + step


def place(
    groups: Mapping[str, Group],
    nodes: Mapping[int, Node],
    at_ms: int,
    day_ms: int,
    hints: Hints | None = None,
) -> tuple[Choice, ...]:
    """Every group's choice, in decision order (descending priority, then name)."""
    placer = _Placer(groups, nodes, at_ms, day_ms, hints or Hints())
    order = sorted(groups.values(), key=lambda g: (-g.spec.priority, g.name))
    return tuple(placer.decide(g) for g in order)


class _Placer:
    def __init__(
        self,
        groups: Mapping[str, Group],
        nodes: Mapping[int, Node],
        at_ms: int,
        day_ms: int,
        hints: Hints,
    ) -> None:
        self.groups = groups
        self.nodes = nodes
        self.at_ms = at_ms
        self.day_ms = day_ms
        self.hints = hints
        self.positions = {name: position(groups[name]) for name in sorted(groups)}
        self.tally = _Tally()
        for name in sorted(groups):
            self.tally.add(groups[name], self.positions[name], 1)

    def decide(self, g: Group) -> Choice:
        here = self.positions[g.name]
        self.tally.add(g, here, -1)
        choice = self._choose(g)
        there = here
        if choice.action in (Action.GRANT, Action.MOVE):
            there = choice.decision.node
        elif choice.action == Action.STOP:
            there = NO_NODE
        self.positions[g.name] = there
        self.tally.add(g, there, 1)
        return choice

    # -- the rules -------------------------------------------------------------------------

    def _choose(self, g: Group) -> Choice:
        if g.state in (GroupState.STOPPING, GroupState.FAILED):
            return Choice(g.decision or no_decision(g.name), Action.STAY)
        if not g.online:
            if g.owner != NO_NODE:
                reason = f"set offline: stops on node {g.owner}"
                return Choice(Decision(g.name, NO_NODE, "offline", reason), Action.STOP)
            why = "priority 0: starts only when set online" if g.spec.priority == 0 else ""
            reason = why or "not wanted online"
            return Choice(Decision(g.name, NO_NODE, "offline", reason), Action.WAIT)
        if g.owner != NO_NODE:
            return self._owned(g)
        return self._unowned(g)

    def _colocation(self, g: Group) -> tuple[int, str]:
        """The node `g` must run on (0: none required) and, if it cannot run, why."""
        other = g.spec.colocate_with
        if not other:
            return NO_NODE, ""
        if other not in self.groups:
            return NO_NODE, f"colocate_with {other!r} is not defined"
        node = self.positions[other]
        if node == NO_NODE:
            return NO_NODE, f"waits for {other!r}, which it runs with, to have an owner"
        return node, ""

    def _unowned(self, g: Group) -> Choice:
        unmet = [
            d
            for d in g.spec.start_after
            if d not in self.groups or self.groups[d].state != GroupState.ONLINE
        ]
        if unmet:
            reason = "waits for " + ", ".join(repr(d) for d in unmet) + " to be online"
            return self._wait(g, reason)
        need, blocked = self._colocation(g)
        if blocked:
            return self._wait(g, blocked)
        eligible, notes = self._eligible(g, need, NO_NODE)
        if not eligible:
            return self._wait(g, "no eligible node (" + "; ".join(notes) + ")")
        scores = self._scores(g, eligible)
        target = self.hints.targets.get(g.name, NO_NODE)
        if target in eligible:
            rule, node = "move", target
            reason = f"planned move to node {target} completes"
        else:
            rule, node = self.hints.rules.get(g.name, "start"), scores[0].node
            reason = f"node {node} scores highest of {len(eligible)} eligible"
        return self._choice(g, node, rule, reason, notes, scores, Action.GRANT)

    def _owned(self, g: Group) -> Choice:
        owner = self.nodes.get(g.owner)
        need, _ = self._colocation(g)
        possible = g.spec.possible_owners
        leave = ("", "")
        if owner is None or owner.state == NodeState.DOWN:
            leave = ("failover", f"node {g.owner} is gone")
        elif owner.state == NodeState.DRAINING:
            leave = ("drain", f"node {g.owner} is draining")
        elif possible and g.owner not in possible:
            leave = ("policy", f"node {g.owner} is not a possible owner")
        elif self.hints.away.get(g.name) == g.owner:
            leave = ("move", f"moved off node {g.owner} by an operator")
        elif need not in (NO_NODE, g.owner):
            leave = ("colocate", f"follows {g.spec.colocate_with!r} to node {need}")
        rule, why = leave
        if rule:
            eligible, notes = self._eligible(g, need, g.owner)
            if not eligible:
                reason = f"{why}, but no other node is eligible: stays on node {g.owner}"
                return self._choice(g, g.owner, rule, reason, notes, (), Action.STAY)
            scores = self._scores(g, eligible)
            reason = f"{why}: node {scores[0].node} scores highest of {len(eligible)} eligible"
            return self._choice(g, scores[0].node, rule, reason, notes, scores, Action.MOVE)
        target, why = self._failback(g)
        if target != NO_NODE and target != self.hints.failback_to:
            mine, theirs = self._score(g, g.owner), self._score(g, target)
            if theirs.score <= mine.score:
                why = (
                    f"{why}, but node {target} scores {theirs.score} ({theirs.why}), "
                    f"not above {mine.score} here ({mine.why})"
                )
                target = NO_NODE
        if target != NO_NODE:
            eligible, notes = self._eligible(g, need, NO_NODE)
            scores = self._scores(g, eligible)
            # An operator's resume with failback is not the group's policy deciding: its
            # rule says so, so that the policy's failbacks can be told from it.
            rule = "resume-failback" if target == self.hints.failback_to else "failback"
            return self._choice(g, target, rule, why, notes, scores, Action.MOVE)
        reason = f"stays on node {g.owner}" + (f" ({why})" if why else "")
        return Choice(Decision(g.name, g.owner, "stay", reason), Action.STAY)

    def _failback(self, g: Group) -> tuple[int, str]:
        """A more preferred UP node the policy sends an ONLINE group back to now (or 0),
        and why (or why not). An operator's resume with failback also takes back a group
        still STARTING elsewhere (one a drain just moved off): its start is not awaited."""
        spec = g.spec
        resumed = self.hints.failback_to
        movable = (GroupState.ONLINE, GroupState.STARTING) if resumed else (GroupState.ONLINE,)
        if g.state not in movable or spec.colocate_with:
            return NO_NODE, ""
        preferred = spec.preferred_owners
        rank = preferred.index(g.owner) if g.owner in preferred else len(preferred)
        failed = g.avoided(self.at_ms, self.nodes)
        better = [
            n
            for n in preferred[:rank]
            if n in self.nodes
            and self.nodes[n].state == NodeState.UP
            and (not spec.possible_owners or n in spec.possible_owners)
            and n not in failed
        ]
        if not better:
            return NO_NODE, ""
        if resumed in better:
            return resumed, f"node {resumed} resumed with failback"
        if g.state != GroupState.ONLINE:
            return NO_NODE, ""  # the policy's own failbacks wait for the group to be online
        policy = spec.failback
        if policy == Failback.IMMEDIATE:
            return better[0], f"failback (immediate) to preferred node {better[0]}"
        if policy == Failback.WINDOW:
            hour = hour_of_day(self.at_ms, self.day_ms)
            window = f"hour {hour}, window {spec.window_start_hour}-{spec.window_end_hour}"
            if in_window(hour, spec.window_start_hour, spec.window_end_hour):
                return better[0], f"failback to preferred node {better[0]} ({window})"
            return NO_NODE, f"failback waits for its window: {window}"
        if policy == Failback.STABLE:
            for n in better:
                if self.at_ms - self.nodes[n].since_ms >= spec.stable_ms:
                    return n, f"failback to node {n}, up for {spec.stable_ms} ms or more"
            return NO_NODE, f"failback waits for node {better[0]} to be up {spec.stable_ms} ms"
        return NO_NODE, f"failback never (node {better[0]} is preferred)"

    # -- eligibility and scores --------------------------------------------------------------

    def _eligible(self, g: Group, need: int, leaving: int) -> tuple[list[int], list[str]]:
        """The nodes `g` may be granted to (ascending), and notes on the others."""
        possible = g.spec.possible_owners
        notes: list[str] = []
        found: list[int] = []
        for n in sorted(self.nodes):
            state = self.nodes[n].state
            if n == leaving:
                notes.append(f"node {n} is being left")
            elif state != NodeState.UP:
                notes.append(f"node {n} is {state.name.lower()}")
            elif possible and n not in possible:
                notes.append(f"node {n} is not a possible owner")
            elif need != NO_NODE and n != need:
                notes.append(f"node {n} does not run {g.spec.colocate_with!r}")
            else:
                found.append(n)
        failed = g.avoided(self.at_ms, self.nodes)
        fresh = [n for n in found if n not in failed]
        avoided = [str(n) for n in found if n in failed]
        if avoided and fresh:
            notes.append(f"avoids node(s) {', '.join(avoided)}, where it failed recently")
            return fresh, notes
        if avoided:
            notes.append(f"only node(s) {', '.join(avoided)}, where it failed recently, remain")
        return found, notes

    def _scores(self, g: Group, eligible: list[int]) -> tuple[Score, ...]:
        """Every eligible node's score, best first (ties: lowest node id)."""
        scores = [self._score(g, n) for n in eligible]
        return tuple(sorted(scores, key=lambda s: (-s.score, s.node)))

    def _score(self, g: Group, n: int) -> Score:
        """Node `n`'s score for `g`, and how it was made (`why`)."""
        spec = g.spec
        preferred = spec.preferred_owners
        total = 0
        parts = []
        if n in preferred:
            rank = preferred.index(n)
            bonus = (len(preferred) - rank) * RANK_BONUS
            total += bonus
            parts.append(f"preferred {ordinal(rank + 1)} +{bonus}")
        if n == g.owner and spec.stickiness:
            total += spec.stickiness
            parts.append(f"stickiness +{spec.stickiness}")
        same = self.tally.classes.get((spec.anti_affinity, n), 0) if spec.anti_affinity else 0
        if same:
            total -= same * ANTI_AFFINITY_PENALTY
            parts.append(f"anti-affinity -{same * ANTI_AFFINITY_PENALTY}")
        load = self.tally.load.get(n, 0)
        if load:
            total -= load * LOAD_PENALTY
            parts.append(f"load -{load * LOAD_PENALTY}")
        return Score(n, total, ", ".join(parts) or "no preference 0")

    def _wait(self, g: Group, reason: str) -> Choice:
        return Choice(Decision(g.name, NO_NODE, "wait", reason[:MAX_REASON_CHARS]), Action.WAIT)

    def _choice(
        self,
        g: Group,
        node: int,
        rule: str,
        reason: str,
        notes: list[str],
        scores: tuple[Score, ...],
        action: Action,
    ) -> Choice:
        if notes:
            reason = f"{reason}; not eligible: {'; '.join(notes)}"
        return Choice(Decision(g.name, node, rule, reason[:MAX_REASON_CHARS], scores), action)
