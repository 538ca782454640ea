"""A snapshot copied now and encoded later, in slices (statemachine/snapshot_copy.py), is
byte for byte the snapshot of the state at the copy, whatever is applied meanwhile."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.cluster import ClusterState
from statemachine.codec import Message, encode, encode_value
from statemachine.kv import Compact, DeleteRange, Put
from statemachine.sessions.messages import OpenSession
from statemachine.snapshot_copy import copy_state
from statemachine.snapshot_slices import array_header, sliced_array

KEYS = st.binary(min_size=1, max_size=6)
OPS = st.lists(
    st.one_of(
        st.builds(Put, KEYS, st.binary(max_size=40)),
        st.builds(lambda k: DeleteRange(k), KEYS),
        st.builds(lambda r: Compact(r), st.integers(1, 40)),
        st.builds(lambda t: OpenSession(0, 1000 + t), st.integers(0, 1000)),
    ),
    max_size=60,
)


def apply_all(state: ClusterState, ops: list[Message], start: int) -> int:
    for i, op in enumerate(ops, start):
        state.apply(i, encode(op))
    return start + len(ops)


@settings(max_examples=60, deadline=None)
@given(before=OPS, after=OPS)
def test_a_copy_encodes_to_the_snapshot_at_the_copy(
    before: list[Message], after: list[Message]
) -> None:
    state = ClusterState()
    index = apply_all(state, before, 1)
    expected = state.snapshot()
    copy = copy_state(state)
    apply_all(state, after, index)  # the live state moves on; the copy does not
    assert copy.encode() == expected
    assert copy_state(state).encode() == state.snapshot()


@given(st.lists(st.integers(), max_size=5000), st.integers(1, 300))
def test_an_array_encoded_in_slices_is_the_array_encoded_whole(items: list[int], per: int) -> None:
    assert b"".join(sliced_array(items, lambda x: [x, -x], per)) == encode_value(
        [[x, -x] for x in items]
    )
    assert array_header(len(items)) == encode_value(items)[: len(array_header(len(items)))]


def test_a_large_store_is_encoded_in_many_slices() -> None:
    state = ClusterState()
    apply_all(state, [Put(b"k%06d" % i, b"v") for i in range(5000)], 1)
    slices = list(copy_state(state).slices())
    assert len(slices) > 3 and b"".join(slices) == state.snapshot()
