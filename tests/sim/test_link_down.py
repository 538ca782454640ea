"""The simulator's link-down: a crashed node's connections close at once to its peers,
which then replace a crashed leader well within the election timeout (the same core path
as the trio node's); a partition is not a close, so a leader cut off by one is replaced
only after the timeout."""

from __future__ import annotations

import random

from chaos.sim import ClusterView, KvWorkload, NetworkConditions, SimConfig, Simulator
from chaos.sim.events import RoleChanged
from chaos.sim.faults import Crash, Fault, HealNetwork, Partition, Restart

ELECTION_MS = 1_000
AT_MS = 3_000


class StrikeLeader:
    """At AT_MS, crash the leader (or cut it off from the others); heal at 4.5 s."""

    name = "strike-leader"

    def __init__(self, crash: bool) -> None:
        self.crash = crash
        self.leader = 0
        self._fired = 0

    def setup(self, rng: random.Random, nodes: tuple[int, ...], base: NetworkConditions) -> None:
        self.nodes = nodes

    def next_ms(self) -> int | None:
        return (AT_MS, 4_500, None)[self._fired]

    def fire(self, now_ms: int, view: ClusterView) -> list[Fault]:
        self._fired += 1
        if self._fired == 2:
            return [Restart(self.leader)] if self.crash else [HealNetwork()]
        assert view.leader, "a leader within 3 s"
        self.leader = view.leader
        if self.crash:
            return [Crash(view.leader)]
        others = tuple(n for n in view.nodes if n != view.leader)
        return [Partition(((view.leader,), others))]


def run(crash: bool, seed: int) -> tuple[Simulator, int]:
    """The run, and how long after AT_MS another node became leader."""
    nemesis = StrikeLeader(crash)
    config = SimConfig(
        seed=seed, nodes=3, duration_ms=5_000, keep_trace=True,
        election_timeout_ms=ELECTION_MS, pre_vote=True,
    )  # fmt: skip
    sim = Simulator(config, nemesis, KvWorkload())
    result = sim.run()
    assert result.ok, result.violation or result.error
    elected = [
        r.time_ms for r in sim.trace.records
        if isinstance(r, RoleChanged) and r.role == "leader" and r.time_ms > AT_MS
        and r.node != nemesis.leader
    ]  # fmt: skip
    assert elected, "no new leader"
    return sim, elected[0] - AT_MS


def test_a_crashed_leader_is_replaced_well_within_the_election_timeout() -> None:
    for seed in (1, 2):
        sim, after_ms = run(crash=True, seed=seed)
        assert sim.network.stats.links_closed == 2  # one to each peer
        # One close, a pre-vote and a vote round trip, the fsyncs: far below T (1 s).
        assert after_ms < ELECTION_MS / 2, (seed, after_ms)


def test_a_leader_cut_off_by_a_partition_is_replaced_only_after_the_timeout() -> None:
    for seed in (1,):
        sim, after_ms = run(crash=False, seed=seed)
        assert sim.network.stats.links_closed == 0  # a cut is not a close
        assert after_ms >= ELECTION_MS, (seed, after_ms)
