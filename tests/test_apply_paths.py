"""The short paths of applying and reading give exactly what the general ones give.

A lone `Put` is checked and written without the plan a list of ops needs
(`statemachine.kv.txn.put_alone`), a single-key `Range` reads its key without walking a
range (`statemachine.kv.reads.read_key`), and a session request's reply is encoded once,
for the session table and for `Applied`. Each is compared here with the general path on
the same state: a `Txn` of the one op, a range that holds only that key, the reply the
table keeps.
"""

from __future__ import annotations

import pytest

from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode, encode
from statemachine.kv import (
    Compact,
    DeleteRange,
    KvConfig,
    Put,
    PutResult,
    Range,
    Txn,
    TxnResult,
)
from statemachine.results import Failure
from statemachine.sessions import OpenSession, SessionOpened, SessionRequest, SessionsPart

# Small limits, so that the candidates below meet each of them.
CONFIG = KvConfig(max_response_bytes=120, max_keys=4, max_store_bytes=400, history_revisions=6)
# A store with a live key, an overwritten one and a deleted one (3 keys indexed).
HISTORY = (
    Put(b"a", b"1" * 10),
    Put(b"b", b"2" * 10),
    Put(b"b", b"3" * 125),  # its pair: over max_response_bytes
    Put(b"c", b"4"),
    DeleteRange(b"c"),
)


def _state() -> ClusterState:
    state = ClusterState(kv=CONFIG)
    for index, command in enumerate(HISTORY, 1):
        assert not isinstance(state.execute(index, command).result, Failure)
    return state


@pytest.mark.parametrize(
    "put",
    [
        Put(b"a", b"x"),  # a live key
        Put(b"a", b"x", prev_kv=True),
        Put(b"b", b"y", prev_kv=True),  # prev_kv answer over max_response_bytes
        Put(b"c", b"z", prev_kv=True),  # a deleted key: no previous pair
        Put(b"d", b"w"),  # a new key (the fourth: allowed)
        Put(b"d", b"w" * 300),  # over max_store_bytes
    ],
    ids=["live", "live-prev", "prev-too-large", "deleted", "new", "store-full"],
)
def test_a_lone_put_gives_what_a_txn_of_it_gives(put: Put) -> None:
    alone, in_txn = _state(), _state()
    index = len(HISTORY) + 1
    done = alone.execute(index, put)
    general = in_txn.execute(index, Txn((), (put,), ()))
    if isinstance(general.result, Failure):
        assert done.result == general.result
    else:
        assert isinstance(general.result, TxnResult) and isinstance(done.result, PutResult)
        assert done.result == general.result.responses[0]
        assert done.result.revision == general.result.revision
    assert done.events == general.events
    assert alone.snapshot() == in_txn.snapshot()
    # Through bytes the same (`apply_committed` encodes the result and the events).
    applied = _state().apply_committed(index, encode(put))
    assert applied.result == encode(done.result)
    assert applied.events == tuple(encode(e) for e in done.events)


def test_a_lone_put_over_the_key_limit_is_refused_as_in_a_txn() -> None:
    alone, in_txn = _state(), _state()
    for state in (alone, in_txn):
        assert not isinstance(state.execute(6, Put(b"d", b"1")).result, Failure)
    done = alone.execute(7, Put(b"e", b"1"))  # a fifth key
    general = in_txn.execute(7, Txn((), (Put(b"e", b"1"),), ()))
    assert isinstance(done.result, Failure) and done.result == general.result
    assert "keys in the store" in done.result.message
    assert alone.snapshot() == in_txn.snapshot()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"count_only": True},
        {"keys_only": True},
        {"limit": 1},
        {"revision": 3},  # b's older version
        {"revision": 1},  # before b existed
    ],
    ids=["plain", "count-only", "keys-only", "limit", "old-revision", "before-creation"],
)
@pytest.mark.parametrize("key", [b"a", b"b", b"c", b"zz"], ids=["a", "b", "deleted", "missing"])
def test_a_single_key_range_reads_what_a_range_of_that_key_reads(
    key: bytes, options: dict[str, int]
) -> None:
    state = _state()
    only_key = key + b"\0"  # [key, key + NUL) holds the key alone
    single = state.read(Range(key, **options))  # type: ignore[arg-type]
    walked = state.read(Range(key, only_key, **options))  # type: ignore[arg-type]
    assert single == walked
    assert state.query(encode(Range(key, **options))) == encode(walked)  # type: ignore[arg-type]


def test_a_single_key_range_in_a_txn_keeps_to_the_response_budget() -> None:
    """After a prev_kv answer has taken most of the budget, a key's pair no longer fits:
    the single-key read says `more`, as the walk of a range does."""
    results = []
    for read in (Range(b"a"), Range(b"a", b"a\0")):
        state = _state()
        done = state.execute(6, Txn((), (Put(b"b", b"5", prev_kv=False), read), ()))
        assert isinstance(done.result, TxnResult)
        results.append(done.result.responses[1])
        state = _state()
        state.execute(6, Put(b"b", b"6" * 110))  # its pair: 111 of the 120 bytes
        done = state.execute(7, Txn((), (Put(b"b", b"7", prev_kv=True), read), ()))
        assert isinstance(done.result, TxnResult)
        results.append(done.result.responses[1])
    assert results[0] == results[2] and results[1] == results[3]
    assert results[1].more and not results[1].kvs  # type: ignore[attr-defined]


def test_a_read_of_a_compacted_revision_is_refused_alike() -> None:
    state = _state()
    assert not isinstance(state.execute(6, Compact(4)).result, Failure)
    single, walked = (
        state.read(Range(b"a", revision=2)),
        state.read(Range(b"a", b"a\0", revision=2)),
    )
    assert isinstance(single, Failure) and single == walked


def test_a_session_reply_is_the_reply_the_table_keeps_and_a_retry_gets_it_as_kept() -> None:
    state = ClusterState()
    opened = decode(state.apply_committed(1, encode(OpenSession(0, 60_000))).result, Message)
    assert isinstance(opened, SessionOpened)
    request = encode(SessionRequest(opened.session, 1, 0, Put(b"k", b"v", prev_kv=True)))
    first = state.apply_committed(2, request)
    sessions = state.part("sessions")
    assert isinstance(sessions, SessionsPart)
    kept = sessions.table.sessions[opened.session].replies[1]
    assert first.result == kept and isinstance(decode(kept, Message), PutResult)
    assert len(first.events) == 1
    again = state.apply_committed(3, request)
    assert again.result == kept and again.events == ()
    # The typed path answers the retry with the same reply, decoded.
    retry = state.execute(4, SessionRequest(opened.session, 1, 0, Put(b"k", b"v")))
    assert encode(retry.result) == kept and retry.events == ()


def test_without_events_an_entry_gives_the_same_result_and_state() -> None:
    """`apply_committed(..., with_events=False)`: no events encoded, all else the same."""
    commands = [
        encode(OpenSession(0, 60_000)),
        encode(SessionRequest(1, 1, 0, Put(b"k", b"v"))),
        encode(Put(b"k", b"w", prev_kv=True)),
        encode(DeleteRange(b"k")),
    ]
    full, bare = ClusterState(), ClusterState()
    emitted = 0
    for index, command in enumerate(commands, 1):
        applied = full.apply_committed(index, command)
        quiet = bare.apply_committed(index, command, with_events=False)
        assert quiet.result == applied.result and quiet.events == ()
        emitted += len(applied.events)
    assert emitted == 3  # (each kv write emitted one)
    assert bare.snapshot() == full.snapshot()
