"""ClusterState: composition of parts, failures for anything bad, deterministic snapshots."""

from __future__ import annotations

from typing import Any

import attrs
import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.cluster import ClusterSnapshot, ClusterState, PartState
from statemachine.codec import Message, decode, encode, int_range, tagged
from statemachine.errors import (
    BadRequest,
    Code,
    Compacted,
    DecodeError,
    FutureRevision,
    InvalidArgument,
    Rejected,
    SessionError,
    UnknownEntry,
    UnknownPart,
)
from statemachine.groups.messages import JoinNode
from statemachine.kv import (
    MAX_REQUEST_BYTES,
    Compact,
    Compare,
    CompareOp,
    DeleteRange,
    Put,
    PutResult,
    Range,
    RangeResult,
    Txn,
)
from statemachine.part import ApplyContext, PartSpec, expect_snapshot
from statemachine.protocol import StateMachine
from statemachine.results import Failure, expect, failure_of, to_exception
from statemachine.sessions import ExpireSessions, KeepAlive, OpenSession, SessionRequest

# -- a user part: a counter ----------------------------------------------------------------


@tagged(10001)
@attrs.frozen
class Increment(Message):
    by: int = attrs.field(validator=int_range(-1000, 1000))


@tagged(10002)
@attrs.frozen
class Counted(Message):
    value: int


@tagged(10003)
@attrs.frozen
class GetCount(Message):
    pass


@tagged(10004)
@attrs.frozen
class CounterState(Message):
    value: int


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def apply(self, command: Message, context: ApplyContext) -> Message:
        assert isinstance(command, Increment)
        if self.value + command.by < 0:
            raise Rejected("the counter cannot go below 0", code=10_500, detail=self.value)
        self.value += command.by
        context.emit(Counted(self.value))
        return Counted(self.value)

    def query(self, query: Message) -> Message:
        return Counted(self.value)

    def snapshot(self) -> Message:
        return CounterState(self.value)

    def restore(self, snapshot: Message) -> None:
        self.value = expect_snapshot(snapshot, CounterState, "counter").value


COUNTER = PartSpec("counter", Counter, (Increment,), (GetCount,))


def with_counter() -> ClusterState:
    state = ClusterState()
    state.register(COUNTER)
    return state


def test_cluster_state_is_a_state_machine() -> None:
    assert isinstance(ClusterState(), StateMachine)
    assert ClusterState().part_names == ("groups", "kv", "sessions")


def test_user_part_is_driven_through_apply_bytes() -> None:
    state = with_counter()
    applied = state.apply(1, encode(Increment(5)))
    assert decode(applied.result, Message) == Counted(5)
    assert applied.events == (encode(Counted(5)),)
    refused = decode(state.apply(2, encode(Increment(-9))).result, Message)
    assert refused == Failure(10_500, "the counter cannot go below 0", 5)
    assert decode(state.query(encode(GetCount())), Message) == Counted(5)
    assert state.part_names == ("counter", "groups", "kv", "sessions")


def test_user_part_gets_sessions_and_snapshots() -> None:
    state = with_counter()
    assert state.execute(1, OpenSession(0, 10_000)).result.session == 1  # type: ignore[attr-defined]
    request = encode(SessionRequest(1, 1, 0, Increment(2)))
    first, again = state.apply(2, request), state.apply(3, request)
    assert first.result == again.result and first.events and again.events == ()
    assert expect(state.read(GetCount()), Counted).value == 2
    snapshot = decode(state.snapshot(), ClusterSnapshot)
    assert [p.name for p in snapshot.parts] == ["counter", "groups", "kv", "sessions"]
    restored = with_counter()
    restored.restore(state.snapshot())
    assert restored.snapshot() == state.snapshot()
    with pytest.raises(DecodeError, match="no part named 'counter'"):
        ClusterState().restore(state.snapshot())


def test_a_part_added_later_starts_empty_when_restoring_an_older_snapshot() -> None:
    old = ClusterState()
    old.execute(1, Put(b"k", b"v"))
    new = with_counter()
    new.restore(old.snapshot())
    assert expect(new.read(GetCount()), Counted).value == 0
    assert expect(new.read(Range(b"k")), RangeResult).count == 1


