"""The client protocol: every message round-trips through the codec; junk is refused."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from raftcluster.node.protocol import (
    MAX_WAIT_MS,
    Changed,
    ChangeMembership,
    ClientMessage,
    ClientReply,
    ClientRequest,
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
from statemachine.codec import decode, encode
from statemachine.errors import DecodeError, InvalidArgument

ids = st.integers(1, 2**31)
indexes = st.integers(0, 2**40)
blobs = st.binary(max_size=64)
members = st.lists(ids, max_size=5).map(tuple)

requests = st.one_of(
    st.builds(Submit, blobs),
    st.builds(Query, blobs, st.sampled_from(Consistency)),
    st.just(GetStatus()),
    st.builds(WaitChanges, indexes, st.integers(1, MAX_WAIT_MS)),
    st.builds(ChangeMembership, st.sampled_from(MembershipOp), ids),
    st.builds(TransferLeadership, ids),
)
replies = st.one_of(
    st.builds(Written, indexes, blobs),
    st.builds(QueryResult, indexes, blobs),
    st.builds(
        NodeStatus,
        ids,
        st.sampled_from(["leader", "follower"]),
        indexes,
        indexes,
        indexes,
        indexes,
        members,
        members,
        indexes,
        indexes,
    ),  # fmt: skip
    st.builds(Changed, indexes),
    st.builds(MembershipChanged, indexes, members, members),
    st.builds(LeaderTransferred, indexes),
    st.builds(NotLeader, indexes),
    st.builds(Refused.of, st.sampled_from(RefuseCode), st.text(max_size=600)),
)


@given(requests)
def test_requests_round_trip(request: ClientRequest) -> None:
    assert decode(encode(request), ClientRequest) == request


@given(replies)
def test_replies_round_trip(reply: ClientReply) -> None:
    assert decode(encode(reply), ClientReply) == reply


@given(requests)
def test_a_request_is_not_mistaken_for_a_reply(request: ClientRequest) -> None:
    try:
        decode(encode(request), ClientReply)
    except DecodeError as e:
        assert "expected ClientReply" in str(e)
    else:
        raise AssertionError("a request decoded as a reply")


@given(st.binary(max_size=200))
def test_junk_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data, ClientMessage)


def test_limits_are_checked_when_built() -> None:
    for bad in (lambda: WaitChanges(0, 0), lambda: WaitChanges(0, MAX_WAIT_MS + 1)):
        try:
            bad()
        except InvalidArgument:
            continue
        raise AssertionError("an out-of-range wait was accepted")
    assert len(Refused.of(RefuseCode.OVERLOADED, "x" * 10_000).message) == 512


def test_only_timeouts_and_lost_track_leave_a_write_unknown() -> None:
    unknown = {c for c in RefuseCode if not c.definite}
    assert unknown == {RefuseCode.TIMED_OUT, RefuseCode.OUTCOME_UNKNOWN}
