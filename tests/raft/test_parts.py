"""The Raft core's parts on their own: log, quorum arithmetic, membership steps, messages,
configuration, and the core's API contract (errors, restarts, the Ready/advance rules)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftcluster.raft.config import RaftConfig
from raftcluster.raft.core import RaftCore
from raftcluster.raft.errors import ConfChangeRejected, NotLeader, RequestDropped
from raftcluster.raft.log import RaftLog
from raftcluster.raft.membership import ConfHistory, changed_conf, make_conf
from raftcluster.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    RaftMessage,
    ReadIndexRequest,
    ReadIndexResponse,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from raftcluster.raft.quorum import VoteResult, committed_index, vote_result
from raftcluster.raft.ready import Role
from raftcluster.raft.types import (
    ConfChange,
    ConfChangeOp,
    ConfState,
    DurableState,
    Entry,
    EntryKind,
    HardState,
    SnapshotMeta,
)
from statemachine.codec import decode, encode
from statemachine.errors import DecodeError, InvalidArgument, LimitExceeded
from tests.raft.harness import Node


def log_of(terms: list[int], snapshot: tuple[int, int] = (0, 0), commit: int = 0) -> RaftLog:
    index, term = snapshot
    entries = [Entry(t, index + 1 + i) for i, t in enumerate(terms)]
    return RaftLog(index, term, entries, commit)


# -- log ----------------------------------------------------------------------------------


def test_log_terms_and_bounds() -> None:
    log = log_of([2, 2, 3], snapshot=(4, 1), commit=5)
    assert (log.first_index(), log.last_index(), log.last_term()) == (5, 7, 3)
    assert [log.term(i) for i in range(3, 9)] == [None, 1, 2, 2, 3, None]
    assert log.is_up_to_date(7, 3) and log.is_up_to_date(1, 4) and not log.is_up_to_date(9, 2)


def test_conflict_hint_skips_a_whole_term() -> None:
    # idx 1 2 3 4 5 6 / terms 1 1 1 1 2 2: a leader whose prev term is 1 at index 6 learns
    # that nothing above 4 can match.
    log = log_of([1, 1, 1, 1, 2, 2])
    assert log.conflict_hint(6, 1) == (4, 1)
    assert log.conflict_hint(9, 2) == (6, 2)
    assert log_of([3, 3], snapshot=(2, 2)).conflict_hint(4, 1) is None  # below the snapshot


def test_append_replaces_only_from_the_conflict_and_never_committed() -> None:
    log = log_of([1, 1, 2, 2], commit=2)
    incoming = [Entry(1, 2), Entry(2, 3), Entry(3, 4)]
    new = incoming[log.find_conflict(incoming) :]
    assert new == [Entry(3, 4)]
    log.append(new)
    assert [log.term(i) for i in range(1, 5)] == [1, 1, 2, 3]
    with pytest.raises(AssertionError, match="truncating committed"):
        log.append([Entry(3, 2)])


def test_stable_to_survives_a_conflict_between_ready_and_advance() -> None:
    log = log_of([1, 1], commit=0)
    log.append([Entry(2, 3), Entry(2, 4)])
    written = log.unstable_entries()
    assert [e.index for e in written] == [3, 4]
    log.append([Entry(3, 4)])  # replaces 4 after the Ready was taken
    log.stable_to(written)
    assert log.unstable_entries() == (Entry(3, 4),)  # 3 is stable, the new 4 is not


@given(st.lists(st.integers(1, 4), min_size=1, max_size=12).map(sorted), st.data())
def test_conflict_hint_never_skips_a_possible_match(terms: list[int], data: st.DataObject) -> None:
    log = log_of(terms)
    index = data.draw(st.integers(0, len(terms) + 2))
    term = data.draw(st.integers(0, 5))
    hint = log.conflict_hint(index, term)
    assert hint is not None
    i, t = hint
    assert t <= term and log.term(i) == t
    for j in range(i + 1, min(index, log.last_index()) + 1):
        assert (log.term(j) or 0) > term  # every skipped index has a larger term


# -- quorum and membership ----------------------------------------------------------------


def test_committed_index_is_the_majority_minimum() -> None:
    assert committed_index((1, 2, 3), {1: 5, 2: 3, 3: 9}) == 5
    assert committed_index((1, 2, 3, 4), {1: 5, 2: 3, 3: 9, 4: 1}) == 3
    assert committed_index((), {}) == 0


def test_votes_count_once_per_voter_and_only_voters() -> None:
    assert vote_result((1, 2, 3), {1: True, 7: True, 8: True}) == VoteResult.PENDING
    assert vote_result((1, 2, 3), {1: True, 2: True}) == VoteResult.WON
    assert vote_result((1, 2, 3), {1: True, 2: False, 3: False}) == VoteResult.LOST


def test_membership_steps() -> None:
    conf = make_conf([1, 2, 3])
    assert changed_conf(conf, ConfChangeOp.ADD_LEARNER, 4) == make_conf([1, 2, 3], [4])
    promoted = changed_conf(make_conf([1, 2, 3], [4]), ConfChangeOp.ADD_VOTER, 4)
    assert promoted == make_conf([1, 2, 3, 4])
    assert changed_conf(conf, ConfChangeOp.ADD_LEARNER, 3) == make_conf([1, 2], [3])  # demote
    with pytest.raises(ConfChangeRejected, match="already a voter"):
        changed_conf(conf, ConfChangeOp.ADD_VOTER, 2)
    with pytest.raises(ConfChangeRejected, match="not a member"):
        changed_conf(conf, ConfChangeOp.REMOVE_NODE, 9)
    with pytest.raises(ConfChangeRejected, match="last voter"):
        changed_conf(make_conf([1]), ConfChangeOp.REMOVE_NODE, 1)


def test_conf_history_follows_truncation_and_compaction() -> None:
    def conf_entry(index: int, voters: list[int]) -> Entry:
        cc = ConfChange(ConfChangeOp.ADD_VOTER, voters[-1], make_conf(voters))
        return Entry(1, index, EntryKind.CONF_CHANGE, encode(cc))

    history = ConfHistory(make_conf([1]), 0)
    history.record([Entry(1, 1), conf_entry(2, [1, 2]), Entry(1, 3), conf_entry(4, [1, 2, 3])])
    assert history.current() == make_conf([1, 2, 3]) and history.latest_change_index() == 4
    assert history.at(3) == make_conf([1, 2])
    history.truncate_from(4)  # a conflict removed the newest change: back to the one before
    assert history.current() == make_conf([1, 2])
    history.compact_to(3)
    assert (history.base, history.base_index, history.at(3)) == (make_conf([1, 2]), 3, history.base)


# -- messages and configuration -----------------------------------------------------------

META = SnapshotMeta(7, 2, make_conf([1, 2, 3]))
MESSAGES: list[RaftMessage] = [
    AppendEntries(3, 1, 2, 4, 2, 4, (Entry(2, 5), Entry(3, 6, data=b"x"))),
    AppendResponse(3, 2, 1, 6),
    AppendResponse(3, 2, 1, 6, reject=True, hint_index=4, hint_term=2),
    Heartbeat(3, 1, 2, 5, 9),
    HeartbeatResponse(3, 2, 1, 9),
    VoteRequest(4, 3, 1, 6, 3, pre_vote=True),
    VoteResponse(4, 1, 3, pre_vote=True, granted=True),
    InstallSnapshot(3, 1, 2, META, 0, b"chunk", done=False),
    SnapshotResponse(3, 2, 1, 7, 5),
    TimeoutNow(3, 1, 2),
    ReadIndexRequest(3, 2, 1, b"ctx"),
    ReadIndexResponse(3, 1, 2, 6, b"ctx"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_round_trip_through_the_codec(message: RaftMessage) -> None:
    assert decode(encode(message), RaftMessage) == message


def test_an_append_that_is_not_a_log_slice_is_refused_at_decode() -> None:
    good = AppendEntries(3, 1, 2, 4, 2, 4, (Entry(2, 5),))
    bad = encode(good).replace(encode(Entry(2, 5)), encode(Entry(2, 6)))
    with pytest.raises(DecodeError, match="entries"):
        decode(bad, RaftMessage)
    with pytest.raises(InvalidArgument):
        AppendEntries(3, 1, 2, 4, 2, 4, (Entry(4, 5),))  # entry term above the leader's


def test_config_validation() -> None:
    with pytest.raises(InvalidArgument, match="twice the heartbeat"):
        RaftConfig(node_id=1, election_timeout_ms=150, heartbeat_interval_ms=100)
    with pytest.raises(InvalidArgument, match="distinct"):
        RaftConfig(node_id=1, peers=(1, 1))
    with pytest.raises(InvalidArgument, match="peer or a learner"):
        RaftConfig(node_id=1, peers=(1, 2), learners=(2,))
    with pytest.raises(InvalidArgument, match="itself"):
        RaftConfig(node_id=4, peers=(1, 2, 3))
    assert RaftConfig(node_id=4, peers=(1, 2, 3), learners=(4,)).learners == (4,)


# -- the core's API contract --------------------------------------------------------------


def single_leader() -> Node:
    node = Node.start(RaftConfig(node_id=1, peers=(1,)), seed=1)
    node.core.campaign()
    while node.core.has_ready():
        node.handle_ready()
    assert node.core.role == Role.LEADER
    return node


def test_follower_refuses_proposals_with_a_leader_hint() -> None:
    core = RaftCore(RaftConfig(node_id=2, peers=(1, 2, 3)), DurableState(), random.Random(1))
    with pytest.raises(NotLeader) as info:
        core.propose(b"x")
    assert info.value.leader == 0
    core.step(Heartbeat(2, 1, 2, 0))
    with pytest.raises(NotLeader) as info:
        core.transfer_leadership(3)
    assert info.value.leader == 1
    with pytest.raises(LimitExceeded):
        core.read_index(b"x" * 1000)


def test_single_node_commits_after_its_own_persist() -> None:
    node = single_leader()
    position = node.core.propose(b"a")
    rd, _ = node.handle_ready()
    assert rd.entries[-1].index == position.index and not rd.committed_entries
    rd, _ = node.handle_ready()  # advancing the previous Ready made the entry durable
    assert [e.data for e in rd.committed_entries] == [b"a"]


def test_only_entries_a_snapshot_or_a_new_term_or_vote_must_be_synced() -> None:
    core = RaftCore(RaftConfig(node_id=2, peers=(1, 2, 3)), DurableState(), random.Random(1))
    while core.has_ready():
        core.advance(core.ready())
    core.step(VoteRequest(2, 1, 2, last_index=1, last_term=1))
    rd = core.ready()  # the vote must be durable before the response leaves
    assert rd.term_or_vote_changed and rd.must_sync and not rd.entries
    core.advance(rd)
    core.step(AppendEntries(2, 1, 2, 1, 1, 1, (Entry(2, 2, EntryKind.NORMAL, b"a"),)))
    rd = core.ready()  # the entry must be durable before the acknowledgement leaves
    assert rd.must_sync and not rd.term_or_vote_changed and rd.hard_state is None
    core.advance(rd)
    core.step(Heartbeat(2, 1, 2, 2))
    rd = core.ready()  # a new commit index alone: written, but no promise rides on it
    assert rd.hard_state is not None and rd.hard_state.commit == 2
    assert rd.must_write and not rd.must_sync
    core.advance(rd)


def test_uncommitted_bytes_bound_proposals() -> None:
    node = Node.start(RaftConfig(node_id=1, peers=(1,), max_uncommitted_bytes=10), seed=1)
    node.core.campaign()
    while node.core.has_ready():
        node.handle_ready()
    node.core.propose(b"x" * 8)
    with pytest.raises(RequestDropped, match="not yet committed"):
        node.core.propose(b"x" * 8)
    while node.core.has_ready():
        node.handle_ready()
    node.core.propose(b"x" * 8)  # committed meanwhile: room again


def test_ready_must_be_advanced_before_the_next() -> None:
    node = single_leader()
    node.core.propose(b"a")
    node.core.ready()
    with pytest.raises(AssertionError, match="advance"):
        node.core.ready()


def test_compact_only_what_is_applied() -> None:
    node = single_leader()
    with pytest.raises(InvalidArgument, match="applied"):
        node.core.compact(node.applied_index + 1, b"")
    snap = node.compact()
    assert snap.meta.index == node.applied_index and snap.meta.conf == make_conf([1])


def test_restart_keeps_term_vote_log_and_snapshot() -> None:
    node = single_leader()
    node.core.propose(b"a")
    while node.core.has_ready():
        node.handle_ready()
    node.compact()
    node.core.propose(b"b")
    while node.core.has_ready():
        node.handle_ready()
    before = node.core.status()
    again = node.restart(seed=2)
    after = again.core.status()
    assert (after.term, after.vote, after.last_index, after.commit) == (
        before.term,
        before.vote,
        before.last_index,
        before.commit,
    )
    assert after.role == Role.FOLLOWER and after.applied == 3  # the snapshot's index
    while again.core.has_ready():  # the entries after the snapshot are applied again
        again.handle_ready()
    assert again.applied == node.applied


def test_durable_state_that_is_not_a_log_is_refused() -> None:
    cfg = RaftConfig(node_id=1)
    gap = DurableState(HardState(2, 0, 0), None, (Entry(1, 1), Entry(1, 3)))
    with pytest.raises(InvalidArgument, match="expected index 2"):
        RaftCore(cfg, gap, random.Random(1))
    beyond = DurableState(HardState(1, 0, 5), None, (Entry(1, 1),))
    with pytest.raises(InvalidArgument, match="commit 5 beyond"):
        RaftCore(cfg, beyond, random.Random(1))


def test_next_deadline_is_when_tick_has_work() -> None:
    core = RaftCore(RaftConfig(node_id=1, peers=(1, 2, 3)), DurableState(), random.Random(5))
    due = core.next_deadline_ms()
    assert 1000 <= due < 2000  # a randomized election timeout in [T, 2T)
    core.tick(due - 1)
    assert core.role == Role.FOLLOWER
    core.tick(due)
    assert core.role == Role.PRE_CANDIDATE


def test_conf_change_payload_round_trips() -> None:
    cc = ConfChange(ConfChangeOp.ADD_LEARNER, 4, ConfState((1, 2, 3), (4,)), b"why")
    assert decode(encode(cc), ConfChange) == cc
