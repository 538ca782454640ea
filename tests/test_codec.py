"""The codec: canonical bytes, exact round trips, and one typed error for anything malformed."""

from __future__ import annotations

import enum
import functools
import sys
import typing

import attrs
import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raftcluster.node.admin
import raftcluster.node.protocol
import raftcluster.raft.messages
import raftcluster.raft.types
import raftcluster.transport.wire
import statemachine.cluster
import statemachine.kv.commands
import statemachine.kv.results
import statemachine.kv.snapshot
import statemachine.results
import statemachine.sessions.messages
from statemachine import codec
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
    """Either DecodeError, or a message that re-encodes to the canonical form of the input,
    with any trailing fields the input left to their defaults written out."""
    try:
        message = decode(data, expected)
    except DecodeError:
        return
    assert isinstance(message, expected)
    again = encode(message)
    assert again == cbor2.dumps(cbor2.loads(again), canonical=True)
    assert written_out(cbor2.loads(data), cbor2.loads(again))
    assert decode(again, expected) == message


def written_out(raw: object, full: object) -> bool:
    """`full` is `raw`, where each array may have more items at its end (the defaults)."""
    if type(raw) is list and type(full) is list:
        return len(raw) <= len(full) and all(map(written_out, raw, full))
    return type(raw) is type(full) and raw == full


def test_duplicate_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="already used"):

        @tagged(9001)
        @attrs.frozen
        class Other(Message):
            x: int


# -- the fast decoder against the reference -------------------------------------------------
#
# `decode` runs a fast decoder that builds no field names and falls back to the reference
# decoder (the one that names the field) when it stops. These check, on frames of every
# registered class, valid and broken in every place, that `decode` gives exactly what the
# reference gives: the same value, of the same types, or the same error, field and reason.


class Mood(enum.IntEnum):
    CALM = 0
    ODD = 7

    @classmethod
    def _missing_(cls, value: object) -> Mood | None:
        return cls.ODD if value == 8 else None  # a value no member has, accepted anyway


@tagged(9004)
@attrs.frozen
class Sample(Message):
    """Every kind of annotation, including those no project message uses yet."""

    pair: tuple[int, str]
    ratio: float
    either: int | bytes | Shape | None
    mood: Mood = Mood.CALM
    numbers: tuple[int, ...] = attrs.field(default=(), validator=max_len(3, "numbers"))
    inner: Sample | None = None


@tagged(9005)
@attrs.frozen
class Unsure(Message):
    """Unions where more than one alternative accepts a value: the first one must win."""

    first: tuple[Circle, ...] | tuple[int, ...]
    number: float | int = 0


ALL_MODULES = {
    m.__name__
    for m in (
        sys.modules[__name__],
        raftcluster.node.admin,
        raftcluster.node.protocol,
        raftcluster.raft.messages,
        raftcluster.raft.types,
        raftcluster.transport.wire,
        statemachine.cluster,
        statemachine.kv.commands,
        statemachine.kv.results,
        statemachine.kv.snapshot,
        statemachine.results,
        statemachine.sessions.messages,
    )
}
# A fixed list (not whatever other tests registered in this process) so that runs repeat.
CLASSES = sorted(
    (cls for cls in codec._by_tag.values() if cls.__module__ in ALL_MODULES), key=codec.tag_of
)
BASES = [Message, Shape, Drawing, Sample, statemachine.kv.commands.TxnOp]
BASES += [raftcluster.raft.messages.RaftMessage, raftcluster.transport.wire.Frame]
EDGES = [0, 1, 2**53, -(2**53), codec.INT_MIN, codec.INT_MIN - 1, codec.INT_MAX, -(2**64)]
INTS = st.integers(0, 300) | st.sampled_from(EDGES)
# Values that a wrong check would let through where another type is expected.
WRONG = [None, False, True, 0, -1, 8, 2**53, 1.5, b"", "", [], [0], -(2**64), [9001, 1]]
GEN_DEPTH = 3  # messages in messages, when generating


def hints_of(cls: type) -> list[object]:
    hints = typing.get_type_hints(cls)
    return [hints[f.name] for f in attrs.fields(cls)]


def holds_messages(tp: object) -> bool:
    if isinstance(tp, type):
        return issubclass(tp, Message)
    return any(holds_messages(a) for a in typing.get_args(tp) if a is not Ellipsis)


