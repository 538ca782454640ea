"""The node core: writes, reads, watches, membership and services through `Replica`s.

Each test drives a `LocalCluster` (tests/node/harness.py) of real replicas over
`MemoryStorage`, with in-order delivery, cuts and crashes, and looks at client replies.
"""

from __future__ import annotations

import copy
import random

import pytest

from raftcluster.node.config import ReplicaConfig
from raftcluster.node.protocol import (
    Changed,
    ChangeMembership,
    Consistency,
    GetStatus,
    LeaderTransferred,
    MembershipChanged,
    MembershipOp,
    NodeStatus,
    NotLeader,
    Query,
    QueryResult,
    RefuseCode,
    Refused,
    Submit,
    TransferLeadership,
    WaitChanges,
    Written,
)
from raftcluster.node.replica import Replica
from raftcluster.raft.ready import Role
from raftcluster.raft.types import EntryKind
from raftcluster.storage.memory import MemoryStorage
from statemachine.codec import Message, decode, encode
from statemachine.kv import Put, Range, RangeResult
from statemachine.sessions.messages import (
    ExpireSessions,
    KeepAlive,
    OpenSession,
    SessionOpened,
    SessionRequest,
)
from tests.node.harness import LocalCluster, make_config


def open_session(cluster: LocalCluster, node: int, ttl_ms: int = 60_000) -> int:
    opened = cluster.write(node, OpenSession(cluster.now_ms, ttl_ms))
    assert isinstance(opened, SessionOpened)
    return opened.session


def put(session: int, seq: int, key: bytes, value: bytes) -> Submit:
    return Submit(encode(SessionRequest(session, seq, seq - 1, Put(key, value))))


def get(key: bytes, consistency: Consistency = Consistency.LINEARIZABLE) -> Query:
    return Query(encode(Range(key)), consistency)


def value_of(reply: object) -> bytes | None:
    assert isinstance(reply, QueryResult), reply
    result = decode(reply.result, Message)
    assert isinstance(result, RangeResult)
    return result.kvs[0].value if result.kvs else None


def test_a_write_on_the_leader_is_applied_and_answered_with_its_result() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    reply = cluster.ask(leader, put(session, 1, b"k", b"v1"))
    assert isinstance(reply, Written)
    assert decode(reply.result, Message).revision == 2  # type: ignore[attr-defined]
    cluster.run(200)
    for replica in cluster.replicas.values():
        assert replica.applied_index >= reply.index
        assert value_of(QueryResult(0, replica.state.query(encode(Range(b"k"))))) == b"v1"


def test_a_follower_answers_not_leader_with_the_leader_it_knows() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    cluster.run(100)
    follower = next(i for i in cluster.replicas if i != leader)
    reply = cluster.ask(follower, Submit(encode(OpenSession(0, 10_000))))
    assert reply == NotLeader(leader)
    reply = cluster.ask(follower, ChangeMembership(MembershipOp.REMOVE, 3))
    assert reply == NotLeader(leader)


def test_a_retry_of_the_same_session_request_is_applied_once() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    first = cluster.ask(leader, put(session, 1, b"k", b"v"))
    again = cluster.ask(leader, put(session, 1, b"k", b"v"))
    assert isinstance(first, Written) and isinstance(again, Written)
    assert again.index > first.index  # a new log entry...
    assert again.result == first.result  # ...answered with the kept reply, not applied again
    state = cluster.replicas[leader].state.query(encode(Range(b"k")))
    assert decode(state, RangeResult).kvs[0].version == 1


@pytest.mark.parametrize(
    "command",
    [
        b"\xff\x00 not cbor",
        encode(Put(b"k", b"v")),  # outside a session: could be applied twice
        encode(ExpireSessions(10**9)),  # only the leader's services decide time
    ],
)
def test_a_command_a_client_may_not_propose_is_refused_as_bad_request(command: bytes) -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    reply = cluster.ask(leader, Submit(command))
    assert isinstance(reply, Refused) and reply.code == RefuseCode.BAD_REQUEST
    assert reply.code.definite


def test_linearizable_reads_on_the_leader_and_through_a_follower_see_the_last_write() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    cluster.ask(leader, put(session, 1, b"k", b"v1"))
    follower = next(i for i in cluster.replicas if i != leader)
    assert value_of(cluster.ask(leader, get(b"k"))) == b"v1"
    assert value_of(cluster.ask(follower, get(b"k"))) == b"v1"


