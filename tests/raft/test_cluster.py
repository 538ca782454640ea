"""Property tests: Raft cores under random faults keep Raft's safety properties.

Two drivers share one `Checker` (tests/raft/cluster.py):
- `RandomCluster` runs whole clusters for virtual seconds from a seed (delay, reordering,
  loss, duplication, partitions, crashes, compaction, membership changes, reads), then
  heals the network and requires every member to converge;
- a Hypothesis state machine chooses every single event (deliver, duplicate or drop one
  message, tick one node, propose, restart, compact, take a Ready and advance it later)
  so that a failure shrinks to a short sequence.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from raftcluster.raft import core as core_module
from raftcluster.raft.config import RaftConfig
from raftcluster.raft.errors import RaftError
from raftcluster.raft.messages import RaftMessage, VoteResponse
from raftcluster.raft.quorum import majority
from raftcluster.raft.ready import Ready, Role
from tests.raft.cluster import Checker, Faults, RandomCluster, SafetyViolation
from tests.raft.harness import Node

HEAVY = Faults(
    loss=0.2, dup=0.1, max_delay_ms=80, partition=0.01, heal=0.01, crash=0.005,
    compact=0.02, conf_change=0.01, propose=0.3, read=0.1,
)  # fmt: skip
SMALL_WINDOWS = {"max_inflight_msgs": 4, "max_entries_per_msg": 8, "max_snapshot_chunk_bytes": 64}


@pytest.mark.parametrize("seed", range(20))
def test_random_faults_three_voters(seed: int) -> None:
    cluster = RandomCluster(seed, voters=3, spare=2)
    cluster.run(10_000)
    cluster.heal_and_converge()
    assert cluster.stats.proposed > 0 and cluster.checker.committed


@pytest.mark.parametrize("seed", range(20))
def test_heavy_faults_small_windows(seed: int) -> None:
    voters, spare = (3, 2) if seed % 2 else (5, 1)
    cluster = RandomCluster(seed, voters=voters, spare=spare, faults=HEAVY, **SMALL_WINDOWS)
    cluster.run(10_000)
    cluster.heal_and_converge()


CHURN = Faults(
    loss=0.1, dup=0.3, max_delay_ms=30, partition=0.01, heal=0.05, crash=0.02,
    compact=0.1, conf_change=0.03, propose=0.2, read=0.3,
)  # fmt: skip


@pytest.mark.parametrize("seed", range(16))
def test_membership_churn_with_crashes_and_compaction(seed: int) -> None:
    voters, spare = (5, 1) if seed % 2 else (3, 2)
    cluster = RandomCluster(seed, voters=voters, spare=spare, faults=CHURN, check_quorum=False)
    cluster.run(10_000)
    cluster.heal_and_converge()
    assert cluster.stats.conf_changes > 0


@pytest.mark.parametrize("seed", range(4))
def test_without_prevote_or_checkquorum(seed: int) -> None:
    cluster = RandomCluster(seed, voters=5, spare=0, pre_vote=False, check_quorum=False)
    cluster.run(8_000)
    cluster.heal_and_converge()


def test_checker_catches_a_core_that_counts_a_duplicated_vote_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checks can fail: a core that counts every vote reply (duplicates included)
    elects two leaders in one term, and the checker says so."""

    def count_every_reply(self: core_module.RaftCore, m: VoteResponse) -> None:
        if self._role != Role.CANDIDATE or m.pre_vote or m.term != self._term:
            return
        tally = self.__dict__.setdefault("tally", {})
        tally.setdefault(self._term, []).append(m.granted)
        if 1 + sum(tally[self._term]) >= majority(len(self.conf.voters)):
            self._become_leader()

    monkeypatch.setattr(core_module.RaftCore, "_handle_vote_response", count_every_reply)
    faults = Faults(loss=0.3, dup=0.6, propose=0.1, crash=0, conf_change=0, read=0)
    for seed in range(50):
        cluster = RandomCluster(seed, voters=5, spare=0, faults=faults, pre_vote=False)
        try:
            cluster.run(5_000)
        except SafetyViolation as e:
            assert "two leaders in term" in str(e)
            return
    pytest.fail("50 seeds with a vote-counting bug and the checker saw nothing")


# -- Hypothesis: every event chosen, failures shrink --------------------------------------

IDS = (1, 2, 3)