@functools.cache
def raw_of(tp: object, depth: int = 0) -> st.SearchStrategy[object]:
    """Raw CBOR values that mostly fit annotation `tp` (validators aside)."""
    if tp is int:
        return INTS
    simple = {bool: st.booleans(), bytes: st.binary(max_size=6), str: st.text(max_size=6)}
    if tp in simple:
        return simple[tp]
    if tp is type(None):
        return st.none()
    if tp is float:
        return st.floats() | INTS
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        return st.sampled_from([m.value for m in tp]) | st.integers(-1, 9)
    if isinstance(tp, type) and issubclass(tp, Message):
        return raw_message(tp, depth)
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(raw_of(args[0], depth), max_size=3)
        return st.tuples(*(raw_of(a, depth) for a in args)).map(list)
    return st.one_of([raw_of(a, depth) for a in args])  # a union


def raw_message(base: type[Message], depth: int) -> st.SearchStrategy[object]:
    candidates = [c for c in CLASSES if issubclass(c, base)]
    if depth >= GEN_DEPTH:
        candidates = [c for c in candidates if not any(map(holds_messages, hints_of(c)))]
    if not candidates:
        return st.just([])
    return st.one_of([raw_fields(c, depth) for c in candidates])


def raw_fields(cls: type[Message], depth: int) -> st.SearchStrategy[object]:
    tag = codec.tag_of(cls)
    fields = st.tuples(*(raw_of(tp, depth + 1) for tp in hints_of(cls)))
    return fields.map(lambda values: [tag, *values])


def broken(raw: object) -> typing.Iterator[object]:
    """`raw` with one change, every way: each value replaced by each of `WRONG` and by its
    equals of other types, and each array one item shorter and one longer."""
    yield from WRONG
    yield from twins(raw)
    if type(raw) is list:
        yield raw[:-1]
        yield [*raw, 0]
        for i, item in enumerate(raw):
            for change in broken(item):
                yield [*raw[:i], change, *raw[i + 1 :]]


def twins(raw: object) -> list[object]:
    """Values equal to `raw` (or nearly) of other types: a check by `isinstance` or `==`
    instead of by exact type would take them."""
    if type(raw) is bool:
        return [int(raw), float(raw)]
    if type(raw) is int:
        return [float(raw), *([bool(raw)] if raw in (0, 1) else [])]
    if type(raw) is float and raw.is_integer():
        return [int(raw)]
    if type(raw) is str:
        return [raw.encode()]
    if type(raw) is bytes:
        return [raw.decode("latin-1")]
    return []


def outcome(run: typing.Callable[[], object]) -> tuple[object, ...]:
    """What a decoder gives, comparable with `==`: its value with every type, or its error."""
    try:
        value = run()
    except DecodeError as e:
        return ("DecodeError", type(e), e.field, e.reason)
    except Exception as e:  # noqa: BLE001 - the reference may raise others; so must decode
        return ("raised", type(e), str(e))
    return ("value", typed(value))


def typed(value: object) -> object:
    """`value` as nested tuples that carry every type (so 1 != True != 1.0 != Mood.ODD)."""
    if isinstance(value, Message):
        fields = attrs.fields(type(value))
        return (type(value), tuple(typed(getattr(value, f.name)) for f in fields))
    if type(value) is tuple:
        return (tuple, tuple(typed(v) for v in value))
    if type(value) is float:
        return (float, value.hex())  # a NaN equals itself this way
    return (type(value), value)


def reference_decode(data: bytes, expected: type[Message]) -> Message:
    raw = codec.parse(data)
    message: Message = codec._message_decoder(expected)(raw, expected.__name__)
    return message