def test_a_partitioned_follower_serves_stale_reads_but_times_out_linearizable_ones() -> None:
    cluster = LocalCluster(3, read_timeout_ms=500)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    cluster.ask(leader, put(session, 1, b"k", b"old"))
    cluster.run(200)
    follower = next(i for i in cluster.replicas if i != leader)
    cluster.isolate(follower)
    cluster.ask(leader, put(session, 2, b"k", b"new"))
    assert value_of(cluster.ask(follower, get(b"k", Consistency.STALE))) == b"old"
    reply = cluster.ask(follower, get(b"k"), within_ms=2_000)
    assert isinstance(reply, Refused) and reply.code == RefuseCode.TIMED_OUT


def test_a_deposed_leader_never_answers_a_linearizable_read() -> None:
    cluster = LocalCluster(3, read_timeout_ms=2_000)
    old = cluster.elect()
    session = open_session(cluster, old)
    cluster.ask(old, put(session, 1, b"k", b"old"))
    cluster.isolate(old)
    cluster.run(1_000)
    new = cluster.leader()
    assert new != old and cluster.replicas[new].core.term > cluster.replicas[old].core.term
    cluster.ask(new, put(session, 2, b"k", b"new"))
    reply = cluster.ask(old, get(b"k"), within_ms=3_000)
    assert isinstance(reply, (Refused, NotLeader)), reply  # never the old value


def test_a_write_replaced_by_a_new_leader_is_answered_not_committed() -> None:
    cluster = LocalCluster(3, request_timeout_ms=60_000)
    old = cluster.elect()
    session = open_session(cluster, old)
    cluster.isolate(old)
    cluster.request(old, put(session, 1, b"k", b"lost"), rid=7)
    cluster.run(1_500)
    new = cluster.leader()
    assert new != old
    cluster.ask(new, put(session, 2, b"k", b"kept"), client="other")
    cluster.ask(new, put(session, 3, b"k", b"kept again"), client="other")
    cluster.heal()
    cluster.run(1_500)
    answers = [r for rid, r in cluster.replies["c"] if rid == 7]
    assert answers == [answers[0]] and isinstance(answers[0], Refused)
    assert answers[0].code == RefuseCode.NOT_COMMITTED and answers[0].code.definite


def test_a_write_that_cannot_commit_times_out_with_an_unknown_outcome() -> None:
    cluster = LocalCluster(3, request_timeout_ms=400)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    for other in cluster.replicas:
        if other != leader:
            cluster.crash(other)
    reply = cluster.ask(leader, put(session, 1, b"k", b"v"), within_ms=1_000)
    assert isinstance(reply, Refused) and reply.code == RefuseCode.TIMED_OUT
    assert not reply.code.definite


def test_pending_requests_are_bounded() -> None:
    cluster = LocalCluster(3, max_pending_requests=2)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    for other in cluster.replicas:
        if other != leader:
            cluster.crash(other)  # nothing commits: writes stay pending
    for seq in (1, 2, 3):
        cluster.request(leader, put(session, seq, b"k", b"v"), rid=seq)
    third = [r for rid, r in cluster.replies["c"] if rid == 3]
    assert len(third) == 1 and isinstance(third[0], Refused)
    assert third[0].code == RefuseCode.OVERLOADED and third[0].code.definite
    assert cluster.replicas[leader].pending_requests == 2


def test_a_duplicate_of_a_pending_request_is_not_proposed_twice() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    replica = cluster.replicas[leader]
    last = replica.core.status().last_index
    request = put(session, 1, b"k", b"v")
    replica.client_request("c", 99, request, cluster.now_ms)
    replica.client_request("c", 99, request, cluster.now_ms)
    assert replica.core.status().last_index == last + 1


def test_the_leader_expires_sessions_on_its_timer() -> None:
    cluster = LocalCluster(3, session_expiry_interval_ms=200)
    leader = cluster.elect()
    session = open_session(cluster, leader, ttl_ms=1_000)
    cluster.run(1_500)
    reply = cluster.ask(leader, put(session, 1, b"k", b"v"))
    assert isinstance(reply, Written)
    assert "not open" in str(decode(reply.result, Message))  # expired
    assert _expiries(cluster.replicas[leader]) >= 5


def _expiries(replica: Replica) -> int:
    return sum(
        1
        for e in replica.core.log_entries()
        if e.kind == EntryKind.NORMAL
        and e.data
        and isinstance(decode(e.data, Message), ExpireSessions)
    )


class CountingService:
    name = "counting"

    def __init__(self) -> None:
        self.runs: list[int] = []

    def next_due_ms(self) -> int:
        return (self.runs[-1] + 10) if self.runs else 0

    def run(self, now_ms: int) -> tuple[Message, ...]:
        self.runs.append(now_ms)
        return ()


