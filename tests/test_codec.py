"""The codec: canonical bytes, exact round trips, and one typed error for anything malformed."""

from __future__ import annotations

import enum

import attrs
import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemachine.codec import Message, decode, encode, int_range, max_len, tagged
from statemachine.errors import DecodeError, LimitExceeded


class Colour(enum.IntEnum):
    RED = 1
    BLUE = 2


class Shape(Message):
    __slots__ = ()


@tagged(9001)
@attrs.frozen
class Circle(Shape):
    radius: int = attrs.field(validator=int_range(0, 1000))


@tagged(9002)
@attrs.frozen
class Label(Shape):
    text: str = attrs.field(validator=max_len(8))


@tagged(9003)
@attrs.frozen
class Drawing(Message):
    name: bytes = attrs.field(validator=max_len(16))
    shapes: tuple[Shape, ...] = attrs.field(validator=max_len(4, "shapes"))
    colour: Colour = Colour.RED
    parent: Drawing | None = None
    flag: bool = False


def test_round_trip_and_canonical_bytes() -> None:
    d = Drawing(b"d", (Circle(3), Label("hi")), Colour.BLUE, Drawing(b"p", ()), True)
    data = encode(d)
    assert decode(data, Drawing) == d
    assert decode(data, Message) == d
    assert encode(decode(data, Drawing)) == data
    assert data == cbor2.dumps(cbor2.loads(data), canonical=True)


def test_trailing_fields_with_defaults_may_be_omitted() -> None:
    assert decode(cbor2.dumps([9003, b"x", []]), Drawing) == Drawing(b"x", ())


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([9003, "not-bytes", []], "Drawing.name"),
        ([9003, b"x", [[9001, 5000]]], "Drawing.shapes[0].radius"),
        ([9003, b"x", [[9001, True]]], "Drawing.shapes[0].radius"),
        ([9003, b"x", [[9003, b"y", []]]], "Drawing.shapes[0]"),
        ([9003, b"x", [], 7], "Drawing.colour"),
        ([9003, b"x"], "Drawing"),
        ([9003, b"x" * 17, []], "Drawing.name"),
        ([9003, b"x", [[9002, "longer than eight"]]], "Drawing.shapes[0].text"),
        ([9003, b"x", [[9001, 1]] * 5], "Drawing.shapes"),
        ([9003, b"x", [], 1, [9003, b"p", [], 1, None, 1]], "Drawing.parent"),
        ([77777, b"x"], "Drawing"),
        ("nonsense", "Drawing"),
    ],
)
def test_malformed_names_the_field(raw: object, field: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(cbor2.dumps(raw), Drawing)
    assert info.value.field == field


def test_limits_apply_when_built_in_code_too() -> None:
    with pytest.raises(LimitExceeded) as info:
        Drawing(b"x" * 17, ())
    assert info.value.field == "Drawing.name"
    assert info.value.limit == 16


def test_integers_outside_64_bits_are_refused() -> None:
    # -(2**64) is still a native CBOR integer (major type 1), so it reaches the range check.
    with pytest.raises(DecodeError, match="64-bit"):
        decode(cbor2.dumps([9001, -(2**64)]), Circle)
    # Anything larger needs a bignum, which is a CBOR tag, refused while parsing.
    with pytest.raises(DecodeError, match="tag"):
        decode(cbor2.dumps([9001, 2**70]), Circle)


def test_semantic_tags_and_cycles_are_refused() -> None:
    cyclic = bytes.fromhex("d81c81d81d00")  # shareable list holding a reference to itself
    regex = bytes.fromhex("d82363616263")
    unknown = bytes.fromhex("d9270f01")  # tag 9999 around the integer 1
    for data in (cyclic, regex, unknown):
        with pytest.raises(DecodeError):
            decode(data, Drawing)


@given(st.binary(max_size=256))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    assert_decodes_exactly_or_refuses(data, Message)


PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=20) | st.text(max_size=9),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=20,
)


@given(st.sampled_from([9001, 9002, 9003, 1, 0]), st.lists(PLAIN, max_size=6))
def test_random_structures_raise_only_decode_error(tag: int, fields: list[object]) -> None:
    assert_decodes_exactly_or_refuses(cbor2.dumps([tag, *fields]), Drawing)


def assert_decodes_exactly_or_refuses(data: bytes, expected: type[Message]) -> None:
    """Either DecodeError, or a message that re-encodes to the canonical form of the input."""
    try:
        message = decode(data, expected)
    except DecodeError:
        return
    assert isinstance(message, expected)
    assert encode(message) == cbor2.dumps(cbor2.loads(data), canonical=True)


def test_duplicate_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="already used"):

        @tagged(9001)
        @attrs.frozen
        class Other(Message):
            x: int