def test_registration_is_checked() -> None:
    state = with_counter()
    with pytest.raises(InvalidArgument, match="exists"):
        state.register(COUNTER)
    with pytest.raises(InvalidArgument, match="already routed"):
        state.register(PartSpec("other", Counter, (Increment,)))
    with pytest.raises(InvalidArgument, match="below 10000"):
        state.register(PartSpec("sneaky", Counter, (Put,)))
    with pytest.raises(InvalidArgument):
        PartSpec("Bad Name", Counter)


def test_failures_map_to_typed_exceptions_and_back() -> None:
    cases: list[tuple[Failure, type[Rejected]]] = [
        (Failure(Code.MALFORMED, "m"), BadRequest),
        (Failure(Code.INVALID_ARGUMENT, "i"), BadRequest),
        (Failure(Code.LIMIT_EXCEEDED, "l", 9), BadRequest),
        (Failure(Code.UNKNOWN_COMMAND, "u"), UnknownPart),
        (Failure(Code.COMPACTED, "c", 7), Compacted),
        (Failure(Code.FUTURE_REVISION, "f", 3), FutureRevision),
        (Failure(Code.UNKNOWN_SESSION, "s", 4), SessionError),
        (Failure(Code.REPLY_DISCARDED, "r", 2), SessionError),
        (Failure(Code.TOO_MANY_SESSIONS, "t", 8), SessionError),
        (Failure(10_500, "user", 1), Rejected),
    ]
    for failure, kind in cases:
        error = to_exception(failure)
        assert type(error) is kind
        assert (error.code, error.detail, str(error)) == (
            failure.code,
            failure.detail,
            failure.message,
        )
        assert failure_of(error) == failure
    assert to_exception(Failure(Code.COMPACTED, "c", 7)).compact_revision == 7  # type: ignore[attr-defined]
    with pytest.raises(Compacted):
        expect(Failure(Code.COMPACTED, "c", 7), RangeResult)


def test_unknown_and_oversized_commands_are_failures() -> None:
    state = ClusterState()
    unknown = decode(state.apply(1, encode(PutResult(1))).result, Message)
    assert isinstance(unknown, Failure) and unknown.code == Code.UNKNOWN_COMMAND
    big = Put(b"k", b"x" * (1 << 20))
    txn = Txn((), (big, Put(b"j", b"x" * (1 << 20))), ())
    for result in (
        decode(state.apply(2, encode(txn)).result, Message),
        state.execute(3, txn).result,
    ):
        assert isinstance(result, Failure)
        assert (result.code, result.detail) == (Code.LIMIT_EXCEEDED, MAX_REQUEST_BYTES)
    not_a_query = decode(state.query(encode(Put(b"k", b"v"))), Message)
    assert isinstance(not_a_query, Failure) and not_a_query.code == Code.UNKNOWN_COMMAND
    assert state.snapshot() == ClusterState().snapshot()


def test_failure_messages_are_cut_to_the_limit() -> None:
    assert len(Failure.of(Code.REJECTED, "x" * 5000).message) == 1024


def test_a_part_refusing_with_an_odd_code_still_gets_a_failure() -> None:
    class Odd(Counter):
        def apply(self, command: Message, context: ApplyContext) -> Message:
            raise Rejected("odd", code=0, detail=-5)

    state = ClusterState()
    state.register(PartSpec("odd", Odd, (Increment,)))
    assert decode(state.apply(1, encode(Increment(1))).result, Message) == Failure(
        Code.REJECTED, "odd", 0
    )


def test_restore_refuses_inconsistent_snapshots_and_keeps_the_state() -> None:
    state = ClusterState()
    state.execute(1, Put(b"k", b"v"))
    before = state.snapshot()
    parts = decode(before, ClusterSnapshot).parts
    bad = [
        ClusterSnapshot((parts[2], parts[1])),  # not sorted (0 is groups, 1 kv, 2 sessions)
        ClusterSnapshot((PartState("kv", parts[2].state),)),  # the wrong part's state
        ClusterSnapshot((PartState("groups", parts[1].state),)),  # the wrong part's state
        ClusterSnapshot((PartState("nobody", parts[1].state),)),
    ]
    for snapshot in bad:
        with pytest.raises(DecodeError):
            state.restore(encode(snapshot))
        assert state.snapshot() == before


