"""The durable-quorum and read-freshness checks on constructed inputs: what each lets
through and what it refuses. (The mutant tests show a campaign finds the bugs they aim at:
tests/sim/test_mutants.py, `leader-counts-its-unsynced-copy` and
`read-before-own-term-commit`.)"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from chaos.sim.durable_quorum import DurableQuorum
from chaos.sim.read_freshness import MAX_WAITING_READS, ReadFreshness
from raftcluster.node.protocol import NotLeader, QueryResult
from raftcluster.raft.ready import Role
from raftcluster.raft.types import ConfState, Entry
from raftcluster.storage import MemoryStorage
from raftcluster.storage.logstate import LogState


class Failed(AssertionError):
    def __init__(self, invariant: str, message: str, nodes: Iterable[int]) -> None:
        super().__init__(f"{invariant}: {message}")
        self.invariant = invariant
        self.nodes = tuple(nodes)


def synced_log(terms: list[int], synced_up_to: int) -> LogState:
    """A disk holding entries of `terms` (index 1, 2...), synced up to `synced_up_to`."""
    disk = MemoryStorage()
    disk.load()
    entries = [Entry(term, i + 1) for i, term in enumerate(terms)]
    disk.append(entries[:synced_up_to])
    disk.sync()
    disk.append(entries[synced_up_to:])  # written, not synced
    return disk.synced


FIVE = ConfState(voters=(1, 2, 3, 4, 5))


def leader_moves_commit(
    check: DurableQuorum, commit: int, synced: LogState, conf: ConfState = FIVE
) -> None:
    assert not check.moved(1, Role.LEADER, 3, 2, conf.voters)  # the leader's first step
    assert check.moved(1, Role.LEADER, 3, commit, conf.voters)
    check.check(1, synced)


def test_a_commit_backed_by_two_acks_and_the_leaders_synced_copy_passes() -> None:
    check = DurableQuorum(Failed)
    check.acknowledged(1, 2, 3, 5)
    check.acknowledged(1, 4, 3, 7)
    leader_moves_commit(check, 5, synced_log([1, 1, 3, 3, 3], synced_up_to=5))
    assert check.commits_checked == 1


def test_a_leader_counting_its_unsynced_copy_is_refused() -> None:
    check = DurableQuorum(Failed)
    check.acknowledged(1, 2, 3, 5)
    check.acknowledged(1, 4, 3, 5)
    with pytest.raises(Failed) as raised:
        leader_moves_commit(check, 5, synced_log([1, 1, 3, 3, 3], synced_up_to=4))
    assert raised.value.invariant == "durable quorum"
    assert "only 2 of its 5 voters" in str(raised.value) and raised.value.nodes == (1,)


def test_acks_of_another_term_or_below_the_commit_do_not_count() -> None:
    check = DurableQuorum(Failed)
    check.acknowledged(1, 2, 2, 9)  # an acknowledgement to this node when it led term 2
    check.acknowledged(1, 3, 3, 4)  # below the new commit index
    check.acknowledged(1, 4, 3, 6)
    with pytest.raises(Failed):
        leader_moves_commit(check, 5, synced_log([1, 1, 3, 3, 3], synced_up_to=5))


def test_the_leaders_own_copy_must_be_of_its_term() -> None:
    check = DurableQuorum(Failed)
    check.acknowledged(1, 2, 3, 5)
    check.acknowledged(1, 4, 3, 5)
    # synced up to 5, but its synced entry 5 is an older term's (the new one is unsynced)
    with pytest.raises(Failed):
        leader_moves_commit(check, 5, synced_log([1, 1, 2, 2, 2], synced_up_to=5))


def test_followers_first_steps_and_unmoved_commits_are_not_judged() -> None:
    check = DurableQuorum(Failed)
    voters = FIVE.voters
    assert not check.moved(1, Role.FOLLOWER, 3, 9, voters)
    assert not check.tracks(1)
    assert not check.moved(1, Role.LEADER, 3, 9, voters)  # became leader: first step
    assert check.tracks(1)
    assert not check.moved(1, Role.LEADER, 3, 9, voters)  # no move
    assert not check.moved(1, Role.LEADER, 4, 12, voters)  # a new term: starts over
    check.stopped(1)
    assert not check.moved(1, Role.LEADER, 4, 15, voters)  # a new incarnation: starts over
    assert check.moved(1, Role.LEADER, 4, 16, voters)
    assert not check.moved(1, Role.FOLLOWER, 4, 17, voters)
    assert not check.tracks(1)


def test_the_quorum_is_that_of_the_configuration_before_or_after_the_step() -> None:
    """A leader may append a membership change in the step in which it commits: a commit
    by a majority of the three voters before the step passes, though not one of the four
    after it; a majority of neither is refused."""
    synced = synced_log([1, 3, 3], synced_up_to=3)
    check = DurableQuorum(Failed)
    check.acknowledged(1, 2, 3, 3)
    assert not check.moved(1, Role.LEADER, 3, 1, (1, 2, 4))
    assert check.moved(1, Role.LEADER, 3, 3, (1, 2, 3, 4))  # node 3 added as a voter
    check.check(1, synced)
    check = DurableQuorum(Failed)
    assert not check.moved(1, Role.LEADER, 3, 1, (1, 2, 4))
    assert check.moved(1, Role.LEADER, 3, 3, (1, 2, 3, 4))
    with pytest.raises(Failed, match=r"only 1 of its 3 voters \[1, 2, 4\] \(or 1 of its 4"):
        check.check(1, synced)


def test_a_single_voter_commits_on_its_own_synced_copy() -> None:
    check = DurableQuorum(Failed)
    alone = ConfState(voters=(1,))
    leader_moves_commit(check, 3, synced_log([1, 3, 3], synced_up_to=3), alone)
    with pytest.raises(Failed):
        leader_moves_commit(DurableQuorum(Failed), 3, synced_log([1, 3, 3], 2), alone)


def test_a_read_answered_below_an_earlier_commit_is_refused() -> None:
    check = ReadFreshness(Failed)
    check.arrived(2, 7, 10)
    check.note_commit(12)  # committed after the read arrived: not owed to it
    check.answered(2, 7, QueryResult(10, b""))
    check.arrived(2, 8, 11)  # (a stopped node had 12)
    with pytest.raises(Failed) as raised:
        check.answered(2, 8, QueryResult(11, b""))
    assert raised.value.invariant == "read freshness" and raised.value.nodes == (2,)
    assert check.reads_checked == 2


def test_refusals_unknown_requests_and_stopped_nodes_are_not_judged() -> None:
    check = ReadFreshness(Failed)
    check.arrived(2, 1, 10)
    check.answered(2, 1, NotLeader(3))  # refused: nothing was read
    check.answered(2, 99, QueryResult(0, b""))  # not a linearizable read it took
    check.arrived(3, 1, 10)
    check.forget(3)
    check.answered(3, 1, QueryResult(0, b""))  # an answer of its next incarnation
    assert check.reads_checked == 0


def test_a_leader_releasing_a_read_below_its_terms_first_entry_is_refused() -> None:
    check = ReadFreshness(Failed)
    check.released(1, 5, 40, 5)
    check.released(1, 5, 12, None)  # compacted into a snapshot: not judged
    with pytest.raises(Failed) as raised:
        check.released(1, 5, 38, 4)
    assert "term 4" in str(raised.value)
    assert check.releases_checked == 3


def test_the_reads_waiting_are_bounded() -> None:
    check = ReadFreshness(Failed)
    for request in range(MAX_WAITING_READS + 5):
        check.arrived(1, request, 1_000)
    check.answered(1, 0, QueryResult(0, b""))  # forgotten, the oldest: not judged
    assert check.reads_checked == 0
    with pytest.raises(Failed):
        check.answered(1, MAX_WAITING_READS + 4, QueryResult(0, b""))
