"""Client sessions: exactly-once application of retries, expiry by command, bounded caches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode, encode
from statemachine.errors import Code, InvalidArgument, SessionError
from statemachine.kv import Put, PutResult, Range, RangeResult
from statemachine.results import Failure, expect, to_exception
from statemachine.sessions import (
    CloseSession,
    EndReason,
    ExpireSessions,
    GetSession,
    KeepAlive,
    ListSessions,
    OpenSession,
    SessionClosed,
    SessionEnded,
    SessionInfo,
    SessionKept,
    SessionLimits,
    SessionList,
    SessionOpened,
    SessionRequest,
    SessionsExpired,
)


class Cluster:
    """A ClusterState with the log index handled for the test."""

    def __init__(self, **config: object) -> None:
        self.state = ClusterState(**config)  # type: ignore[arg-type]
        self.index = 0

    def run(self, command: Message) -> Message:
        self.index += 1
        return self.state.execute(self.index, command).result

    def open(self, now_ms: int = 0, ttl_ms: int = 10_000) -> int:
        return expect(self.run(OpenSession(now_ms, ttl_ms)), SessionOpened).session

    def failure(self, command: Message) -> Failure:
        result = self.run(command)
        assert isinstance(result, Failure), result
        return result


def test_session_id_is_the_log_index_and_deadline_is_now_plus_ttl() -> None:
    cluster = Cluster()
    cluster.index = 41
    assert cluster.run(OpenSession(1_000, 5_000)) == SessionOpened(42, 6_000)
    info = expect(cluster.state.read(GetSession(42)), SessionInfo)
    assert (info.ttl_ms, info.deadline_ms, info.floor, info.cached_replies) == (5_000, 6_000, 0, 0)


def test_retry_returns_the_same_bytes_and_applies_nothing() -> None:
    cluster = Cluster()
    session = cluster.open()
    request = encode(SessionRequest(session, 1, 0, Put(b"k", b"v")))
    first = cluster.state.apply(10, request)
    snapshot = cluster.state.snapshot()
    again = cluster.state.apply(11, request)
    assert again.result == first.result
    assert first.events and again.events == ()
    assert cluster.state.snapshot() == snapshot
    assert expect(cluster.state.read(Range(b"k")), RangeResult).kvs[0].version == 1


def test_refusals_are_cached_too() -> None:
    cluster = Cluster()
    session = cluster.open()
    read_future = SessionRequest(session, 1, 0, Range(b"k", revision=99))
    first = cluster.run(read_future)
    assert isinstance(first, Failure) and first.code == Code.FUTURE_REVISION
    cluster.run(Put(b"x", b"y"))  # the revision moves on; the retry still gets the old reply
    assert cluster.run(read_future) == first


def test_unknown_session_is_a_definite_error() -> None:
    cluster = Cluster()
    failure = cluster.failure(SessionRequest(77, 1, 0, Put(b"k", b"v")))
    assert failure.code == Code.UNKNOWN_SESSION and failure.detail == 77
    with pytest.raises(SessionError):
        raise to_exception(failure)
    assert expect(cluster.state.read(Range(b"k", count_only=True)), RangeResult).count == 0


def test_acknowledged_reply_is_gone_and_its_retry_is_not_applied() -> None:
    cluster = Cluster()
    session = cluster.open()
    expect(cluster.run(SessionRequest(session, 1, 0, Put(b"k", b"1"))), PutResult)
    expect(cluster.run(SessionRequest(session, 2, 1, Put(b"k", b"2"))), PutResult)
    failure = cluster.failure(SessionRequest(session, 1, 0, Put(b"k", b"1")))
    assert (failure.code, failure.detail) == (Code.REPLY_DISCARDED, 1)
    kv = expect(cluster.state.read(Range(b"k")), RangeResult).kvs[0]
    assert (kv.value, kv.version) == (b"2", 2)


def test_out_of_order_sequences_each_apply_once() -> None:
    cluster = Cluster()
    session = cluster.open()
    for seq in (3, 1, 2, 1, 3):
        expect(cluster.run(SessionRequest(session, seq, 0, Put(b"k%d" % seq, b"v"))), PutResult)
    count = expect(cluster.state.read(Range(b"k", b"l", count_only=True)), RangeResult).count
    assert count == 3
    assert expect(cluster.state.read(GetSession(session)), SessionInfo).cached_replies == 3


def test_reply_cache_is_bounded_by_count_and_evicted_retries_are_refused() -> None:
    cluster = Cluster(sessions=SessionLimits(max_replies_per_session=2))
    session = cluster.open()
    for seq in (1, 2, 3):
        expect(cluster.run(SessionRequest(session, seq, 0, Put(b"k", b"%d" % seq))), PutResult)
    info = expect(cluster.state.read(GetSession(session)), SessionInfo)
    assert (info.cached_replies, info.floor) == (2, 1)
    failure = cluster.failure(SessionRequest(session, 1, 0, Put(b"k", b"1")))
    assert failure.code == Code.REPLY_DISCARDED
    assert expect(cluster.state.read(Range(b"k")), RangeResult).kvs[0].version == 3


def test_reply_cache_is_bounded_by_bytes() -> None:
    cluster = Cluster(sessions=SessionLimits(max_reply_bytes_per_session=40))
    session = cluster.open()
    cluster.run(Put(b"big", b"x" * 30))
    reply = cluster.run(SessionRequest(session, 1, 0, Range(b"big")))
    assert len(encode(reply)) > 40  # too big to keep: dropped at once
    info = expect(cluster.state.read(GetSession(session)), SessionInfo)
    assert (info.cached_replies, info.cached_bytes, info.floor) == (0, 0, 1)
    assert cluster.failure(SessionRequest(session, 1, 0, Range(b"big"))).detail == 1


def test_keep_alive_extends_and_never_shortens() -> None:
    cluster = Cluster()
    session = cluster.open(now_ms=1_000, ttl_ms=5_000)
    assert cluster.run(KeepAlive(session, 3_000)) == SessionKept(session, 8_000)
    assert cluster.run(KeepAlive(session, 2_000)) == SessionKept(session, 8_000)


def test_expiry_is_a_command_with_the_time_and_emits_events() -> None:
    cluster = Cluster()
    short = cluster.open(now_ms=0, ttl_ms=1_000)
    long = cluster.open(now_ms=0, ttl_ms=9_000)
    cluster.index += 1
    done = cluster.state.execute(cluster.index, ExpireSessions(999))
    assert done.result == SessionsExpired(())
    cluster.index += 1
    done = cluster.state.execute(cluster.index, ExpireSessions(1_000))
    assert done.result == SessionsExpired((short,))
    assert done.events == (SessionEnded(short, EndReason.EXPIRED),)
    assert cluster.failure(SessionRequest(short, 1, 0, Put(b"k", b"v"))).code == (
        Code.UNKNOWN_SESSION
    )
    assert cluster.failure(KeepAlive(short, 1_000)).code == Code.UNKNOWN_SESSION
    listed = expect(cluster.state.read(ListSessions()), SessionList)
    assert [s.session for s in listed.sessions] == [long]


def test_time_never_runs_backwards() -> None:
    cluster = Cluster()
    cluster.run(ExpireSessions(10_000))  # a leader with a clock ahead
    session = cluster.open(now_ms=0, ttl_ms=1_000)  # the next leader's clock is behind
    info = expect(cluster.state.read(GetSession(session)), SessionInfo)
    assert info.deadline_ms == 11_000


def test_close_ends_the_session() -> None:
    cluster = Cluster()
    session = cluster.open()
    cluster.index += 1
    done = cluster.state.execute(cluster.index, CloseSession(session))
    assert done.result == SessionClosed(session)
    assert done.events == (SessionEnded(session, EndReason.CLOSED),)
    assert cluster.failure(CloseSession(session)).code == Code.UNKNOWN_SESSION


def test_session_table_is_capped_and_ttl_bounded() -> None:
    cluster = Cluster(sessions=SessionLimits(max_sessions=2, min_ttl_ms=10, max_ttl_ms=100))
    assert cluster.failure(OpenSession(0, 5)).code == Code.INVALID_ARGUMENT
    assert cluster.failure(OpenSession(0, 101)).code == Code.INVALID_ARGUMENT
    cluster.open(ttl_ms=10)
    cluster.open(ttl_ms=100)
    failure = cluster.failure(OpenSession(0, 50))
    assert (failure.code, failure.detail) == (Code.TOO_MANY_SESSIONS, 2)


def test_a_session_request_cannot_wrap_session_commands() -> None:
    cluster = Cluster()
    session = cluster.open()
    for inner in (KeepAlive(session, 0), SessionRequest(session, 1, 0, Put(b"k", b"v"))):
        failure = cluster.failure(SessionRequest(session, 5, 0, inner))
        assert failure.code == Code.INVALID_ARGUMENT
    assert expect(cluster.state.read(GetSession(session)), SessionInfo).cached_replies == 0


def test_ack_must_be_below_seq() -> None:
    with pytest.raises(InvalidArgument):
        SessionRequest(1, 3, 3, Put(b"k", b"v"))


# -- properties --------------------------------------------------------------------------

requests = st.lists(
    st.tuples(st.integers(1, 6), st.integers(0, 5), st.binary(max_size=4)), max_size=25
)


@settings(max_examples=60, deadline=None)
@given(requests, st.integers(1, 4))
def test_every_sequence_applies_at_most_once(items: list[tuple[int, int, bytes]], cap: int) -> None:
    """Whatever order and repetition requests arrive in, each (session, seq) is applied at
    most once; a duplicate changes nothing and gets its first reply byte for byte, or a
    definite REPLY_DISCARDED once that reply was evicted or acknowledged."""
    cluster = Cluster(sessions=SessionLimits(max_replies_per_session=cap))
    session = cluster.open()
    sent: dict[int, bytes] = {}
    first_reply: dict[int, bytes] = {}
    for seq, ack_back, value in items:
        ack = max(0, seq - 1 - ack_back)
        request = sent.setdefault(
            seq, encode(SessionRequest(session, seq, ack, Put(b"k%d" % seq, value)))
        )
        before = cluster.state.snapshot()
        cluster.index += 1
        reply = cluster.state.apply(cluster.index, request).result
        if seq not in first_reply:
            first_reply[seq] = reply
            continue
        assert cluster.state.snapshot() == before
        if reply != first_reply[seq]:
            failure = decode(reply, Message)
            assert isinstance(failure, Failure)
            assert (failure.code, failure.detail) == (Code.REPLY_DISCARDED, seq)
    versions = expect(cluster.state.read(Range(b"k", b"l")), RangeResult).kvs
    assert all(kv.version == 1 for kv in versions)  # no key was written twice
