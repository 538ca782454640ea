"""Membership records in the log: addresses and incarnations, the promotion rules, and a
node that lost its data directory never voting under the identity it had."""

from __future__ import annotations

import pytest

from raftcluster.raft.config import RaftConfig
from raftcluster.raft.errors import ConfChangeRejected
from raftcluster.raft.membership import changed_conf, identity_current, make_conf
from raftcluster.raft.messages import AppendEntries, VoteRequest, VoteResponse
from raftcluster.raft.ready import Role
from raftcluster.raft.types import ConfChangeOp, Member
from tests.raft.harness import Node

FOUNDERS = tuple(Member(n, (f"127.0.0.1:{7000 + n}",)) for n in (1, 2, 3))


def founding(node_id: int, **options: object) -> RaftConfig:
    return RaftConfig(node_id=node_id, peers=(1, 2, 3), members=FOUNDERS, **options)  # type: ignore[arg-type]


def pump(nodes: dict[int, Node], rounds: int = 50) -> None:
    """Handle Readies and deliver messages among `nodes` until quiet."""
    for _ in range(rounds):
        moved = False
        for node in list(nodes.values()):
            if not node.core.has_ready():
                continue
            moved = True
            _, messages = node.handle_ready()
            for m in messages:
                if m.dst in nodes:
                    nodes[m.dst].core.step(m)
        if not moved:
            return
    raise AssertionError("the cluster did not settle")


def heartbeat(node: Node) -> None:
    node.now_ms += node.config.heartbeat_interval_ms
    node.core.tick(node.now_ms)


def cluster() -> dict[int, Node]:
    nodes = {n: Node.start(founding(n, max_promotion_lag_entries=0), seed=n) for n in (1, 2, 3)}
    nodes[1].core.campaign()
    pump(nodes)
    assert nodes[1].core.role == Role.LEADER
    nodes[1].core.propose(b"x")
    pump(nodes)
    return nodes


def test_the_founding_entry_records_every_members_address() -> None:
    nodes = cluster()
    for node in nodes.values():
        assert node.core.conf.members == FOUNDERS
        assert node.core.conf.member(2) == FOUNDERS[1]


def test_membership_steps_keep_the_records_and_refuse_what_breaks_a_rule() -> None:
    conf = make_conf([1, 2, 3], (), FOUNDERS)
    new = Member(4, ("10.0.0.4:7000",), incarnation=99, promote_when_caught_up=True)
    added = changed_conf(conf, ConfChangeOp.ADD_LEARNER, 4, new)
    assert added.learners == (4,) and added.member(4) == new
    promoted = changed_conf(added, ConfChangeOp.ADD_VOTER, 4)
    assert promoted.voters == (1, 2, 3, 4)
    assert promoted.member(4) == Member(4, ("10.0.0.4:7000",), incarnation=99)  # flag spent
    assert changed_conf(promoted, ConfChangeOp.REMOVE_NODE, 4).member(4) is None
    with pytest.raises(ConfChangeRejected, match="not a learner"):
        changed_conf(conf, ConfChangeOp.ADD_VOTER, 5)
    with pytest.raises(ConfChangeRejected, match="127.0.0.1:7002 is node 2's already"):
        changed_conf(conf, ConfChangeOp.ADD_LEARNER, 5, Member(5, ("127.0.0.1:7002",)))
    with pytest.raises(ConfChangeRejected, match="already a voter"):
        changed_conf(conf, ConfChangeOp.ADD_LEARNER, 3, Member(3, ("10.0.0.3:1",)))


def test_a_learner_added_with_its_record_catches_up_and_is_promoted_only_then() -> None:
    nodes = cluster()
    leader = nodes[1].core
    member = Member(4, ("127.0.0.1:7004",), incarnation=12345)
    leader.propose_conf_change(ConfChangeOp.ADD_LEARNER, 4, member=member)
    with pytest.raises(ConfChangeRejected, match="in progress"):
        leader.propose_conf_change(ConfChangeOp.REMOVE_NODE, 2)
    pump(nodes)  # node 4 is not running: it cannot catch up
    assert not leader.caught_up(4) and leader.match_index(4) == 0
    with pytest.raises(ConfChangeRejected, match="learner 4 holds up to 0"):
        leader.propose_conf_change(ConfChangeOp.ADD_VOTER, 4)
    nodes[4] = Node.start(RaftConfig(node_id=4, incarnation=12345), seed=4)
    heartbeat(nodes[1])  # the leader probes again once it hears from 4
    pump(nodes)
    assert leader.caught_up(4) and nodes[4].core.conf.member(4) == member
    leader.propose_conf_change(ConfChangeOp.ADD_VOTER, 4)
    pump(nodes)
    assert all(n.core.conf.voters == (1, 2, 3, 4) for n in nodes.values())
    snapshot = nodes[2].compact()  # the snapshot's configuration keeps the records
    assert snapshot.meta.conf.member(4) == member and snapshot.meta.conf.member(1) == FOUNDERS[0]


def test_a_wiped_node_under_its_old_identity_never_votes_nor_campaigns() -> None:
    nodes = cluster()
    # Node 3's data directory is lost; it comes back empty under a fresh incarnation (as
    # `node --join` does) while the log still records node 3 as a founding voter.
    wiped = Node.start(RaftConfig(node_id=3, incarnation=777), seed=30)
    nodes[3] = wiped
    nodes[1].core.propose(b"z")  # refused by 3: the leader probes it once a heartbeat
    for _ in range(3):
        heartbeat(nodes[1])
        pump(nodes)
    leader = nodes[1].core
    entries = leader.log_entries()  # it learns the log (as a new leader would send it)
    wiped.core.step(AppendEntries(leader.term, 1, 3, 0, 0, leader.commit_index, entries))
    pump(nodes)
    assert wiped.core.conf.voters == (1, 2, 3)
    assert not identity_current(wiped.core.conf, 3, 777)
    term = wiped.core.term
    # A candidate with the longest log (a transfer's, past the lease check) asks it.
    request = VoteRequest(term + 1, 2, 3, last_index=99, last_term=term, transfer=True)
    wiped.core.step(request)
    rd, messages = wiped.handle_ready()
    (answer,) = messages
    assert isinstance(answer, VoteResponse) and not answer.granted
    assert wiped.core.status().vote == 0
    wiped.core.campaign()
    assert wiped.core.role == Role.FOLLOWER


def test_a_replaced_node_behind_on_its_log_votes_for_a_candidate_that_records_it() -> None:
    """Its own log still records its former self; a candidate whose log records its new
    incarnation (so holds the entry that added it) gets its vote, another does not."""
    node = Node.start(RaftConfig(node_id=3, peers=(1, 2, 3), incarnation=55), seed=3)
    node.handle_ready()  # the founding entry: node 3 recorded with incarnation 0
    assert not identity_current(node.core.conf, 3, 55)
    stale = VoteRequest(5, 1, 3, last_index=9, last_term=4, transfer=True, incarnation=0)
    node.core.step(stale)
    _, (refused,) = node.handle_ready()
    assert isinstance(refused, VoteResponse) and not refused.granted
    current = VoteRequest(6, 2, 3, last_index=9, last_term=4, transfer=True, incarnation=55)
    node.core.step(current)
    _, (granted,) = node.handle_ready()
    assert isinstance(granted, VoteResponse) and granted.granted
    assert node.core.status().vote == 2