def test_leader_services_run_only_on_a_leader_that_hears_from_a_quorum() -> None:
    service = CountingService()
    cluster = LocalCluster(3, services=lambda: (service,))
    leader = cluster.elect()
    cluster.run(300)
    assert service.runs and service.runs[-1] >= cluster.now_ms - 20  # running while in contact
    for other in cluster.replicas:
        if other != leader:
            cluster.crash(other)
    cut_at = cluster.now_ms
    cluster.run(250)
    assert cluster.replicas[leader].core.role == Role.LEADER  # not yet deposed by check-quorum
    assert cut_at + 100 <= service.runs[-1] <= cut_at + 150  # but stopped after half a timeout


def test_snapshots_are_taken_persisted_and_restored() -> None:
    cluster = LocalCluster(3, snapshot_every_entries=5)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    for seq in range(1, 13):
        cluster.ask(leader, put(session, seq, b"k%d" % seq, b"v"))
    cluster.run(300)
    for replica in cluster.replicas.values():
        assert replica.snapshot_index >= 5
        assert replica.core.status().first_index == replica.snapshot_index + 1
    victim = next(i for i in cluster.replicas if i != leader)
    saved = cluster.replicas[victim].snapshot_index
    cluster.crash(victim)
    restarted = cluster.restart(victim)
    assert restarted.snapshot_index == restarted.applied_index == saved  # from storage
    cluster.run(300)  # then replays the log after it
    assert restarted.applied_index == cluster.replicas[leader].applied_index
    assert restarted.state.snapshot() == cluster.replicas[leader].state.snapshot()


def test_a_follower_that_fell_behind_catches_up_from_a_snapshot() -> None:
    cluster = LocalCluster(3, snapshot_every_entries=4)
    leader = cluster.elect()
    lagging = next(i for i in cluster.replicas if i != leader)
    cluster.crash(lagging)
    session = open_session(cluster, leader)
    for seq in range(1, 15):
        cluster.ask(leader, put(session, seq, b"k", b"v%d" % seq))
    cluster.restart(lagging)
    cluster.run(1_000)
    ours, theirs = cluster.replicas[lagging], cluster.replicas[leader]
    assert ours.applied_index == theirs.applied_index
    assert ours.state.snapshot() == theirs.state.snapshot()
    assert ours.snapshot_index > 0


class RecordingStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def save_snapshot(self, snapshot):  # type: ignore[no-untyped-def]
        self.calls.append("snapshot")
        super().save_snapshot(snapshot)

    def append(self, entries):  # type: ignore[no-untyped-def]
        self.calls.append("entries")
        super().append(entries)

    def set_hard_state(self, hard_state):  # type: ignore[no-untyped-def]
        self.calls.append("hard_state")
        super().set_hard_state(hard_state)

    def sync(self) -> None:
        self.calls.append("sync")
        super().sync()


def test_persist_writes_term_snapshots_entries_hard_state_then_syncs_once() -> None:
    storage = RecordingStorage()
    config = make_config(1, (1,), snapshot_every_entries=3)
    replica = Replica(config, storage, random.Random(1))
    rank = ["snapshot", "entries", "hard_state"].index
    now, term_first, snapshots = 0, 0, 0
    for i in range(12):
        now += 100
        replica.tick(now)  # a single voter elects itself, then takes writes
        if replica.core.role == Role.LEADER:
            replica.client_request("c", i, Submit(encode(OpenSession(now, 10_000))), now)
        while replica.has_ready():
            storage.calls.clear()
            work = replica.prepare()
            replica.persist(work)
            replica.complete(work)
            job = replica.take_snapshot_job()  # a synchronous shell encodes it at once
            if job is not None:
                replica.snapshot_written(job, job.run())
            order = [c for c in storage.calls if c != "sync"]
            if work.term_first is not None:
                assert order[0] == "hard_state"  # the new term before anything of that term
                order, term_first = order[1:], term_first + 1
            assert order == sorted(order, key=rank)
            assert storage.calls.count("sync") == (1 if work.must_sync else 0)
            if work.must_sync:
                assert storage.calls[-1] == "sync"
            else:  # at most a new commit index, written and left for a later sync
                assert order in ([], ["hard_state"])
                assert not work.ready.term_or_vote_changed
            snapshots += order.count("snapshot")
    assert term_first >= 1 and snapshots >= 2