# -- random commands: determinism, snapshots, and garbage -----------------------------------

KEYS = st.sampled_from([b"a", b"b", b"ab", b"c"])


def commands() -> st.SearchStrategy[Message]:
    kv = st.one_of(
        st.builds(Put, KEYS, st.binary(max_size=3), st.booleans()),
        st.builds(DeleteRange, KEYS, st.sampled_from([b"", b"\0", b"b"])),
        st.builds(Range, KEYS, st.sampled_from([b"", b"\0"]), st.integers(0, 6)),
        st.builds(Compact, st.integers(1, 8)),
        st.builds(
            Txn,
            st.tuples(
                st.builds(Compare.version, KEYS, st.sampled_from(CompareOp), st.integers(0, 3))
            ),
            st.tuples(st.builds(Put, KEYS, st.binary(max_size=3))),
            st.tuples(st.builds(DeleteRange, KEYS)),
        ),
    )
    sessions = st.one_of(
        st.builds(OpenSession, st.integers(0, 100), st.integers(1_000, 2_000)),
        st.builds(KeepAlive, st.integers(1, 12), st.integers(0, 3_000)),
        st.builds(ExpireSessions, st.integers(0, 3_000)),
    )
    wrapped = st.builds(
        lambda s, seq, ack, c: SessionRequest(s, seq, min(ack, seq - 1), c),
        st.integers(1, 12),
        st.integers(1, 4),
        st.integers(0, 3),
        kv,
    )
    return st.one_of(kv, sessions, wrapped, st.builds(Increment, st.integers(-3, 3)))


def log_of(items: list[Message | bytes]) -> list[bytes]:
    return [item if isinstance(item, bytes) else encode(item) for item in items]


LOG = st.lists(st.one_of(commands(), st.binary(max_size=12)), max_size=30).map(log_of)


def run(state: ClusterState, log: list[bytes], first_index: int = 1) -> list[Any]:
    return [state.apply(i, entry) for i, entry in enumerate(log, first_index)]


@settings(max_examples=60, deadline=None)
@given(LOG)
def test_replaying_the_same_log_gives_the_same_bytes(log: list[bytes]) -> None:
    one, two = with_counter(), with_counter()
    assert run(one, log) == run(two, log)
    assert one.snapshot() == two.snapshot()


@settings(max_examples=60, deadline=None)
@given(LOG, st.data())
def test_restoring_a_snapshot_midway_changes_nothing_after(
    log: list[bytes], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(log)))
    straight = with_counter()
    run(straight, log[:cut])
    restored = with_counter()
    restored.restore(straight.snapshot())
    assert restored.snapshot() == straight.snapshot()
    assert run(restored, log[cut:], cut + 1) == run(straight, log[cut:], cut + 1)
    assert restored.snapshot() == straight.snapshot()


@settings(max_examples=200, deadline=None)
@given(LOG, st.binary(max_size=64))
def test_random_bytes_give_a_failure_and_change_nothing(log: list[bytes], garbage: bytes) -> None:
    state = with_counter()
    run(state, log)
    before = state.snapshot()
    result = decode(state.apply(len(log) + 1, garbage).result, Message)
    try:
        decode(garbage, Message)
    except DecodeError:
        assert isinstance(result, Failure) and result.code == Code.MALFORMED
    if isinstance(result, Failure):
        assert state.snapshot() == before
    answer = decode(state.query(garbage), Message)
    assert isinstance(answer, Message)
    assert state.snapshot() == before or not isinstance(result, Failure)


FIELD = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 2**64)
    | st.binary(max_size=6)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)