def assert_fast_agrees(raw: object, expected: type[Message] = Message) -> None:
    """`decode` agrees with the reference, and so does the fast decoder's own contract."""
    try:
        data = cbor2.dumps(raw)
    except (TypeError, ValueError, OverflowError):
        return  # not encodable as CBOR (too large an int), so no frame to decode
    reference = outcome(lambda: reference_decode(data, expected))
    assert outcome(lambda: decode(data, expected)) == reference
    try:
        parsed = codec.parse(data)
    except DecodeError:
        return  # not acceptable CBOR: refused before any decoder runs
    # The contract unions rely on: what the fast decoder returns is the reference's value,
    # and where it says invalid, the reference raises DecodeError.
    fast = outcome(lambda: codec._fast_message(expected)(parsed, 0))
    # A class's first messages are decoded without generated code, the rest with it: the
    # two give the same outcome.
    tag = parsed[0] if type(parsed) is list and parsed else None
    cls = codec.registered(tag) if type(tag) is int else None
    if cls is not None:
        first = outcome(lambda: codec._first_fast_fields(cls)(parsed, 0))
        assert outcome(lambda: codec._build_fast_fields(cls)(parsed, 0)) == first
    if fast[0] == "value":
        assert fast == reference
    elif fast[1] is codec._Invalid:
        assert reference[0] == "DecodeError"
    # And it does not just leave everything to the reference: a frame as our encoder writes
    # it (every field present), it decodes by itself.
    if reference[0] == "value" and encode(decode(data, expected)) == cbor2.dumps(
        parsed, canonical=True
    ):
        assert fast == reference


@settings(max_examples=300, deadline=None)
@given(raw_message(Message, 0), st.sampled_from(BASES))
def test_fast_decoder_agrees_on_random_messages(raw: object, expected: type[Message]) -> None:
    assert_fast_agrees(raw)
    assert_fast_agrees(raw, expected)


@settings(max_examples=300, deadline=None)
@given(raw_message(Message, 0))
def test_the_encoder_writes_what_cbor2_writes_calling_back_per_message(raw: object) -> None:
    """`encode` turns a message into nested arrays first (`codec._plain`): the bytes must
    be those of cbor2 calling `_default` for each nested message, for every class."""
    try:
        message = decode(cbor2.dumps(raw), Message)
    except (DecodeError, TypeError, ValueError, OverflowError):
        return  # not a valid message
    assert encode(message) == cbor2.dumps(message, canonical=True, default=codec._default)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_each_class_generated_encoder_writes_the_generic_bytes(
    cls: type[Message], data: st.DataObject
) -> None:
    """Each class's converter (`codec._plain_arrays`: generated where a field may hold a
    message, else its field getter), on a message of that very class: the bytes of cbor2
    calling `_default` per message (the generic path)."""
    raw = data.draw(raw_fields(cls, 0))
    try:
        message = decode(cbor2.dumps(raw), cls)
    except (DecodeError, TypeError, ValueError, OverflowError):
        return  # not a valid message (a limit, a bad union member)
    assert type(message) is cls
    assert encode(message) == cbor2.dumps(message, canonical=True, default=codec._default)


def test_every_class_has_an_example_its_generated_encoder_writes() -> None:
    """The test above is not vacuous: most classes' drawn messages decode."""
    encoded = set()
    for cls in CLASSES:
        for raw in (cbor2.dumps([codec.tag_of(cls), *values]) for values in _simple_fields(cls)):
            try:
                message = decode(raw, cls)
            except DecodeError:
                continue
            assert encode(message) == cbor2.dumps(message, canonical=True, default=codec._default)
            encoded.add(cls)
    # (79 of 95 classes on writing; the rest need a key or an id no smallest value gives)
    assert len(encoded) >= len(CLASSES) * 3 // 4, sorted(c.__name__ for c in set(CLASSES) - encoded)


def _simple_fields(cls: type[Message]) -> list[list[object]]:
    """A few field lists for `cls` built from the smallest value of each annotation."""
    return [[_smallest(tp, fill) for tp in hints_of(cls)] for fill in (0, 1)]


def _smallest(tp: object, fill: int) -> object:
    if tp is int or tp is float or (isinstance(tp, type) and issubclass(tp, enum.IntEnum)):
        return min([m.value for m in tp], default=fill) if isinstance(tp, enum.EnumMeta) else fill
    if tp in (bool, bytes, str, type(None)):
        return {bool: False, bytes: b"", str: "", type(None): None}[tp]
    if isinstance(tp, type) and issubclass(tp, Message):
        leaf = [c for c in CLASSES if issubclass(c, tp) and c is not tp] or [tp]
        return [codec.tag_of(leaf[0]), *(_smallest(a, fill) for a in hints_of(leaf[0]))]
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return [] if not fill else [_smallest(args[0], fill)]
        return [_smallest(a, fill) for a in args]
    return None if type(None) in args else _smallest(args[0], fill)