class RaftEvents(RuleBasedStateMachine):
    @initialize(prevote=st.booleans())
    def start(self, prevote: bool) -> None:
        self.checker = Checker()
        self.network: list[RaftMessage] = []
        self.pending: dict[int, Ready] = {}  # a Ready taken but not yet advanced
        self.nodes = {
            i: Node.start(
                RaftConfig(
                    node_id=i,
                    peers=IDS,
                    election_timeout_ms=100,
                    heartbeat_interval_ms=20,
                    pre_vote=prevote,
                    max_inflight_msgs=2,
                    max_entries_per_msg=2,
                    max_snapshot_chunk_bytes=8,
                ),
                seed=i,
            )
            for i in IDS
        }
        self.restarts = 0

    def take_ready(self, i: int) -> None:
        """Persist, send and apply a Ready, but advance it only later (another rule)."""
        node = self.nodes[i]
        if i in self.pending or not node.core.has_ready():
            return
        rd = node.core.ready()
        self.checker.on_ready(i, node.disk.hard_state, rd)
        node.disk.write(rd)
        self.checker.on_persisted(i, node.disk, rd)
        self.network.extend(rd.messages)
        if rd.snapshot is not None:
            node.restore(rd.snapshot)
        node.apply(rd.committed_entries)
        self.pending[i] = rd

    @rule(i=st.sampled_from(IDS))
    def ready(self, i: int) -> None:
        self.take_ready(i)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(sorted(self.pending)))
        self.nodes[i].core.advance(self.pending.pop(i))

    @precondition(lambda self: bool(self.network))
    @rule(pick=st.integers(0, 10_000), keep=st.booleans())
    def deliver(self, pick: int, keep: bool) -> None:
        """Deliver one message in any order; `keep` leaves a copy to deliver again."""
        m = self.network[pick % len(self.network)]
        if not keep:
            self.network.remove(m)
        self.nodes[m.dst].core.step(m)

    @rule(rounds=st.integers(1, 4))
    def settle(self, rounds: int) -> None:
        """A few fault-free rounds (every Ready handled, every message delivered in order),
        so that runs make progress between the adversarial events."""
        for _ in range(rounds):
            for i in IDS:
                if i in self.pending:
                    self.nodes[i].core.advance(self.pending.pop(i))
                self.take_ready(i)
                if i in self.pending:
                    self.nodes[i].core.advance(self.pending.pop(i))
            messages, self.network = self.network, []
            for m in messages:
                self.nodes[m.dst].core.step(m)

    @precondition(lambda self: bool(self.network))
    @rule(pick=st.integers(0, 10_000))
    def drop(self, pick: int) -> None:
        del self.network[pick % len(self.network)]

    @rule(i=st.sampled_from(IDS), ms=st.integers(1, 250))
    def tick(self, i: int, ms: int) -> None:
        node = self.nodes[i]
        node.now_ms += ms
        node.core.tick(node.now_ms)

    @rule(i=st.sampled_from(IDS))
    def campaign(self, i: int) -> None:
        self.nodes[i].core.campaign()

    @rule(i=st.sampled_from(IDS), data=st.binary(min_size=1, max_size=3), n=st.integers(1, 3))
    def propose(self, i: int, data: bytes, n: int) -> None:
        with contextlib.suppress(RaftError):  # not the leader: fine, nothing was taken
            self.nodes[i].core.propose_batch([data] * n)

    @rule(i=st.sampled_from(IDS))
    def read(self, i: int) -> None:
        with contextlib.suppress(RaftError):
            self.nodes[i].core.read_index(b"r")

    @rule(i=st.sampled_from(IDS))
    def restart(self, i: int) -> None:
        self.pending.pop(i, None)
        self.restarts += 1
        self.nodes[i] = self.nodes[i].restart(seed=100 + self.restarts)

    @rule(i=st.sampled_from(IDS))
    def compact(self, i: int) -> None:
        node = self.nodes[i]
        if i not in self.pending and node.applied_index >= node.core.status().first_index:
            node.compact()

    @invariant()
    def safe(self) -> None:
        nodes = list(self.nodes.values())
        self.checker.on_state(nodes)
        self.checker.check_logs(nodes)


TestRaftEvents = RaftEvents.TestCase
TestRaftEvents.settings = settings(
    max_examples=250,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.soak
@pytest.mark.parametrize("variant", ["default", "heavy", "churn"])
def test_soak_many_seeds(variant: str) -> None:
    """`make soak`: hundreds of seeds per fault mix (minutes, not part of `make test`)."""
    faults = {"default": Faults(), "heavy": HEAVY, "churn": CHURN}[variant]
    options = SMALL_WINDOWS if variant == "heavy" else {}
    for seed in range(1000, 1300):
        voters, spare = ((3, 2), (5, 1), (3, 0))[seed % 3]
        cluster = RandomCluster(seed, voters=voters, spare=spare, faults=faults, **options)
        cluster.run(10_000)
        cluster.heal_and_converge()
