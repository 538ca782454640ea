"""The client core against real replicas: sessions, retries, leader changes, outcomes."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftcluster.client.core import ClientConfig, ClientCore
from raftcluster.errors import OutcomeUnknown, Unavailable
from raftcluster.node.protocol import Submit
from statemachine.codec import Message, decode, encode
from statemachine.errors import FutureRevision
from statemachine.kv import Compact, Put, PutResult, Range, RangeResult
from statemachine.sessions.messages import GetSession, SessionInfo, SessionRequest
from tests.node.harness import ClientDriver, LocalCluster


def make_client(cluster: LocalCluster, seed: int = 0, **options: object) -> ClientDriver:
    defaults: dict[str, object] = {"attempt_timeout_ms": 300, "op_timeout_ms": 5_000}
    config = ClientConfig(nodes=tuple(cluster.replicas), **{**defaults, **options})  # type: ignore[arg-type]
    return ClientDriver(cluster, ClientCore(config, random.Random(seed), cluster.now_ms))


def stored(cluster: LocalCluster, node: int, key: bytes) -> tuple[bytes, int] | None:
    result = decode(cluster.replicas[node].state.query(encode(Range(key))), RangeResult)
    return (result.kvs[0].value, result.kvs[0].version) if result.kvs else None


def test_writes_and_reads_succeed_through_whichever_node_the_client_tries_first() -> None:
    for seed in range(3):  # the first node tried differs by seed
        cluster = LocalCluster(3, seed=seed)
        cluster.elect()
        client = make_client(cluster, seed)
        done = client.wait(client.core.write(Put(b"k", b"v"), cluster.now_ms))
        assert isinstance(done.unwrap(), PutResult)
        read = client.wait(client.core.read(Range(b"k"), cluster.now_ms))
        result = read.unwrap()
        assert isinstance(result, RangeResult) and result.kvs[0].value == b"v"
        assert client.core.leader == cluster.leader()


def test_a_lost_reply_is_retried_with_the_same_sequence_and_applied_once() -> None:
    cluster = LocalCluster(3)
    cluster.elect()
    client = make_client(cluster)
    client.wait(client.core.write(Put(b"warm", b"up"), cluster.now_ms))  # session open
    client.drop_replies = 1
    done = client.wait(client.core.write(Put(b"k", b"v"), cluster.now_ms))
    assert done.ok
    submits = [s for s in client.sent if isinstance(s.request, Submit)]
    envelopes = [decode(s.request.command, Message) for s in submits[-2:]]
    assert envelopes[0] == envelopes[1] and isinstance(envelopes[0], SessionRequest)
    cluster.run(200)
    assert stored(cluster, cluster.leader(), b"k") == (b"v", 1)  # applied once


def test_a_write_survives_the_leader_crashing_before_it_answers() -> None:
    cluster = LocalCluster(3)
    old = cluster.elect()
    client = make_client(cluster)
    client.wait(client.core.write(Put(b"warm", b"up"), cluster.now_ms))
    handle = client.core.write(Put(b"k", b"v"), cluster.now_ms)
    client.drop_replies = 1
    client.step()  # the leader commits it, but its answer is lost...
    cluster.crash(old)  # ...and it dies
    done = client.wait(handle)
    assert done.ok, done.error
    new = cluster.leader()
    assert new != old and client.core.leader == new
    assert stored(cluster, new, b"k") == (b"v", 1)


def test_a_follower_points_the_client_at_the_leader() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    client = make_client(cluster)
    client.core.leader = next(i for i in cluster.replicas if i != leader)  # a wrong guess
    done = client.wait(client.core.write(Put(b"k", b"v"), cluster.now_ms))
    assert done.ok and client.core.leader == leader
    assert [s.node for s in client.sent[:2]] == [client.sent[0].node, leader]


def test_an_unreachable_cluster_gives_outcome_unknown_for_writes_and_unavailable_for_reads() -> (
    None
):
    cluster = LocalCluster(3)
    cluster.elect()
    client = make_client(cluster, op_timeout_ms=1_500)
    client.wait(client.core.write(Put(b"warm", b"up"), cluster.now_ms))
    for node in cluster.replicas:  # requests reach the nodes, answers never come back
        cluster.isolate(node)
    client.drop_replies = 10**9
    write = client.wait(client.core.write(Put(b"k", b"v"), cluster.now_ms))
    read = client.wait(client.core.read(Range(b"k"), cluster.now_ms))
    assert isinstance(write.error, OutcomeUnknown)
    assert isinstance(read.error, Unavailable)


def test_a_write_that_was_never_sent_is_unavailable_not_unknown() -> None:
    cluster = LocalCluster(3)
    cluster.elect()
    client = make_client(cluster, op_timeout_ms=1_000)
    client.unreachable = set(cluster.replicas)  # not even the OpenSession gets through
    done = client.wait(client.core.write(Put(b"k", b"v"), cluster.now_ms))
    assert isinstance(done.error, Unavailable)


def test_a_state_machine_refusal_is_a_definite_typed_rejection() -> None:
    cluster = LocalCluster(3)
    cluster.elect()
    client = make_client(cluster)
    done = client.wait(client.core.write(Compact(1_000), cluster.now_ms))
    assert isinstance(done.error, FutureRevision)


def test_an_expired_session_is_replaced_and_the_write_that_found_it_gone_is_resent() -> None:
    cluster = LocalCluster(3, session_expiry_interval_ms=100)
    cluster.elect()
    client = make_client(cluster, session_ttl_ms=1_000, op_timeout_ms=10_000)
    client.wait(client.core.write(Put(b"a", b"1"), cluster.now_ms))
    first = client.core.session
    client.unreachable = set(cluster.replicas)  # no keepalive gets through: it expires
    client.run(2_000)
    client.unreachable = set()
    done = client.wait(client.core.write(Put(b"b", b"2"), cluster.now_ms))
    assert done.ok, done.error
    assert client.core.session not in (0, first)
    assert stored(cluster, cluster.leader(), b"b") == (b"2", 1)


def test_keepalives_hold_an_idle_session_open() -> None:
    cluster = LocalCluster(3, session_expiry_interval_ms=100)
    cluster.elect()
    client = make_client(cluster, session_ttl_ms=1_000)
    client.wait(client.core.write(Put(b"a", b"1"), cluster.now_ms))
    session = client.core.session
    client.run(4_000)
    assert client.wait(client.core.write(Put(b"a", b"2"), cluster.now_ms)).ok
    assert client.core.session == session


def test_acknowledgements_let_the_state_machine_forget_replies() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    client = make_client(cluster)
    for i in range(20):
        client.wait(client.core.write(Put(b"k", b"%d" % i), cluster.now_ms))
    info = decode(
        cluster.replicas[leader].state.query(encode(GetSession(client.core.session))), SessionInfo
    )
    assert info.floor >= 18 and info.cached_replies <= 2


def test_writes_in_flight_are_bounded_by_the_window() -> None:
    cluster = LocalCluster(3)
    cluster.elect()
    client = make_client(cluster, max_inflight_writes=2)
    client.wait(client.core.write(Put(b"warm", b"up"), cluster.now_ms))
    client.unreachable = set(cluster.replicas)
    before = len(client.sent)
    for i in range(5):
        client.core.write(Put(b"k", b"%d" % i), cluster.now_ms)
    client.step()
    first_sends = {s.request for s in client.sent[before:]}
    assert len(first_sends) == 2


def test_closing_the_session_ends_it_and_the_next_write_opens_another() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    client = make_client(cluster)
    client.wait(client.core.write(Put(b"k", b"1"), cluster.now_ms))
    first = client.core.session
    handle = client.core.close(cluster.now_ms)
    assert handle is not None and client.core.session == 0
    assert client.wait(handle).ok
    gone = cluster.replicas[leader].state.query(encode(GetSession(first)))
    assert "not open" in str(decode(gone, Message))
    assert client.wait(client.core.write(Put(b"k", b"2"), cluster.now_ms)).ok
    assert client.core.session not in (0, first)


def test_a_stale_read_is_served_by_whichever_node_is_asked() -> None:
    cluster = LocalCluster(3)
    leader = cluster.elect()
    client = make_client(cluster)
    client.wait(client.core.write(Put(b"k", b"v"), cluster.now_ms))
    cluster.run(200)
    follower = next(i for i in cluster.replicas if i != leader)
    cluster.isolate(follower)
    client.core.leader = follower  # the only node it asks first
    done = client.wait(client.core.read(Range(b"k"), cluster.now_ms, stale=True))
    result = done.unwrap()
    assert isinstance(result, RangeResult) and result.kvs[0].value == b"v"
    assert client.sent[-1].node == follower


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 3)),
        st.tuples(st.just("read"), st.integers(0, 3)),
        st.tuples(st.just("drop"), st.integers(1, 3)),
        st.tuples(st.just("cut"), st.integers(1, 3)),  # the client loses one node
        st.tuples(st.just("heal"), st.just(0)),
        st.tuples(st.just("run"), st.integers(1, 2_000)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), actions=ACTIONS)
def test_a_sleeper_told_of_new_deadlines_never_oversleeps(
    seed: int, actions: list[tuple[str, int]]
) -> None:
    """The runner sleeps towards `next_deadline_ms()` and, after each input, wakes only if
    `new_deadline_ms()` is earlier: so whenever the true next deadline moved earlier than
    what it sleeps towards, `new_deadline_ms` must say so (and no later than the truth)."""
    cluster = LocalCluster(3, seed=seed)
    cluster.elect()
    client = make_client(cluster, seed, session_ttl_ms=2_100)
    core = client.core
    sleeping_to = core.next_deadline_ms()

    def check() -> None:
        nonlocal sleeping_to
        told = core.new_deadline_ms()
        truth = core.next_deadline_ms()  # the exact answer; it starts a new sleep
        if truth is not None and (sleeping_to is None or truth < sleeping_to):
            assert told is not None and told <= truth, (told, truth, sleeping_to)
        sleeping_to = truth

    for action, n in actions:
        if action == "write":
            core.write(Put(b"k%d" % n, b"v"), cluster.now_ms)
        elif action == "read":
            core.read(Range(b"k%d" % n), cluster.now_ms, stale=n == 0)
        elif action == "drop":
            client.drop_replies = n
        elif action == "cut":
            client.unreachable.add(n)
        elif action == "heal":
            client.unreachable.clear()
        check()
        end = cluster.now_ms + (n if action == "run" else cluster.STEP_MS)
        while cluster.now_ms < end:
            client.step()
            check()
            cluster.run(cluster.STEP_MS)