@settings(max_examples=60, deadline=None)
@given(raw_message(Message, 0))
def test_fast_decoder_agrees_on_messages_broken_anywhere(raw: object) -> None:
    for changed in broken(raw):
        assert_fast_agrees(changed)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([Sample, Unsure, Drawing]).flatmap(lambda cls: raw_message(cls, 0)))
def test_fast_decoder_agrees_on_every_kind_of_field(raw: object) -> None:
    for changed in [raw, *broken(raw)]:
        assert_fast_agrees(changed, Message)


@given(st.binary(max_size=64) | PLAIN.map(cbor2.dumps), st.sampled_from([Message, Drawing]))
def test_fast_decoder_agrees_on_garbage(data: bytes, expected: type[Message]) -> None:
    reference = outcome(lambda: reference_decode(data, expected))
    assert outcome(lambda: decode(data, expected)) == reference


@pytest.mark.parametrize(
    "raw",
    [
        [True, 2, "m", 0],  # equals tag 1 (Failure), but is no integer
        [1.0, 2, "m", 0],
        [1, 2, "m", True],
        [9005, []],  # both alternatives take it: the first wins
        [9005, [1, 2], 3],  # and a float is preferred to an int
        [9005, None],
        [9005, [[9001, 1]], 2**53],
        [9005, [[9001, 1]], 2**53 + 1],
        [9005, [[9001, 1]], True],
        [9005, [[9001, 1], 1]],
        [9004, [1, "a"], 1.0, None, 8],  # a value that only `_missing_` accepts
        [9004, [1, "a"], 1.0, None, 9],
        [9004, [1, "a", 2], 1.0, None],
        [9004, [1, "a"], 1.0, None, 0, [1, 2, 3, 4]],
        [9004, [1, "a"], 1.0, [9003, b"x", []]],  # not a Shape
        [9003, b"x", [[9001, 1]], 1, None, 1],
        [9003, b"x", [], 1, None, False, 0],
        [9001],
        [9001, 2**64 - 1],
    ],
)
def test_fast_decoder_agrees_on_tricky_frames(raw: object) -> None:
    for expected in (Message, Shape, Drawing, Sample, Unsure, statemachine.results.Failure):
        assert_fast_agrees(raw, expected)


@pytest.mark.parametrize("depth", [0, 1, codec.MAX_NESTING - 1, codec.MAX_NESTING, 33, 40])
def test_fast_decoder_keeps_the_nesting_bound(depth: int) -> None:
    raw: list[object] = [9003, b"x", [], 1, None, False]
    for _ in range(depth):
        raw = [9003, b"x", [], 1, raw, False]
    assert_fast_agrees(raw, Drawing)
    if depth > codec.MAX_NESTING:
        with pytest.raises(DecodeError, match="nested more than"):
            decode(cbor2.dumps(raw), Drawing)
    else:
        assert encode(decode(cbor2.dumps(raw), Drawing)) == cbor2.dumps(raw, canonical=True)


def test_fast_decoder_decodes_by_itself_what_we_encode() -> None:
    sample = Sample((1, "a"), 0.5, Circle(2), Mood(8), (1, 2), Sample((2, "b"), 1.0, None))
    for message in (sample, Unsure((Circle(1),)), Unsure((), 2), Drawing(b"d", (Label("x"),))):
        raw = codec.parse(encode(message))
        assert codec._fast_message(Message)(raw, 0) == message
        assert_fast_agrees(raw)


@settings(max_examples=100, deadline=None)
@given(st.lists(raw_message(Message, 0), max_size=4), st.integers(0, 80))
def test_encode_value_writes_what_cbor2_writes_calling_back_per_message(
    raws: list[object], pad: int
) -> None:
    """`encode_value` hands cbor2 the messages in a value as arrays already (short arrays
    are scanned, long ones left to the hook): the bytes of cbor2 calling `_default`."""
    messages = []
    for raw in raws:
        try:
            messages.append(decode(cbor2.dumps(raw), Message))
        except (DecodeError, TypeError, ValueError, OverflowError):
            continue  # not a valid message
    value = [7, "x", [messages, tuple(messages)], [b"p"] * pad + messages, {"k": messages}]
    assert codec.encode_value(value) == cbor2.dumps(value, canonical=True, default=codec._default)
    for message in messages:
        assert codec.encode_value(message) == cbor2.dumps(
            message, canonical=True, default=codec._default
        )


