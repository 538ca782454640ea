"""Frames: length prefix, limit checked before the body, MAC per frame, strict CBOR."""

from __future__ import annotations

import contextlib
import hashlib
import hmac

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftcluster.transport.errors import FrameTooLarge, UnauthenticatedFrame
from raftcluster.transport.framing import HEADER_BYTES, TAG_BYTES, FrameParser, FrameSealer
from raftcluster.transport.wire import Frame, RaftFrame, RpcRequest, decode_strict, parse_cbor
from statemachine.codec import encode
from statemachine.errors import DecodeError
from tests.transport_kit import Note

KEY = bytes(range(32))
bodies = st.lists(st.binary(max_size=300), max_size=12)


def seal_all(sealer: FrameSealer, items: list[bytes]) -> bytes:
    return b"".join(sealer.seal(body) for body in items)


def parse_in_chunks(parser: FrameParser, data: bytes, cuts: list[int]) -> list[bytes]:
    out: list[bytes] = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:], strict=False):
        parser.feed(data[start:end])
        while (body := parser.next_frame()) is not None:
            out.append(body)
    return out


def keyed_pair(max_bytes: int = 1024) -> tuple[FrameSealer, FrameParser]:
    sealer, parser = FrameSealer(), FrameParser(max_bytes)
    sealer.authenticate(KEY)
    parser.authenticate(KEY, max_bytes)
    return sealer, parser


@given(bodies, st.lists(st.integers(min_value=0), max_size=20), st.booleans())
def test_any_chunking_yields_the_same_frames(items, cuts, keyed) -> None:
    if keyed:
        sealer, parser = keyed_pair()
    else:
        sealer, parser = FrameSealer(), FrameParser(1024)
    data = seal_all(sealer, items)
    assert parse_in_chunks(parser, data, cuts) == items
    assert parser.buffered_bytes == 0


@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=6), st.data())
def test_no_altered_frame_is_ever_delivered(items, data) -> None:
    sealer, parser = keyed_pair()
    wire = bytearray(seal_all(sealer, items))
    position = data.draw(st.integers(0, len(wire) - 1))
    wire[position] ^= data.draw(st.integers(1, 255))
    parser.feed(bytes(wire))
    delivered = []
    try:
        while (body := parser.next_frame()) is not None:
            delivered.append(body)
    except (UnauthenticatedFrame, FrameTooLarge):
        pass  # refused: the connection would close here
    else:  # a longer length made the parser wait for bytes that never come
        assert parser.buffered_bytes > 0
    # Whatever came out before the altered frame is the original, and the altered one never does.
    assert delivered == items[: len(delivered)]
    assert len(delivered) < len(items)


def test_replayed_dropped_or_reordered_frames_fail() -> None:
    sealer, _ = keyed_pair()
    first, second, third = (sealer.seal(b) for b in (b"one", b"two", b"three"))
    for wire in (first + first, first + third, second + first):
        parser = keyed_pair()[1]
        parser.feed(wire)
        with pytest.raises(UnauthenticatedFrame):
            while parser.next_frame() is not None:
                pass


@pytest.mark.parametrize("key_bytes", [0, 16, 32, 64, 65, 200])
def test_tags_are_rfc2104_hmac_sha256_of_sequence_header_and_body(key_bytes: int) -> None:
    """The wire format (framing.py's docstring): the tag is the first 16 bytes of
    HMAC-SHA256(key, u64 sequence | length | body), as the standard library computes it,
    for keys shorter than, equal to and longer than SHA-256's block."""
    key = bytes((7 * i + 3) % 256 for i in range(key_bytes))
    sealer = FrameSealer()
    sealer.authenticate(key)
    for sequence, body in enumerate([b"", b"one", b"x" * 300]):
        header = len(body).to_bytes(HEADER_BYTES, "big")
        wire = sealer.seal(body)
        expected = hmac.new(key, sequence.to_bytes(8, "big") + header + body, hashlib.sha256)
        assert wire == header + body + expected.digest()[:TAG_BYTES]


def test_wrong_key_fails() -> None:
    sealer = FrameSealer()
    sealer.authenticate(b"k" * 32)
    parser = FrameParser(100)
    parser.authenticate(KEY, 100)
    parser.feed(sealer.seal(b"hello"))
    with pytest.raises(UnauthenticatedFrame):
        parser.next_frame()


@given(st.integers(min_value=1025, max_value=2**32 - 1), st.booleans())
def test_oversized_length_is_refused_before_the_body(size, keyed) -> None:
    parser = keyed_pair()[1] if keyed else FrameParser(1024)
    parser.feed(size.to_bytes(HEADER_BYTES, "big"))  # the header alone, no body yet
    with pytest.raises(FrameTooLarge) as info:
        parser.next_frame()
    assert info.value.size_bytes == size and info.value.limit_bytes == 1024


def test_limit_is_inclusive_and_body_waits_for_its_tag() -> None:
    sealer, parser = keyed_pair(max_bytes=10)
    wire = sealer.seal(b"x" * 10)
    assert len(wire) == HEADER_BYTES + 10 + TAG_BYTES
    parser.feed(wire[:-1])
    assert parser.next_frame() is None and parser.wanted_bytes() == 1
    parser.feed(wire[-1:])
    assert parser.next_frame() == b"x" * 10


def test_handshake_leftovers_carry_into_the_keyed_phase() -> None:
    plain, keyed = FrameSealer(), FrameSealer()
    keyed.authenticate(KEY)
    parser = FrameParser(64)
    parser.feed(plain.seal(b"hello") + keyed.seal(b"after"))
    assert parser.next_frame() == b"hello"
    parser.authenticate(KEY, 1024)
    assert parser.next_frame() == b"after"


# -- strict CBOR -------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**64 - 1), st.sampled_from([0, b"", "", [], None]))
def test_every_cbor_tag_is_refused(tag, inner) -> None:
    data = cbor2.dumps(cbor2.CBORTag(tag, inner))
    with pytest.raises(DecodeError):
        parse_cbor(data)


@pytest.mark.parametrize(
    "data",
    [
        # [2011, shareable([2011, sharedref(0)])]: a frame that contains itself
        bytes([0x82]) + cbor2.dumps(2011) + bytes([0xD8, 28, 0x82]) + cbor2.dumps(2011)
        + bytes([0xD8, 29, 0x00]),
        bytes([0x9F, 0x01, 0xFF]),  # indefinite-length array
        bytes([0x81] * 100 + [0x00]),  # nested 100 deep
        bytes([0xD9, 0xD9, 0xF7, 0x80]),  # self-described CBOR tag
    ],
)  # fmt: skip
def test_shared_references_indefinite_and_deep_values_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_strict(data, Frame)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(data) -> None:
    with contextlib.suppress(DecodeError):
        decode_strict(data, Frame)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.binary(max_size=8) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=20,
    )
)
def test_valid_cbor_of_the_wrong_shape_raises_only_decode_error(value) -> None:
    for candidate in (value, [2011, 0, 0, value], [2012, 1, 5, value], [2012, value, 5]):
        with contextlib.suppress(DecodeError):
            decode_strict(cbor2.dumps(candidate), Frame)


def test_frames_round_trip() -> None:
    for frame in (RaftFrame(0, 3, Note(3, "x")), RpcRequest(7, 100, Note(1))):
        assert decode_strict(encode(frame), Frame) == frame
