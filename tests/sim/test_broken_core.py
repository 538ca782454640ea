"""The invariants can fail: a deliberately broken Raft core, run in the simulator, is
caught within a bounded number of seeds (both bugs are ones pysyncobj has: docs/chaos-pysyncobj.md).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chaos.sim import (
    FaultMix,
    KvWorkload,
    NetworkConditions,
    RandomFaults,
    SimConfig,
    SimResult,
    simulate,
)
from raftcluster.node import replica as replica_module
from raftcluster.raft.core import RaftCore
from raftcluster.raft.messages import AppendEntries, AppendResponse, VoteResponse
from raftcluster.raft.quorum import majority
from raftcluster.raft.ready import Role


class CountsDuplicatedVotes(RaftCore):
    """Counts every granted vote reply, so a duplicated one counts twice."""

    def _handle_vote_response(self, m: VoteResponse) -> None:
        if self._role != Role.CANDIDATE or m.pre_vote or m.term != self._term:
            super()._handle_vote_response(m)
            return
        tally: list[bool] = self.__dict__.setdefault("tally", {}).setdefault(self._term, [])
        tally.append(m.granted)
        if 1 + sum(tally) >= majority(len(self.conf.voters)):
            self._become_leader()


class TruncatesWithoutConflict(RaftCore):
    """Replaces its log from the first entry of every append, even where it matches: an
    old, reordered append then drops entries the follower has acknowledged."""

    def _handle_append(self, m: AppendEntries) -> None:
        log = self._log
        if m.entries and m.prev_index >= log.committed and log.matches(m.prev_index, m.prev_term):
            self._append_to_log(m.entries)
            last = m.prev_index + len(m.entries)
            log.commit_to(min(m.commit, last))
            self._send(AppendResponse(self._term, self.id, m.src, index=last))
            return
        super()._handle_append(m)


def first_failure(runs: Callable[[int], SimResult], seeds: int) -> SimResult:
    for seed in range(seeds):
        result = runs(seed)
        assert result.error is None, result.error
        if not result.ok:
            return result
    pytest.fail(f"{seeds} seeds with a broken core and no invariant failed")


def test_a_duplicated_vote_counted_twice_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pre-vote (which would hide the bug behind a round that does not count),
    a candidate that counts one voter twice wins with a minority: two leaders in a term,
    or a leader without the latest committed entries. Caught in most seeds."""
    monkeypatch.setattr(replica_module, "RaftCore", CountsDuplicatedVotes)
    mix = FaultMix(
        mean_gap_ms=700, partition=3, isolate_leader=3, link_cut=1, crash=1, pause=1, clock=0,
        network=3, max_duplicate=0.6, max_delay_ms=200, max_fault_ms=3_000,
    )  # fmt: skip
    noisy = NetworkConditions(loss=0.05, duplicate=0.5, min_delay_ms=1, max_delay_ms=20)

    def runs(seed: int) -> SimResult:
        config = SimConfig(
            seed=seed, nodes=5, duration_ms=30_000, base_network=noisy, pre_vote=False
        )
        return simulate(config, RandomFaults(mix), check_timeout_s=None)

    result = first_failure(runs, seeds=20)
    assert result.violation is not None
    assert result.violation["invariant"] in ("election safety", "leader completeness")


def test_a_follower_truncating_without_a_conflict_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Appends delayed up to 100 ms arrive out of order; a stale one makes the follower
    drop entries it acknowledged, which the leader counted towards commit. Typically a
    later leader lacks a committed entry (leader completeness); in some seeds the resends
    feed on each other instead (message storm), the cluster never recovers (liveness), or
    the replicas never agree again after the faults heal (convergence)."""
    monkeypatch.setattr(replica_module, "RaftCore", TruncatesWithoutConflict)
    reordering = NetworkConditions(min_delay_ms=1, max_delay_ms=100)
    mix = FaultMix(
        mean_gap_ms=1_500, partition=1, isolate_leader=4, link_cut=1, crash=2, pause=1, clock=0,
        network=1, max_fault_ms=3_000,
    )  # fmt: skip

    def runs(seed: int) -> SimResult:
        config = SimConfig(
            seed=seed, nodes=3, duration_ms=30_000, heal_timeout_ms=10_000,
            base_network=reordering,
        )  # fmt: skip
        workload = KvWorkload(clients=3, max_think_ms=50)
        return simulate(config, RandomFaults(mix), workload, check_timeout_s=None)

    result = first_failure(runs, seeds=20)
    assert result.violation is not None
    assert result.violation["invariant"] in (
        "leader completeness", "state machine safety", "acknowledged writes", "log matching",
        "election safety", "message storm", "liveness", "convergence",
    )  # fmt: skip