def test_encode_value_converts_floats_and_long_arrays_alike() -> None:
    inner = Sample((1, "a"), 1.5, None)
    value = [inner, [inner] * (codec._SCAN_ITEMS + 1), (Label("x"), 2.5)]
    assert codec.encode_value(value) == cbor2.dumps(value, canonical=True, default=codec._default)


def test_a_float_is_encoded_in_its_shortest_exact_form_wherever_it_is_nested() -> None:
    """`encode` skips cbor2's canonical mode where no float can be: a message that may hold
    one is still encoded canonically (a half-precision 1.5 takes 3 bytes, not 9)."""
    inner = Sample((1, "a"), 1.5, None)
    for message in (inner, Drawing(b"d", (Circle(1),)), Unsure((), 1.5), Label("x")):
        assert encode(message) == cbor2.dumps(message, canonical=True, default=codec._default)
    assert b"\xf9\x3e\x00" in encode(inner)  # 1.5 as a half-precision float
    # A float one message down.
    outer = Sample((2, "b"), 2.0, None, inner=inner)
    assert encode(outer) == cbor2.dumps(outer, canonical=True, default=codec._default)
    assert encode(outer).count(b"\xf9") == 2


def attrs_init_outcome(cls: type[Message], *values: object) -> tuple[str, object]:
    """What the attrs `__init__` itself makes of `values` (no decoder involved)."""
    message = object.__new__(cls)
    try:
        codec._raw_inits[cls](message, *values)
    except Exception as e:  # noqa: BLE001 - compared, not handled
        return (type(e).__name__, str(e))
    return ("value", message)


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (Circle, (5,)),
        (Circle, (1001,)),  # int_range, tested inline
        (Circle, (-1,)),
        (Label, ("x" * 8,)),
        (Label, ("x" * 9,)),  # max_len, tested inline
        (Drawing, (b"d", (Circle(1),) * 5)),  # max_len in shapes, after name's
        (Drawing, (b"d" * 17, (Circle(1),) * 5)),  # the first failing field is named
        (Drawing, (b"d", ())),  # defaults
        (raftcluster.raft.messages.Heartbeat, (1, 2, 3, 4, 5)),
        (raftcluster.raft.messages.Heartbeat, (1, 0, 3, 4, 5)),  # a node id is positive
        (
            raftcluster.raft.messages.AppendEntries,  # __attrs_post_init__ refuses it
            (3, 1, 2, 10, 3, 10, (raftcluster.raft.types.Entry(3, 12),)),
        ),
    ],
)
def test_the_generated_builder_does_what_the_attrs_init_does(
    cls: type[Message], values: tuple[object, ...]
) -> None:
    build = codec._inline_builder(cls)
    assert build is not None  # these classes get one: the test must not compare nothing

    def built() -> tuple[str, object]:
        try:
            return ("value", build(*values))
        except Exception as e:  # noqa: BLE001 - compared, not handled
            return (type(e).__name__, str(e))

    def constructed() -> tuple[str, object]:
        """The class called: its generated `__init__` does the attrs steps inline too."""
        try:
            return ("value", cls(*values))
        except Exception as e:  # noqa: BLE001 - compared, not handled
            return (type(e).__name__, str(e))

    assert built() == attrs_init_outcome(cls, *values) == constructed()
    with attrs.validators.disabled():  # as the attrs __init__ honours it
        assert built() == attrs_init_outcome(cls, *values) == constructed()
    assert "_raw" not in cls.__init__.__code__.co_names  # (they were inlined)


def test_a_decoded_value_outside_a_limit_names_the_field() -> None:
    with pytest.raises(DecodeError, match=r"Circle\.radius.*1001 is outside 0\.\.1000"):
        decode(cbor2.dumps([9001, 1001]), Shape)
    with pytest.raises(DecodeError, match=r"Label\.text"):
        decode(cbor2.dumps([9002, "x" * 9]), Shape)


def test_a_class_with_a_setattr_of_its_own_is_built_by_its_attrs_init() -> None:
    """(A mutable class whose fields validate when set: the attrs `__init__` decides.)"""

    @attrs.define
    class Hooked(Message):
        size: int = attrs.field(validator=int_range(0, 9), on_setattr=attrs.setters.validate)

    assert codec._inline_builder(Hooked) is None
    assert codec._inline_builder(Circle) is not None  # frozen