OUR_TAGS = [
    1,
    2,
    3,
    *range(100, 107),
    *range(140, 148),
    170,
    171,
    172,
    *range(200, 214),
    220,
    221,
    222,
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(OUR_TAGS), st.lists(FIELD, max_size=7))
def test_structured_garbage_is_refused_or_decodes_exactly(tag: int, fields: list[object]) -> None:
    data = cbor2.dumps([tag, *fields])
    state = ClusterState()
    state.execute(1, Put(b"k", b"v"))
    before = state.snapshot()
    try:
        message = decode(data, Message)
    except DecodeError:
        result = decode(state.apply(2, data).result, Message)
        assert isinstance(result, Failure) and result.code == Code.MALFORMED
        assert state.snapshot() == before
        with pytest.raises(DecodeError):
            state.restore(data)
        assert state.snapshot() == before
        return
    assert decode(encode(message), Message) == message  # trailing defaults may be filled in
    result = decode(state.apply(2, data).result, Message)
    if isinstance(result, Failure):
        assert state.snapshot() == before


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_restore_of_random_bytes_raises_decode_error_and_keeps_the_state(data: bytes) -> None:
    state = ClusterState()
    state.execute(1, Put(b"k", b"v"))
    before = state.snapshot()
    with pytest.raises(DecodeError):
        state.restore(data)
    assert state.snapshot() == before


def test_deeply_nested_session_requests_are_refused_not_crashing() -> None:
    raw: Any = [100, b"k", b"v"]
    for _ in range(300):
        raw = [208, 1, 2, 1, raw]
    result = decode(ClusterState().apply(1, cbor2.dumps(raw)).result, Message)
    assert isinstance(result, Failure) and result.code == Code.MALFORMED
    assert "nest" in result.message


def test_a_committed_entry_this_replica_cannot_apply_stops_it() -> None:
    # `apply` answers a failure for anything; `apply_committed` (what replicas drive)
    # raises where that failure would mean the leader ran other parts than this one.
    stock, counting = ClusterState(), with_counter()
    for command in (Increment(1), SessionRequest(1, 1, 0, Increment(1))):
        assert counting.check_command(command) is None
        assert stock.check_command(command) == "no part handles the command Increment"
        assert decode(stock.apply(1, encode(command)).result, Failure).code == Code.UNKNOWN_COMMAND
        with pytest.raises(UnknownEntry) as caught:
            stock.apply_committed(7, encode(command))
        assert (caught.value.index, caught.value.tag) == (7, command.TAG)
        assert "no part handles the command Increment" in str(caught.value)
        assert caught.value.parts == stock.part_set.describe()
    before = stock.snapshot()
    unknown_tag = cbor2.dumps([19_999, 1])
    with pytest.raises(UnknownEntry, match="does not decode: Message: unknown tag 19999"):
        stock.apply_committed(8, unknown_tag)
    with pytest.raises(UnknownEntry, match=r"\(tag 0\).*not acceptable CBOR"):
        stock.apply_committed(9, b"\xff")
    assert stock.snapshot() == before  # nothing was applied, nor a session opened
    # What a replica with the part applies, it applies as `apply` does.
    assert counting.apply_committed(1, encode(Increment(2))) == with_counter().apply(
        1, encode(Increment(2))
    )


def test_changed_at_moves_for_a_part_only_when_it_may_have_changed() -> None:
    state = with_counter()
    parts = ("counter", "groups", "kv", "sessions")

    def marks() -> dict[str, int]:
        return {name: state.changed_at(name) for name in parts}

    def moved(before: dict[str, int]) -> set[str]:
        return {name for name, mark in marks().items() if mark != before[name]}

    before = marks()
    state.apply(1, encode(Increment(2)))
    assert moved(before) == {"counter"}
    before = marks()
    state.apply(2, encode(JoinNode(1, 10)))
    assert moved(before) == {"groups"}
    before = marks()
    opened = state.apply(3, encode(OpenSession(0, 60_000)))
    assert moved(before) == {"sessions"}
    before = marks()
    session = decode(opened.result, Message).session  # type: ignore[attr-defined]
    in_session = SessionRequest(session, 1, 0, Increment(1))
    state.apply(4, encode(in_session))
    assert moved(before) == {"counter", "sessions"}  # the session table records it
    before = marks()
    state.apply(5, encode(state.read(GetCount())))  # no part handles a query's result
    state.apply(6, b"\xff")  # nor garbage
    assert moved(before) == set()
    before = marks()
    state.read(GetCount())
    state.snapshot()
    assert moved(before) == set()  # reads change nothing
    state.restore(state.snapshot())
    assert moved(before) == set(parts)