def test_a_watch_is_answered_when_the_revision_moves_or_when_its_wait_ends() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    follower = next(i for i in cluster.replicas if i != leader)
    cluster.run(100)
    revision = cluster.replicas[follower].state.query(encode(Range(b"k")))
    current = decode(revision, RangeResult).revision
    cluster.request(follower, WaitChanges(current, 60_000), client="w", rid=1)
    assert "w" not in cluster.replies
    cluster.ask(leader, put(session, 1, b"k", b"v"))
    cluster.run(200)
    assert cluster.replies["w"] == [(1, Changed(current + 1))]
    reply = cluster.ask(follower, WaitChanges(current + 1, 300), client="w2")
    assert reply == Changed(current + 1)


def test_status_reports_role_term_leader_indexes_and_configuration() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    cluster.run(200)
    status = cluster.ask(leader, GetStatus())
    assert isinstance(status, NodeStatus)
    assert (status.node_id, status.role, status.leader) == (leader, "leader", leader)
    assert status.voters == (1, 2, 3) and status.learners == ()
    assert status.applied_index == status.commit_index >= 2


def test_membership_add_learner_promote_transfer_and_remove() -> None:
    cluster = LocalCluster(3, spare=1)
    leader = cluster.elect()
    cluster.run(100)
    added = cluster.ask(leader, ChangeMembership(MembershipOp.ADD_LEARNER, 4))
    assert isinstance(added, MembershipChanged) and added.learners == (4,)
    cluster.run(500)
    promoted = cluster.ask(leader, ChangeMembership(MembershipOp.PROMOTE, 4))
    assert isinstance(promoted, MembershipChanged) and promoted.voters == (1, 2, 3, 4)
    cluster.run(300)
    moved = cluster.ask(leader, TransferLeadership(4))
    assert moved == LeaderTransferred(4)
    cluster.run(300)
    assert cluster.leader() == 4
    removed = cluster.ask(4, ChangeMembership(MembershipOp.REMOVE, leader))
    assert isinstance(removed, MembershipChanged) and leader not in removed.voters
    again = cluster.ask(4, ChangeMembership(MembershipOp.REMOVE, leader))
    assert isinstance(again, Refused) and again.code == RefuseCode.CONF_CHANGE_REJECTED


def test_a_restarted_node_recovers_from_storage_and_catches_up() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    cluster.ask(leader, put(session, 1, b"k", b"before"))
    cluster.run(200)
    victim = next(i for i in cluster.replicas if i != leader)
    cluster.crash(victim)
    cluster.ask(leader, put(session, 2, b"k", b"during"))
    restarted = cluster.restart(victim)
    cluster.run(500)
    assert value_of(QueryResult(0, restarted.state.query(encode(Range(b"k"))))) == b"during"


def test_keepalive_is_a_client_command_and_extends_the_session() -> None:
    cluster = LocalCluster(3, session_expiry_interval_ms=100)
    leader = cluster.elect()
    session = open_session(cluster, leader, ttl_ms=1_000)
    for _ in range(4):
        cluster.run(500)
        assert "session" in repr(cluster.write(leader, KeepAlive(session, cluster.now_ms))).lower()
    reply = cluster.ask(leader, put(session, 1, b"k", b"v"))
    assert isinstance(reply, Written) and "PutResult" in repr(decode(reply.result, Message))


class CrashEveryBoundary(MemoryStorage):
    """Before each sync, checks that a crash after any prefix of the batch's writes
    leaves a disk the node can start from."""

    def __init__(self, config_of: ReplicaConfig) -> None:
        super().__init__()
        self.config_of = config_of
        self.checked = 0

    def sync(self) -> None:
        for keep in range(self.pending_writes + 1):
            clone = copy.deepcopy(self)
            clone.crash(keep)
            Replica(self.config_of, clone, random.Random(0))  # raises if the disk is unusable
            self.checked += 1
        super().sync()


def test_a_crash_at_any_write_boundary_leaves_a_disk_the_node_restarts_from() -> None:
    cluster = LocalCluster(3, snapshot_every_entries=4)
    for i in cluster.replicas:  # every node's disk checks every prefix of every batch
        cluster.storages[i] = CrashEveryBoundary(
            make_config(i, cluster.peers, snapshot_every_entries=4)
        )
        cluster.start(i)
    leader = cluster.elect()
    session = open_session(cluster, leader)
    for seq in range(1, 8):
        cluster.ask(leader, put(session, seq, b"k", b"v%d" % seq))
    cluster.isolate(leader)  # a new term: hard states change along with entries
    cluster.run(1_500)
    cluster.heal()
    cluster.run(1_000)
    assert all(s.checked > 20 for s in cluster.storages.values())  # type: ignore[attr-defined]
