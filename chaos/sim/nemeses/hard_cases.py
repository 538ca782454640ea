"""Scripted schedules for Raft's known hard cases, each adaptive (it looks at who leads).

Random faults meet these corners too seldom to be trusted with them, so each is a
schedule of its own: a named nemesis (`figure8`, `deposed-reads`, `vote-crash`,
`stale-log-snapshot`) and one kind of the `random` mix, so every default campaign runs
them. Timings are drawn from the nemesis's generator around the engine's election
timeout as the nemesis can know it (`ClusterView` says nothing of settings), so they
are spread wide: some schedules land the corner exactly, most come near it.

- `figure8` (Raft paper, Figure 8): a leader with one follower is cut off from the rest
  and takes writes it cannot commit, then crashes; the rest elect a leader that takes
  writes at the same indexes and is cut off in turn; the first leader comes back and
  replicates its old entries to a majority before its own no-op; then it crashes and
  the second comes back. A leader that commits an entry of an earlier term by counting
  replicas loses it here. (The commit rule is also checked directly, every cycle.)
- `deposed-reads`: the leader is cut off from the other nodes and paused while clients'
  reads queue for it and the others elect a new leader that commits writes; then it
  resumes, still cut off, and finds the queued reads.
- `vote-crash`: the leader is cut off, so the others campaign; one of them loses power
  inside its next persist (typically the one that records its vote) and comes back at
  once, while the election is still going on.
- `stale-log-snapshot`: the leader and one follower are cut off from the majority long
  enough for the majority to commit and compact past them; the follower's uncommitted
  entries then disagree with the snapshot it is sent when the partition heals.
- `late-answers`: the followers' messages to the leader are delayed more and more, so
  they reach it spread out and ever older (no gap long enough for its check-quorum to
  depose it); then the leader is cut off from sending. The others elect a new leader
  that commits writes while the cut-off leader still receives, as if fresh, answers to
  heartbeats it sent before: answers of earlier read rounds, from followers who have
  since voted for another. A leader that takes any answer as confirming its newest read
  round, or counts old answers as a quorum's contact in a way that serves a read, gives
  a stale read here (the read freshness check).
- `split-vote`: the leader crashes and the other nodes are split into two sides, neither
  a majority, while many node-to-node messages arrive twice; both sides campaign in the
  same terms, over and over. A candidate that counts a repeated answer, a stale answer
  or an answer of the wrong kind as a vote wins without a quorum, and both sides then
  lead the same term (election safety). With fewer than four nodes no side holds two
  voters, so the case is skipped.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from chaos.sim.faults import (
    Crash,
    CutLinks,
    Degrade,
    Fault,
    HealNetwork,
    NetworkConditions,
    Partition,
    Pause,
    Restart,
    SlowLinks,
)
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemesis import ClusterView

Later = Callable[[int, Fault, str], None]
# A hard case, scripted: (generator, now, view, nodes, schedule a later fault) -> faults now
Script = Callable[[random.Random, int, ClusterView, tuple[int, ...], Later], list[Fault]]


def _pick_leader(rng: random.Random, view: ClusterView, nodes: tuple[int, ...]) -> int:
    return view.leader or rng.choice(view.running or nodes)


def figure8(
    rng: random.Random, now: int, view: ClusterView, nodes: tuple[int, ...], later: Later
) -> list[Fault]:
    if len(nodes) < 3 or len(view.running) < len(nodes):
        return []
    first = _pick_leader(rng, view, nodes)
    others = [n for n in nodes if n != first]
    rng.shuffle(others)
    buddy, second, rest = others[0], others[1], others[2:]
    t = now
    # 1. the first leader and a follower alone: writes that cannot commit.
    faults: list[Fault] = [Partition(((first, buddy), (second, *rest)))]
    t += rng.randint(200, 1_500)
    # 2. it crashes; the others (second among them) elect a leader and take writes.
    later(t, Crash(first), "crash-first")
    t += rng.randint(1_000, 4_000)
    # 3. the second side's leader is cut off alone (second stands for it when unknown).
    later(t, Partition(((second,), tuple(n for n in nodes if n != second))), "isolate-second")
    later(t + rng.randint(0, 300), Crash(second), "crash-second")
    # 4. the first comes back and may lead again, replicating its old entries.
    t += rng.randint(100, 600)
    later(t, Restart(first), "restart-first")
    later(t, Partition(((first, *rest, buddy), ())), "first-side")
    # 5. it crashes soon after (its own no-op maybe not yet replicated); the second returns.
    t += rng.randint(50, 2_000)
    later(t, Crash(first, during_sync=rng.random() < 0.5), "crash-first-again")
    later(t + rng.randint(0, 200), Restart(second), "restart-second")
    later(t + rng.randint(0, 200), HealNetwork(), "heal")
    later(t + rng.randint(500, 3_000), Restart(first), "restart-first-again")
    return faults


def deposed_reads(
    rng: random.Random, now: int, view: ClusterView, nodes: tuple[int, ...], later: Later
) -> list[Fault]:
    if not view.leader or view.leader in view.paused or len(nodes) < 2:
        return []
    leader = view.leader
    pause = rng.randint(1_500, 8_000)
    # Cut off from the other nodes (not from clients) for the pause and a while after, so
    # it resumes still believing it leads, with reads queued behind it.
    later(now + pause + rng.randint(100, 3_000), HealNetwork(), "heal")
    others = tuple(n for n in nodes if n != leader)
    return [Partition(((leader,), others)), Pause(leader, pause)]


def vote_crash(
    rng: random.Random, now: int, view: ClusterView, nodes: tuple[int, ...], later: Later
) -> list[Fault]:
    if len(nodes) < 3 or len(view.running) < len(nodes):
        return []
    leader = _pick_leader(rng, view, nodes)
    voters = [n for n in nodes if n != leader]
    victim = rng.choice(voters)
    hold = rng.randint(1_000, 5_000)
    later(now + hold, HealNetwork(), "heal")
    crash_at = now + rng.randint(0, 1_500)
    later(crash_at, Crash(victim, during_sync=True), "crash-in-persist")
    later(crash_at + rng.randint(20, 600), Restart(victim), "restart")
    return [Partition(((leader,), tuple(voters)))]


def stale_log_snapshot(
    rng: random.Random, now: int, view: ClusterView, nodes: tuple[int, ...], later: Later
) -> list[Fault]:
    if len(nodes) < 3:
        return []
    leader = _pick_leader(rng, view, nodes)
    follower = rng.choice([n for n in nodes if n != leader])
    majority = tuple(n for n in nodes if n not in (leader, follower))
    if len(majority) <= len(nodes) // 2 - (len(nodes) % 2 == 0):
        return []  # the rest cannot commit without them (4 nodes: 2 of 4)
    later(now + rng.randint(3_000, 12_000), HealNetwork(), "heal")
    return [Partition(((leader, follower), majority))]


def late_answers(
    rng: random.Random, now: int, view: ClusterView, nodes: tuple[int, ...], later: Later
) -> list[Fault]:
    if len(nodes) < 3 or not view.leader or view.leader in view.paused:
        return []
    leader = view.leader
    to_leader = tuple((n, leader) for n in nodes if n != leader)
    from_leader = tuple((leader, n) for n in nodes if n != leader)
    # Every `step_ms` the answers' extra delay grows by `growth` times that step, so a
    # message sent at s after the start arrives at about s * (1 + growth): arrivals are
    # stretched, with gaps of at most step * growth (under most election timeouts).
    step_ms = rng.randint(50, 200)
    growth = rng.uniform(0.5, 2.0)
    stretch_ms = rng.randint(1_000, 4_000)
    steps = stretch_ms // step_ms
    for i in range(1, steps + 1):
        later(now + i * step_ms, SlowLinks(to_leader, round(i * step_ms * growth)), "later")
    cut_ms = now + steps * step_ms
    later(cut_ms, CutLinks(from_leader), "cut-leader-out")
    # Until every answer sent before the cut has arrived, and a while after.
    end_ms = cut_ms + round(stretch_ms * growth) + rng.randint(0, 2_000)
    later(end_ms, SlowLinks(()), "restore")
    later(end_ms, HealNetwork(), "heal")
    return [SlowLinks(to_leader, 1)]


def split_vote(
    rng: random.Random, now: int, view: ClusterView, nodes: tuple[int, ...], later: Later
) -> list[Fault]:
    if len(nodes) < 4 or len(view.running) < len(nodes):
        return []
    leader = _pick_leader(rng, view, nodes)
    others = [n for n in nodes if n != leader]
    rng.shuffle(others)
    half = len(others) // 2  # 4 others: 2 and 2 of 5; 3 others: 1 and 2 of 4
    sides = (tuple(others[:half]), tuple(others[half:]))
    assert all(2 * len(side) <= len(nodes) for side in sides), "neither side is a majority"
    # Long enough for several rounds of elections on both sides.
    hold = rng.randint(2_000, 8_000)
    twice = NetworkConditions(duplicate=round(rng.uniform(0.3, 0.7), 3), max_delay_ms=30)
    later(now + hold, Degrade("split-vote", None), "restore")
    later(now + hold, HealNetwork(), "heal")
    later(now + hold + rng.randint(0, 2_000), Restart(leader), "restart")
    return [Degrade("split-vote", twice), Crash(leader), Partition(sides)]


# Cases that need more nodes than the others to do anything: the random mix leaves them
# out of smaller clusters rather than spend a hard-case draw on a case that does nothing.
MIN_NODES: dict[str, int] = {"split-vote": 4}
# Cases for an engine whose leaders confirm reads by heartbeat rounds (ReadIndex): the
# random mix leaves them out for another (`ClusterView.read_rounds`).
FOR_READ_ROUNDS = frozenset({"late-answers"})


def scripts_for(nodes: int, read_rounds: bool = True) -> list[str]:
    """The names of the cases the random mix draws from for a cluster of `nodes` (and an
    engine with or without read rounds), in a fixed order."""
    return sorted(
        name
        for name in SCRIPTS
        if nodes >= MIN_NODES.get(name, 0) and (read_rounds or name not in FOR_READ_ROUNDS)
    )


SCRIPTS: dict[str, Script] = {
    "figure8": figure8,
    "deposed-reads": deposed_reads,
    "vote-crash": vote_crash,
    "stale-log-snapshot": stale_log_snapshot,
    "split-vote": split_vote,
    "late-answers": late_answers,
}


class _Scripted(Episodes):
    """One hard case as a named nemesis: an episode at a time, each a fresh schedule."""

    script: Script

    def __init__(self) -> None:
        super().__init__(mean_gap_ms=3_000, min_hold_ms=8_000, max_hold_ms=12_000)

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        def later(at_ms: int, fault: Fault, label: str) -> None:
            self.later(at_ms, fault, label)

        faults = type(self).script(self.rng, now_ms, view, self.nodes, later)
        return [self.inject("begin", f) for f in faults]


def _named(name: str, script: Script) -> type[Episodes]:
    cls = type(name.title().replace("-", ""), (_Scripted,), {"name": name})
    cls.script = staticmethod(script)  # type: ignore[attr-defined]
    return cls


HARD_CASES: dict[str, type[Episodes]] = {name: _named(name, s) for name, s in SCRIPTS.items()}
