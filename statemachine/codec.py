"""Canonical CBOR encoding of tagged, frozen attrs classes.

Every command, result, event, snapshot and wire message is an attrs frozen class
that derives from `Message` and carries a stable integer tag (`@tagged(n)`). On the
wire a message is the CBOR array ``[tag, field1, field2, ...]`` in the order the
fields are declared, encoded canonically, so equal messages give equal bytes.

Building a message checks the type of every field against its annotation (the types
listed under "Field types" in docs/statemachine.md), naming the field when one is wrong
(`FieldTypeError`), then runs the field validators (the limits): a message that is built
can be encoded, and decodes to an equal one.

Decoding is driven by the field annotations: every value is checked for its exact
type, integer bounds and collection sizes, then the class is built, which runs the
field validators (the limits). Anything malformed raises `DecodeError` naming the
offending field; nothing else escapes. No pickle is involved anywhere.

Tag ranges (keep them apart so a stray tag is never mistaken for another layer's):
    1-99       statemachine core (failures, envelopes, snapshots)
    100-199    configuration database
    200-299    client sessions
    300-999    later cluster state parts (membership, groups, locks, processes, jobs)
    1000-1999  Raft entries and messages
    2000-2999  transport, RPC and client protocol
    3000-3999  chaos harness records
    10000+     user-registered parts
"""

from __future__ import annotations

import enum
import functools
import inspect
import operator
import struct
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import attrs
import cbor2

from statemachine.errors import (
    DecodeError,
    FieldTypeError,
    InvalidArgument,
    LimitExceeded,
    describe_value,
)

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
# Hard cap on any array, whatever its field says: bounds what a hostile frame can make us build.
MAX_ITEMS_DEFAULT = 1_000_000
# Messages nested in messages, at most. Decoding recurses per level, so without this bound a
# deeply nested frame (cbor2 accepts 400 levels) would hit Python's recursion limit, and where
# that happens depends on the caller's stack depth: two replicas could disagree on one frame.
MAX_NESTING = 32

M = TypeVar("M", bound="Message")
T = TypeVar("T")


class Message:
    """Base of every encodable value. Subclasses are `@tagged(n) @attrs.frozen` classes."""

    __slots__ = ()
    TAG: ClassVar[int]


_by_tag: dict[int, type[Message]] = {}
_field_names: dict[type[Message], tuple[str, ...]] = {}
_field_values: dict[type[Message], Callable[[Any], list[Any]]] = {}
_decoders: dict[type[Message], Callable[[list[Any], str], Message]] = {}


def tagged(tag: int) -> Callable[[type[M]], type[M]]:
    """Register a frozen attrs class under a stable tag. Apply on top of `@attrs.frozen`."""

    def register(cls: type[M]) -> type[M]:
        assert attrs.has(cls), f"{cls.__name__}: apply @tagged on top of @attrs.frozen"
        assert issubclass(cls, Message), f"{cls.__name__} must derive from Message"
        assert 0 < tag < 2**31, f"tag {tag} out of range"
        existing = _by_tag.get(tag)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"tag {tag} already used by {existing.__qualname__}")
        cls.TAG = tag
        _check_fields_when_built(cls)
        _by_tag[tag] = cls
        names = tuple(a.name for a in attrs.fields(typing.cast(Any, cls)))
        _field_names[cls] = names
        _field_values[cls] = _values_getter(tag, names)
        _decoders.pop(cls, None)
        _fast_fields.pop(cls, None)
        _plain_arrays.clear()  # a re-registered class may change how others nest it
        _puts.clear()
        for accepted in _fast_accepted:
            accepted.pop(tag, None)
        return cls

    return register


_hints: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """`typing.get_type_hints(cls)`, resolved once per class (the encoder, both decoders
    and the checked `__init__` each read them once, as they are generated: about 0.1 ms a
    class). Read only. An error (a name not defined yet) is raised again at each call."""
    hints = _hints.get(cls)
    if hints is None:
        hints = _hints[cls] = typing.get_type_hints(cls)
    return hints


def tag_of(cls: type[Message]) -> int:
    return cls.TAG


def registered(tag: int) -> type[Message] | None:
    return _by_tag.get(tag)


def registered_tags() -> dict[int, type[Message]]:
    """A copy of the whole registry, tag -> class (to see what an import registered)."""
    return dict(_by_tag)


# -- encoding ---------------------------------------------------------------------------


def _values_getter(tag: int, names: tuple[str, ...]) -> Callable[[Any], list[Any]]:
    """The encoded array of a message: [tag, field1, ...] (attrgetter: one C call)."""
    if not names:
        return lambda _: [tag]
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda value: [tag, one(value)]
    many = operator.attrgetter(*names)
    return lambda value: [tag, *many(value)]


def _default(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, Message):
        encoder.encode(_field_values[type(value)](value))
    elif isinstance(value, enum.IntEnum):
        encoder.encode(int(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


def encode(message: Message) -> bytes:
    """Canonical CBOR bytes of a message: equal messages give equal bytes."""
    out: list[bytes] = []
    try:
        (_puts.get(type(message)) or _put_item)(message, out)
    except _NeedsCanonical:  # a float in it (see below): cbor2's canonical encoder decides
        return cbor2.dumps(message, canonical=True, default=_default)
    return b"".join(out)


# Canonical CBOR differs from cbor2's default encoding only for floats (the shortest exact
# form), maps and sets. A message holds no map nor set (its fields' annotations cannot
# say one, and building it checks every field), so without a float both give the same
# bytes, and the default encoding costs far less (the canonical one probes every array
# against `collections.abc.Mapping`). So `encode` encodes without `canonical`, and a
# message whose class has a field that may hold a float (by its annotation, or one that
# does not resolve) raises `_NeedsCanonical` where it is converted: then the message is
# encoded canonically from scratch, through `_default` alone (the encoder before the fast
# path below: the same bytes).


class _NeedsCanonical(Exception):
    pass


def _default_float_free(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, Message):
        encoder.encode(_plain(value))  # raises _NeedsCanonical for a class with a float
    elif isinstance(value, enum.IntEnum):
        encoder.encode(int(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


def _needs_canonical(_: Any) -> list[Any]:
    raise _NeedsCanonical


# -- encoding, fast path ----------------------------------------------------------------
#
# cbor2 calls `_default` (from C) for every message nested in a message, after probing it
# against its own types. Turning the message into the nested arrays `_default` would have
# written, in one Python pass first, writes the same bytes for a fraction of the cost: each
# class gets a converter, generated once per class as the decoders are, that reads its
# fields in order, keeps the plain ones as they are and converts only the fields whose
# annotation may hold a message (through `_plain`'s table, inline). Whatever it leaves
# unconverted (a value of a type its annotation does not say) still reaches `_default`,
# so the bytes never differ (tests/test_codec.py checks every class against cbor2 calling
# `_default` per message).

_plain_arrays: dict[type, Callable[[Any], list[Any]]] = {}


def _plain(value: Any) -> Any:
    """`value` with every message in it as its array ([tag, field1, ...]), recursively
    through message fields and tuples of them; anything else as it is."""
    convert = _plain_arrays.get(type(value))
    if convert is None:
        if not isinstance(value, Message) or type(value) not in _field_values:
            return value
        convert = _plain_arrays[type(value)] = _build_plain_array(type(value))
    return convert(value)


def _plain_items(value: Any) -> Any:
    if type(value) is tuple or type(value) is list:
        get = _plain_arrays.get  # (`_plain` inline: a converter, or `_plain` to decide)
        return [(get(type(item)) or _plain)(item) for item in value]
    return _plain(value)


def _build_plain_array(cls: type[Message]) -> Callable[[Any], list[Any]]:
    names = _field_names[cls]
    try:
        hints = _type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations: convert every field
        hints = {}
    annotations = [hints.get(name, object) for name in names]
    if any(map(_may_hold_float, annotations)):
        return _needs_canonical
    if not any(map(_may_hold_message, annotations)):
        return _field_values[cls]  # (as quick as a generated one, and nothing to compile)
    # The array written out: `value.field` for a plain field; for one that may hold a
    # message, `_plain` inline (its table's converter for the value's class, or `_plain`
    # itself to decide), or `_plain_items` for a tuple.
    items = [str(cls.TAG)]
    for name, tp in zip(names, annotations, strict=True):
        if not _may_hold_message(tp):
            items.append(f"value.{name}")
        elif typing.get_origin(tp) is tuple:
            items.append(f"_plain_items(value.{name})")
        else:
            items.append(f"(_get(type(value.{name})) or _plain)(value.{name})")
    namespace: dict[str, Any] = {
        "_get": _plain_arrays.get, "_plain": _plain, "_plain_items": _plain_items,
    }  # fmt: skip
    source = f"def convert(value):\n    return [{', '.join(items)}]"
    _run(source, namespace, "encode", cls)
    convert: Callable[[Any], list[Any]] = namespace["convert"]
    return convert


def _may_hold_float(tp: Any) -> bool:
    """Whether a field annotated `tp` may hold a float itself (one nested in a message
    is its own class's business); an annotation the codec does not know: it may."""
    if tp in _PLAIN:
        return False
    if isinstance(tp, type):
        return not issubclass(tp, Message | enum.IntEnum)
    return not typing.get_args(tp) or any(
        _may_hold_float(a) for a in typing.get_args(tp) if a is not Ellipsis
    )


def _may_hold_message(tp: Any) -> bool:
    if tp in _PLAIN or tp is float:
        return False
    if isinstance(tp, type):
        return issubclass(tp, Message) or not issubclass(tp, int | float | bytes | str)
    return any(_may_hold_message(a) for a in typing.get_args(tp) if a is not Ellipsis)


# -- encoding, direct bytes -------------------------------------------------------------
#
# `encode` writes the bytes itself rather than through cbor2: its encoder costs about
# 0.1 us per integer and 0.4 us per array (a frame of a few dozen items: several us),
# most of a simulated message's encoding. Each class gets a writer, generated once per
# class as the converters above are, that appends the bytes of its array to a list: the
# array's head and tag (one constant), then each field in order, written out for the
# usual case its annotation names (an int of one byte or a small one, bytes, a bool, an
# enum member, a message, a tuple of messages, None) and handed to `_put_item` for any
# other. `_put_item` writes ints, bytes, strings, None, bools, lists and tuples as cbor2
# writes them (the shortest head, definite lengths), messages through their writers,
# enum members as their ints, and leaves anything else to cbor2 itself (an int beyond 64
# bits, a dict, a set...), whose bytes for a value do not depend on what surrounds it.
# So the bytes are those of the converters and cbor2 above, byte for byte (checked for
# every class by tests/test_codec.py against cbor2 calling `_default` per message).

# The head of a CBOR item of major type `major` (its top three bits) and argument `n`.
_pack_head16 = struct.Struct(">BH").pack
_pack_head32 = struct.Struct(">BI").pack
_pack_head64 = struct.Struct(">BQ").pack


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major | n,))
    if n < 0x100:
        return bytes((major | 24, n))
    if n < 0x10000:
        return _pack_head16(major | 25, n)
    if n < 0x100000000:
        return _pack_head32(major | 26, n)
    return _pack_head64(major | 27, n)


_UINT8 = tuple(_head(0x00, n) for n in range(256))  # the integers 0..255
_BYTES_HEAD = tuple(_head(0x40, n) for n in range(256))  # byte strings of 0..255 bytes
_ARRAY_HEAD = tuple(_head(0x80, n) for n in range(256))  # arrays of 0..255 items

_puts: dict[type, Callable[[Any, list[bytes]], None]] = {}  # class -> its writer


def _int_bytes(value: int) -> bytes:
    if 0 <= value <= INT_MAX:
        return _UINT8[value] if value < 0x100 else _head(0x00, value)
    if -(2**64) <= value < 0:
        return _head(0x20, -1 - value)
    return cbor2.dumps(value)  # a bignum (a tagged byte string)


def _put_item(value: Any, out: list[bytes]) -> None:
    """Append the CBOR bytes of any value (what cbor2 writes for it, see above)."""
    kind = type(value)
    if kind is int:
        out.append(_UINT8[value] if 0 <= value < 0x100 else _int_bytes(value))
    elif kind is bytes:
        size = len(value)
        out.append(_BYTES_HEAD[size] if size < 0x100 else _head(0x40, size))
        out.append(value)
    elif kind is list or kind is tuple:
        size = len(value)
        out.append(_ARRAY_HEAD[size] if size < 0x100 else _head(0x80, size))
        for item in value:
            (_puts.get(type(item)) or _put_item)(item, out)
    elif value is None:
        out.append(b"\xf6")
    elif kind is bool:
        out.append(b"\xf5" if value else b"\xf4")
    elif kind is str:
        try:
            data = value.encode()
        except UnicodeEncodeError:  # (cbor2 decides: it refuses it)
            out.append(cbor2.dumps(value))
            return
        out.append(_head(0x60, len(data)))
        out.append(data)
    elif kind in _field_values:  # a message whose writer is not made yet
        put = _puts[kind] = _build_put(kind)
        put(value, out)
    elif isinstance(value, enum.IntEnum):
        out.append(_int_bytes(int(value)))
    else:
        out.append(cbor2.dumps(value, default=_default_float_free))


def _annotations(cls: type[Message]) -> list[Any]:
    """The annotation of each field (`object` for all when they do not resolve)."""
    try:
        hints = _type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations: any value
        hints = {}
    return [hints.get(name, object) for name in _field_names[cls]]


def _build_put(cls: type[Message]) -> Callable[[Any, list[bytes]], None]:
    names = _field_names[cls]
    annotations = _annotations(cls)
    if any(map(_may_hold_float, annotations)):
        return _write_canonically
    namespace: dict[str, Any] = {
        "_head_and_tag": _head(0x80, len(names) + 1) + _int_bytes(cls.TAG),
        "_get": _puts.get, "_item": _put_item, "_U8": _UINT8, "_B8": _BYTES_HEAD,
        "_A8": _ARRAY_HEAD,
    }  # fmt: skip
    lines = ["def put(value, out):", "    out.append(_head_and_tag)"]
    for i, (name, tp) in enumerate(zip(names, annotations, strict=True)):
        lines.append(f"    x = value.{name}")
        lines += _put_lines(tp, i, namespace)
    _run("\n".join(lines), namespace, "put", cls)
    put: Callable[[Any, list[bytes]], None] = namespace["put"]
    return put


def _put_lines(tp: Any, i: int, namespace: dict[str, Any]) -> list[str]:
    """The lines of a generated writer that append the bytes of field value `x`,
    annotated `tp`: its usual case written out, `_item(x, out)` for any other."""
    optional = _optional_of(tp)
    if optional is not None:
        inner = _put_lines(optional, i, namespace)
        return ["    if x is None:", "        out.append(b'\\xf6')", "    else:",
                *("    " + line for line in inner)]  # fmt: skip
    if tp is int:
        return ["    if type(x) is int and 0 <= x < 256:", "        out.append(_U8[x])",
                "    else:", "        _item(x, out)"]  # fmt: skip
    if tp is bytes:
        return ["    if type(x) is bytes and len(x) < 256:", "        out.append(_B8[len(x)])",
                "        out.append(x)", "    else:", "        _item(x, out)"]  # fmt: skip
    if tp is bool:
        return ["    if x is True:", "        out.append(b'\\xf5')", "    elif x is False:",
                "        out.append(b'\\xf4')", "    else:", "        _item(x, out)"]  # fmt: skip
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        namespace[f"_enum{i}"] = tp
        return [f"    if type(x) is _enum{i} and 0 <= x < 256:", "        out.append(_U8[x])",
                "    else:", "        _item(x, out)"]  # fmt: skip
    if isinstance(tp, type) and issubclass(tp, Message):
        return ["    (_get(type(x)) or _item)(x, out)"]
    args = typing.get_args(tp)
    if (
        typing.get_origin(tp) is tuple
        and len(args) == 2
        and args[1] is Ellipsis
        and isinstance(args[0], type)
        and issubclass(args[0], Message)
    ):
        return ["    if type(x) is tuple and len(x) < 256:", "        out.append(_A8[len(x)])",
                "        for y in x:", "            (_get(type(y)) or _item)(y, out)",
                "    else:", "        _item(x, out)"]  # fmt: skip
    return ["    _item(x, out)"]


def _write_canonically(value: Any, out: list[bytes]) -> None:
    raise _NeedsCanonical  # a class with a float: `encode` starts again, canonically


def encode_value(value: Any) -> bytes:
    """Canonical CBOR of a plain value that may contain messages (for hashing, snapshots)."""
    return cbor2.dumps(_plain_value(value), canonical=True, default=_default)


# The exact types cbor2 encodes without asking `default` (and that hold nothing to convert).
_SCALARS = frozenset({int, bytes, str, bool, float, type(None)})
# Longer arrays are left as they are by `_plain_value` (a snapshot's long arrays are plain
# data: scanning them cost more than the hook they spare).
_SCAN_ITEMS = 64


def _plain_value(value: Any) -> Any:
    """`value` with the messages in it as the arrays `_default` would write for them: the
    same bytes, without the hook. cbor2's first call of a `default` hook in a process
    imports modules of its own (decimal, uuid, email: about 30 ms, a few per cent of a
    simulated seed), so the usual values (messages, in short arrays) do not reach it;
    anything else still does."""
    kind = type(value)
    if kind is list or kind is tuple:
        if len(value) > _SCAN_ITEMS:
            return value
        return [item if type(item) in _SCALARS else _plain_value(item) for item in value]
    if kind in _field_values:
        try:
            return _plain(value)
        except _NeedsCanonical:  # a float in it: the hook writes it (canonically here)
            return value
    return value


# -- decoding ---------------------------------------------------------------------------


def decode(data: bytes, expected: type[M]) -> M:
    """Decode bytes into a message of class `expected` (or one of its subclasses).

    Raises `DecodeError` for anything malformed: not CBOR, any CBOR tag, unknown
    message tag, wrong class, wrong field type, out-of-range integer, too many items,
    a limit exceeded.
    """
    raw = parse(data)
    # The fast decoder (below) checks the same things but names nothing. Whatever stops it,
    # the reference decoder runs from scratch and decides: it is pure, so a malformed frame
    # still gets the error it always got, naming the field. It runs after the `except`
    # block, so that its error does not carry the fast decoder's as context.
    try:
        fast: M = (_fast_bases.get(expected) or _fast_message(expected))(raw, 0)
    except Exception:  # noqa: BLE001, S110 - deliberately blind, see above
        pass
    else:
        return fast
    message: M = _message_decoder(expected)(raw, expected.__name__)
    return message


# Every semantic tag cbor2 decodes natively (probed on cbor2 6.x; a transport test re-probes).
# Shared references (28/29) would let a few bytes expand into a huge or cyclic value, regexes
# and MIME (35/36) run parsers on hostile input: our encoding uses no tags at all, so every
# tag is refused, natively decoded ones through `semantic_decoders`, the rest in `tag_hook`.
_NATIVE_TAGS = (
    0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 28, 29, 30, 32, 33, 34, 35, 36, 37, 52, 54,
    100, 256, 258, 260, 261, 262, 263, 1004, 43000, 55799,
)  # fmt: skip
MAX_CBOR_DEPTH = 64  # containers nested in containers; our deepest message is far below this


class _TagRefused(ValueError):
    pass


def _refuse_tag(*_: Any) -> Any:
    raise _TagRefused("CBOR tags are not used by this encoding")


_NO_SEMANTICS = {tag: _refuse_tag for tag in _NATIVE_TAGS}
# A tuple, not `bytes | bytearray | memoryview`, which would build a union object per call.
_BYTES_LIKE = (bytes, bytearray, memoryview)


def parse(data: bytes) -> Any:
    """Bytes -> plain CBOR value, refusing tags, indefinite lengths and deep nesting."""
    if not isinstance(data, _BYTES_LIKE):
        raise DecodeError("<frame>", f"expected bytes, got {type(data).__name__}")
    try:
        return cbor2.loads(
            data if type(data) is bytes else bytes(data),
            tag_hook=_refuse_tag,
            semantic_decoders=_NO_SEMANTICS,
            max_depth=MAX_CBOR_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as e:
        raise DecodeError("<frame>", f"not acceptable CBOR: {e}") from None


def decode_value(raw: Any, tp: type[T], path: str = "<value>") -> T:
    """Check and convert an already-parsed CBOR value against a type annotation."""
    result: T = _compile(tp)(raw, path)
    return result


# The reference decoder: it names the field as it goes, for its errors. `decode` runs it
# only when the fast decoder (further down) stops, so it is kept simple rather than quick.


def _message_decoder(base: type[Message]) -> Callable[[Any, str], Any]:
    def decode_message(raw: Any, path: str) -> Message:
        # The path grows by one ".field" per message level, so it measures the nesting.
        if path.count(".") > MAX_NESTING:
            raise DecodeError(path, f"messages nested more than {MAX_NESTING} deep")
        if type(raw) is not list or not raw:
            raise DecodeError(path, "expected a tagged array")
        tag = raw[0]
        if type(tag) is not int:
            raise DecodeError(path, "tag is not an integer")
        cls = _by_tag.get(tag)
        if cls is None:
            raise DecodeError(path, f"unknown tag {tag}")
        if not issubclass(cls, base):
            raise DecodeError(path, f"tag {tag} is {cls.__name__}, expected {base.__name__}")
        return _fields_decoder(cls)(raw, path)

    return decode_message


def _fields_decoder(cls: type[Message]) -> Callable[[list[Any], str], Message]:
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _build_fields_decoder(cls)
        _decoders[cls] = decoder
    return decoder


def _build_fields_decoder(cls: type[Message]) -> Callable[[list[Any], str], Message]:
    hints = _type_hints(cls)
    fields = attrs.fields(typing.cast(Any, cls))
    names = [f.name for f in fields]
    parts = [_compile(hints[f.name]) for f in fields]
    required = sum(1 for f in fields if f.default is attrs.NOTHING)
    name = cls.__name__
    build = _builder(cls)

    def decode_fields(raw: list[Any], path: str) -> Message:
        given = len(raw) - 1
        if not required <= given <= len(parts):
            raise DecodeError(path, f"{name} takes {required}..{len(parts)} fields, got {given}")
        values = [part(raw[i + 1], f"{path}.{names[i]}") for i, part in enumerate(parts[:given])]
        try:
            return build(*values)
        except (LimitExceeded, InvalidArgument) as e:
            raise DecodeError(f"{path}.{e.field.rpartition('.')[2]}", str(e)) from None
        except (ValueError, TypeError) as e:
            raise DecodeError(path, str(e)) from None

    return decode_fields


def _compile(tp: Any) -> Callable[[Any, str], Any]:
    """A checker-converter for one annotation. Recursion happens per message, lazily."""
    if tp is int:
        return _decode_int
    if tp is bool:
        return _exact(bool)
    if tp is bytes:
        return _exact(bytes)
    if tp is str:
        return _exact(str)
    if tp is float:
        return _decode_float
    if tp is type(None) or tp is None:
        return _exact(type(None))
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        return _enum_decoder(tp)
    if isinstance(tp, type) and issubclass(tp, Message):
        return _lazy_message(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _tuple_of(_compile(args[0]))
        return _fixed_tuple([_compile(a) for a in args])
    if origin in (typing.Union, types.UnionType):
        return _union([_compile(a) for a in args], args)
    raise TypeError(f"codec cannot handle annotation {tp!r}")


def _exact(kind: type) -> Callable[[Any, str], Any]:
    def check(raw: Any, path: str) -> Any:
        if type(raw) is not kind:
            raise DecodeError(path, f"expected {kind.__name__}, got {type(raw).__name__}")
        return raw

    return check


def _decode_int(raw: Any, path: str) -> int:
    if type(raw) is not int:
        raise DecodeError(path, f"expected int, got {type(raw).__name__}")
    if not INT_MIN <= raw <= INT_MAX:
        raise DecodeError(path, "integer out of 64-bit range")
    return raw


def _decode_float(raw: Any, path: str) -> float:
    if type(raw) is float:
        return raw
    if type(raw) is int and abs(raw) <= 2**53:
        return float(raw)
    raise DecodeError(path, f"expected float, got {type(raw).__name__}")


def _enum_decoder(tp: type[enum.IntEnum]) -> Callable[[Any, str], Any]:
    def check(raw: Any, path: str) -> Any:
        if type(raw) is not int:
            raise DecodeError(path, f"expected {tp.__name__} (int), got {type(raw).__name__}")
        try:
            return tp(raw)
        except ValueError:
            raise DecodeError(path, f"{raw} is not a valid {tp.__name__}") from None

    return check


def _lazy_message(tp: type[Message]) -> Callable[[Any, str], Any]:
    cache: list[Callable[[Any, str], Any]] = []

    def check(raw: Any, path: str) -> Any:
        if not cache:
            cache.append(_message_decoder(tp))
        decoded: Any = cache[0](raw, path)
        return decoded

    return check


def _tuple_of(item: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def check(raw: Any, path: str) -> tuple[Any, ...]:
        if type(raw) is not list:
            raise DecodeError(path, f"expected array, got {type(raw).__name__}")
        if len(raw) > MAX_ITEMS_DEFAULT:
            raise DecodeError(path, f"{len(raw)} items, over {MAX_ITEMS_DEFAULT}")
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(raw))

    return check


def _fixed_tuple(items: list[Callable[[Any, str], Any]]) -> Callable[[Any, str], Any]:
    def check(raw: Any, path: str) -> tuple[Any, ...]:
        if type(raw) is not list or len(raw) != len(items):
            raise DecodeError(path, f"expected an array of {len(items)}")
        return tuple(
            item(v, f"{path}[{i}]") for i, (item, v) in enumerate(zip(items, raw, strict=True))
        )

    return check


def _union(
    alternatives: list[Callable[[Any, str], Any]], args: tuple[Any, ...]
) -> Callable[[Any, str], Any]:
    # Try each alternative; plain types first is enough because messages are arrays
    # whose first item is an int tag, which no plain alternative accepts.
    def check(raw: Any, path: str) -> Any:
        errors = []
        for alternative in alternatives:
            try:
                return alternative(raw, path)
            except DecodeError as e:
                errors.append(e.reason)
        names = " | ".join(getattr(a, "__name__", repr(a)) for a in args)
        raise DecodeError(path, f"expected {names}: {'; '.join(errors)}")

    return check


# -- decoding, fast path ----------------------------------------------------------------
#
# Nearly every frame, raft message and log entry decodes fine, so the reference decoder's
# naming of each field and item as it goes (a string apiece) is nearly always wasted. The
# fast decoder makes the same checks without names, and `decode` falls back to the reference
# whenever it stops. Its contract, checked against the reference by the tests:
#   - what it returns, the reference returns too (equal values of the same types);
#   - where it raises `_Invalid`, the reference raises `DecodeError`: a union then tries the
#     same next alternative in both;
#   - anything else it raises (`_Deferred`, a class's own error) only means "ask the reference".


class _Invalid(Exception):
    """The fast decoder met something the reference refuses; the reference will say what."""


class _Deferred(Exception):
    """An array shape the fast decoder leaves to the reference: trailing fields omitted.

    Our encoder always writes every field, so only hand-made or older frames take this way.
    """


_Fast = Callable[[Any, int], Any]  # (raw value, message nesting depth) -> decoded value

# The annotations whose raw value is kept as is once its exact type is right.
_PLAIN: dict[Any, type] = {
    int: int,
    bool: bool,
    bytes: bytes,
    str: str,
    type(None): type(None),
    None: type(None),
}

_fast_bases: dict[type[Message], _Fast] = {}
_fast_fields: dict[type[Message], _Fast] = {}
# One cache per base (tag -> fields decoder) for the tags it has accepted; `tagged` drops a
# re-registered tag from each.
_fast_accepted: list[dict[int, _Fast]] = []
# The same caches by base, for the generated decoders that look a nested message's tag up
# themselves (a call fewer per nested message; see `_message_lines`).
_accepted_of: dict[type[Message], dict[int, _Fast]] = {}


def _fast_message(base: type[Message]) -> _Fast:
    """The fast decoder of a message of class `base` or a subclass."""
    decoder = _fast_bases.get(base)
    if decoder is None:
        decoder = _build_fast_message(base)
        _fast_bases[base] = decoder
    return decoder


def _build_fast_message(base: type[Message]) -> _Fast:
    # Accepted tags are remembered, refused ones are not: a class registered later is seen.
    accepted: dict[int, _Fast] = {}
    _fast_accepted.append(accepted)
    _accepted_of[base] = accepted

    def decode_message(raw: Any, depth: int) -> Any:
        # `depth` counts message levels as the reference's path counts dots: the same bound.
        if depth > MAX_NESTING or type(raw) is not list or not raw or type(raw[0]) is not int:
            raise _Invalid
        decode_fields = accepted.get(raw[0])
        if decode_fields is None:
            cls = _by_tag.get(raw[0])
            if cls is None or not issubclass(cls, base):
                raise _Invalid
            decode_fields = accepted[raw[0]] = _fast_fields_decoder(cls)
        return decode_fields(raw, depth)

    return decode_message


def _fast_fields_decoder(cls: type[Message]) -> _Fast:
    decoder = _fast_fields.get(cls)
    if decoder is None:
        decoder = _first_fast_fields(cls)
        _fast_fields[cls] = decoder
    return decoder


# A generated decoder (with its builder) costs its compilation, about as much as decoding
# 300 messages of its class without it; most classes are decoded far less often in a
# process, or far more. So a class's first `GENERATE_AFTER` messages are decoded without.
GENERATE_AFTER = 48


def _first_fast_fields(cls: type[Message]) -> _Fast:
    """The fast decoder of a class's first `GENERATE_AFTER` messages: the generated one's
    checks (`_build_fast_fields`) in the same order, read from lists rather than written
    out, and the class built by its attrs `__init__` (what `_builder` falls back to).
    Then the generated one takes its place (its compilation is paid only by classes that
    are decoded more)."""
    plan = _fast_plan(cls)
    size, smallest, converters, ints = plan.size, plan.smallest, plan.converters, plan.ints
    kinds = tuple((i, kind) for i, kind in enumerate(map(_raw_type, plan.annotations), 1) if kind)
    raw_init = _raw_inits.get(cls)
    new = object.__new__
    left = GENERATE_AFTER

    def decode_fields(raw: Any, depth: int) -> Any:
        nonlocal left
        left -= 1
        if not left:
            _generate_fast_fields(cls, decode_fields)
        if len(raw) != size:
            raise _Deferred if smallest <= len(raw) < size else _Invalid
        values = raw[1:]
        for i, convert in converters:
            values[i] = convert(raw[i + 1], depth + 1)
        for i, kind in kinds:
            if type(raw[i]) is not kind:
                raise _Invalid
        for i in ints:
            if not INT_MIN <= raw[i] <= INT_MAX:
                raise _Invalid
        try:
            if raw_init is None:
                return cls(*values)
            message = new(cls)
            raw_init(message, *values)
            return message
        except (ValueError, TypeError):
            raise _Invalid from None

    return decode_fields


def _generate_fast_fields(cls: type[Message], first: _Fast) -> None:
    """`cls`'s generated fast decoder, in place of `first` wherever that one is kept."""
    generated = _fast_fields[cls] = _build_fast_fields(cls)
    for accepted in _fast_accepted:
        if accepted.get(cls.TAG) is first:
            accepted[cls.TAG] = generated


@attrs.frozen
class _FastPlan:
    """What both fast decoders of a class check."""

    annotations: list[Any]  # its fields', in order
    size: int  # the array's: the tag, then every field
    smallest: int  # without the trailing fields that have defaults
    converters: tuple[tuple[int, _Fast], ...]  # the non-plain fields' (indexes into raw[1:])
    ints: tuple[int, ...]  # where its int fields are (indexes into raw)


def _fast_plan(cls: type[Message]) -> _FastPlan:
    hints = _type_hints(cls)
    fields = attrs.fields(typing.cast(Any, cls))
    annotations = [hints[f.name] for f in fields]
    return _FastPlan(
        annotations,
        len(fields) + 1,
        sum(1 for f in fields if f.default is attrs.NOTHING) + 1,
        tuple((i, _fast_compile(tp)) for i, tp in enumerate(annotations) if tp not in _PLAIN),
        tuple(i for i, tp in enumerate(annotations, 1) if tp is int),
    )


def _build_fast_fields(cls: type[Message]) -> _Fast:
    plan = _fast_plan(cls)
    size, smallest, converters, ints = plan.size, plan.smallest, plan.converters, plan.ints
    raw_types = [int, *map(_raw_type, plan.annotations)]  # the tag, then each field
    # The decoder is generated (once per class), the checks written out per field: the
    # array unpacked into locals (`r1`...: `raw` stays as it came, for the reference to run
    # on if need be), the converters first, in field order (an error of a nested class's
    # own, no refusal, then escapes before any plain field is refused, so a union cannot
    # take it for a refusal and try another alternative where the reference lets it out),
    # then the exact type of every field whose raw type is fixed (the tag's was checked by
    # the caller; float and unions are left to their converters), then the integer bounds.
    namespace: dict[str, Any] = {
        "_Invalid": _Invalid, "_Deferred": _Deferred, "_build": _builder(cls),
        "_INT_MIN": INT_MIN, "_INT_MAX": INT_MAX,
    }  # fmt: skip
    names = [f"r{i}" for i in range(1, size)]
    values = list(names)
    lines = [
        "def decode_fields(raw, depth):",
        f"    if len(raw) != {size}:",
        f"        raise _Deferred if {smallest} <= len(raw) < {size} else _Invalid",
        f"    _, {', '.join(names)}{',' if size == 2 else ''} = raw",
    ]
    for i, convert in converters:
        namespace[f"_convert{i + 1}"] = convert
        values[i] = f"v{i + 1}"
        lines += _converter_lines(plan.annotations[i], i + 1, namespace)
    tests = []
    for i, kind in enumerate(raw_types[1:], 1):
        if kind is not None:
            namespace[f"_kind{i}"] = kind
            tests.append(f"type(r{i}) is not _kind{i}")
    tests += [f"not _INT_MIN <= r{i} <= _INT_MAX" for i in ints]
    if tests:
        lines.append(f"    if {' or '.join(tests)}:")
        lines.append("        raise _Invalid")
    lines += [
        "    try:",
        f"        return _build({', '.join(values)})",
        "    except (ValueError, TypeError):",
        "        raise _Invalid from None",
    ]
    _run("\n".join(lines), namespace, "decode", cls)
    decode_fields: _Fast = namespace["decode_fields"]
    return decode_fields


def _converter_lines(tp: Any, n: int, namespace: dict[str, Any]) -> list[str]:
    """The lines of a generated decoder that set `v{n}` from field `r{n}` (annotated `tp`):
    `_convert{n}(r{n}, depth + 1)`, with its usual case written out first where that saves
    a call (the converter still decides every other case, so the outcome is the same):
    - an enum: the member whose value it is;
    - a message: the fields decoder its base already accepted for its tag (as
      `_fast_message`'s decoder does after its checks, written out here)."""
    call = f"_convert{n}(r{n}, depth + 1)"
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        namespace[f"_members{n}"] = {member.value: member for member in tp}
        return [
            f"    v{n} = _members{n}.get(r{n}) if type(r{n}) is int else None",
            f"    if v{n} is None:",
            f"        v{n} = {call}",
        ]
    if isinstance(tp, type) and issubclass(tp, Message):
        _fast_message(tp)
        namespace[f"_accepted{n}"] = _accepted_of[tp]
        namespace["_MAX_NESTING"] = MAX_NESTING
        return [
            f"    f{n} = (_accepted{n}.get(r{n}[0]) if type(r{n}) is list and r{n} and "
            f"type(r{n}[0]) is int and depth < _MAX_NESTING else None)",
            f"    v{n} = {call} if f{n} is None else f{n}(r{n}, depth + 1)",
        ]
    return [f"    v{n} = {call}"]


def _run(source: str, namespace: dict[str, Any], what: str, cls: type) -> None:
    """Define the generated function `source` (one `def`, nothing nested) in `namespace`,
    its code labelled with a file name that names it and its class (`<codec decode
    AppendEntries>`), so a profile tells the classes' functions apart."""
    exec(source, namespace)  # noqa: S102 - our own text, from the class's fields
    name = source[4 : source.index("(")]  # (after "def ")
    function = namespace[name]
    function.__code__ = function.__code__.replace(co_filename=f"<codec {what} {cls.__qualname__}>")


def _raw_type(tp: Any) -> type | None:
    """The one type every acceptable raw value for `tp` has, or None if there are several."""
    if tp in _PLAIN:
        return _PLAIN[tp]
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        return int
    if (isinstance(tp, type) and issubclass(tp, Message)) or typing.get_origin(tp) is tuple:
        return list
    return None  # float (float or int), unions


def _fast_compile(tp: Any) -> _Fast:
    """The fast counterpart of `_compile`: the same checks, in the same order."""
    if tp is int:
        return _fast_int
    if tp in _PLAIN:
        return _fast_exact(_PLAIN[tp])
    if tp is float:
        return _fast_float
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        return _fast_enum(tp)
    if isinstance(tp, type) and issubclass(tp, Message):
        return _fast_message(tp)  # builds nothing yet, so recursive classes are fine
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = args[0]
            if isinstance(item, type) and issubclass(item, Message):
                return _fast_tuple_of_messages(item)
            return _fast_tuple_of(_fast_compile(item))
        return _fast_fixed_tuple([_fast_compile(a) for a in args])
    if origin in (typing.Union, types.UnionType):
        return _fast_union([_fast_compile(a) for a in args], type(None) in args)
    raise TypeError(f"codec cannot handle annotation {tp!r}")


def _fast_exact(kind: type) -> _Fast:
    def check(raw: Any, depth: int) -> Any:
        if type(raw) is not kind:
            raise _Invalid
        return raw

    return check


def _fast_int(raw: Any, depth: int) -> int:
    if type(raw) is not int or not INT_MIN <= raw <= INT_MAX:
        raise _Invalid
    return raw


def _fast_float(raw: Any, depth: int) -> float:
    if type(raw) is float:
        return raw
    if type(raw) is int and abs(raw) <= 2**53:
        return float(raw)
    raise _Invalid


def _fast_enum(tp: type[enum.IntEnum]) -> _Fast:
    # A dict lookup instead of calling the enum class, which is slow; the members are the
    # values the call returns for their own values.
    members = {member.value: member for member in tp}

    def check(raw: Any, depth: int) -> Any:
        if type(raw) is not int:
            raise _Invalid
        member = members.get(raw)
        if member is not None:
            return member
        try:
            return tp(raw)  # not a member's value: only the class's `_missing_` may accept it
        except ValueError:
            raise _Invalid from None

    return check


def _fast_tuple_of(item: _Fast) -> _Fast:
    def check(raw: Any, depth: int) -> tuple[Any, ...]:
        if type(raw) is not list or len(raw) > MAX_ITEMS_DEFAULT:
            raise _Invalid
        return tuple([item(v, depth) for v in raw])

    return check


def _fast_tuple_of_messages(base: type[Message]) -> _Fast:
    """`_fast_tuple_of(_fast_message(base))`, with the tag lookup of each item's decoder
    written out (see `_converter_lines`)."""
    decode = _fast_message(base)
    get = _accepted_of[base].get

    def check(raw: Any, depth: int) -> tuple[Any, ...]:
        if type(raw) is not list or len(raw) > MAX_ITEMS_DEFAULT:
            raise _Invalid
        if depth > MAX_NESTING:
            return tuple([decode(v, depth) for v in raw])  # (which refuses them)
        items: list[Any] = []
        append = items.append
        for v in raw:
            f = get(v[0]) if type(v) is list and v and type(v[0]) is int else None
            append(decode(v, depth) if f is None else f(v, depth))
        return tuple(items)

    return check


def _fast_fixed_tuple(items: list[_Fast]) -> _Fast:
    def check(raw: Any, depth: int) -> tuple[Any, ...]:
        if type(raw) is not list or len(raw) != len(items):
            raise _Invalid
        return tuple([item(v, depth) for item, v in zip(items, raw, strict=True)])

    return check


def _fast_union(alternatives: list[_Fast], optional: bool) -> _Fast:
    def check(raw: Any, depth: int) -> Any:
        # Only the None alternative accepts None (all others want a number, bytes, a string
        # or an array), so an optional field left empty needs no failed tries first.
        if raw is None and optional:
            return None
        for alternative in alternatives:
            try:
                return alternative(raw, depth)
            except _Invalid:
                continue
        raise _Invalid

    return check


# -- field types, checked when a message is built ----------------------------------------
#
# `tagged` gives each class an `__init__` that checks the type of every argument against
# its field's annotation, then runs the attrs-generated `__init__` (converters, then the
# validators: the limits), so a message that would not encode, or would decode to something
# else, is refused where it is built, naming the field. Construction is on the hot path, so
# each class's `__init__` is generated once, on its first construction (annotations may name
# classes defined later), with the class's own signature and one plain comparison per field
# (`type(key) is not bytes`...); anything odd goes to `_wrong_type`, which decides slowly. A
# field with a converter is checked after the conversion, on the built message. The decoders
# have checked every type already: they build with the attrs `__init__` alone (`_builder`).

_raw_inits: dict[type[Message], Callable[..., None]] = {}


def _check_fields_when_built(cls: type[Message]) -> None:
    raw_init = getattr(cls.__init__, "__wrapped__", cls.__init__)  # tagged twice: once
    _raw_inits[cls] = raw_init

    @functools.wraps(raw_init)
    def first_init(self: Any, *args: Any, **kwargs: Any) -> None:
        checked = _checked_init(cls, raw_init)
        cls.__init__ = checked  # type: ignore[method-assign]
        checked(self, *args, **kwargs)

    cls.__init__ = first_init  # type: ignore[method-assign]


def _checked_init(cls: type[Message], raw_init: Callable[..., None]) -> Callable[..., None]:
    """`cls.__init__`: check each argument's type, then do what `raw_init` does (see
    above)."""
    hints = _type_hints(cls)
    fields = {f.alias: f for f in attrs.fields(typing.cast(Any, cls)) if f.init}
    namespace: dict[str, Any] = {"_raw": raw_init, "_wrong": _wrong_type, "_cls": cls}
    params, passed, before, after = ["self"], [], [], []
    keyword_only = False
    for i, parameter in enumerate(list(inspect.signature(raw_init).parameters.values())[1:]):
        name = parameter.name
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not keyword_only:
            keyword_only = True
            params.append("*")
        default = ""
        if parameter.default is not inspect.Parameter.empty:
            namespace[f"_default{i}"] = parameter.default
            default = f"=_default{i}"
        params.append(f"{name}{default}")
        passed.append(f"{name}={name}" if keyword_only else name)
        field = fields[name]
        tp = hints[field.name]
        namespace[f"_ok{i}"] = _type_check(tp)  # the whole decision, for `_wrong_type`
        wrong = f"_wrong(_cls, {field.name!r}, {{value}}, _ok{i})"
        if field.converter is not None:  # what the converter made is what the field holds
            after.append(_field_test(tp, f"self.{field.name}", i, namespace, wrong))
        else:
            before.append(_field_test(tp, name, i, namespace, wrong))
    # The attrs `__init__`'s own steps inline where they are plain (see `_inline_steps`:
    # no converter, so nothing to check after), else a call of it.
    names = [f.name for f in attrs.fields(typing.cast(Any, cls))]  # (its parameters, if plain)
    inline = _inline_steps(cls, "self", names, namespace)
    if inline is not None and not after and names and len(before) == len(names):
        # Every step inline: one condition says that each argument passes its quick test
        # and its inline-tested validator's test, and then the steps left are the sets,
        # the other validators and `__attrs_post_init__`; anything else is decided by
        # `_slow_init` (each type as `_wrong_type` decides it, then the attrs `__init__`:
        # the same steps in the same order, so the same outcome).
        fields_in_order = attrs.fields(typing.cast(Any, cls))
        tests = [
            _usual_test(f, hints[f.name], name, i, namespace)
            for i, (f, name) in enumerate(zip(fields_in_order, names, strict=True))
        ]
        steps = _inline_steps(cls, "self", names, namespace, untested_only=True)
        assert steps is not None
        namespace["_slow"] = _slow_init(
            cls, raw_init, [(f.name, namespace[f"_ok{i}"]) for i, f in enumerate(fields_in_order)]
        )
        source = "\n".join(
            [
                f"def __init__({', '.join(params)}):",
                f"    if {' and '.join(tests)}:",
                *("    " + line for line in steps),
                "        return None",
                f"    _slow(self, {', '.join(names)})",
            ]
        )
        _run(source, namespace, "init", cls)
        usual: Callable[..., None] = functools.wraps(raw_init)(namespace["__init__"])
        return usual
    source = "\n".join(
        [
            f"def __init__({', '.join(params)}):",
            *before,
            *(inline if inline is not None else [f"    _raw(self, {', '.join(passed)})"]),
            *after,
            "    return None",  # (a class without fields has no other line)
        ]
    )
    _run(source, namespace, "init", cls)
    checked: Callable[..., None] = functools.wraps(raw_init)(namespace["__init__"])
    return checked


def _slow_init(
    cls: type[Message], raw_init: Callable[..., None], checks: list[tuple[str, Any]]
) -> Callable[..., None]:
    """`cls.__init__` for arguments that did not all pass their quick tests: each type
    decided by `_wrong_type`, in field order, then the attrs `__init__`."""

    def slow(self: Any, *values: Any) -> None:
        for (name, ok), value in zip(checks, values, strict=True):
            _wrong_type(cls, name, value, ok)
        raw_init(self, *values)

    return slow


def _usual_test(
    field: attrs.Attribute[Any], tp: Any, value: str, i: int, namespace: dict[str, Any]
) -> str:
    """An expression true when `value` passes field `i`'s quick test (`_field_test`) and
    its validator's inline test, if it has one (`_inline_tests`): an integer's 64-bit
    range and an `int_range` validator's are one range."""
    inline = _inline_tests.get(field.validator)
    if tp is int:
        low, high = INT_MIN, INT_MAX
        if inline is not None and "_low" in inline[1]:
            low, high = max(low, inline[1]["_low"]), min(high, inline[1]["_high"])
            inline = None
        test = f"type({value}) is int and {low} <= {value} <= {high}"
    else:
        optional = _optional_of(tp)
        test = _quick_accept(optional if optional is not None else tp, value, i, namespace)
        if optional is not None:
            test = f"({value} is None or {test})"
    if inline is not None:
        test += f" and not ({inline[0].format(value=value, i=i)})"
    return test


def _field_test(tp: Any, value: str, i: int, namespace: dict[str, Any], wrong: str) -> str:
    """One line of a generated `__init__`: if `value` fails the quick test for annotation
    `tp`, `wrong` decides. `X | None` is None or passes X's quick test."""
    optional = _optional_of(tp)
    if optional is not None:
        refusal = _quick_refusal(optional, value, i, namespace)
        return f"    if {value} is not None and {refusal}: {wrong.format(value=value)}"
    return f"    if {_quick_refusal(tp, value, i, namespace)}: {wrong.format(value=value)}"


def _quick_refusal(tp: Any, value: str, i: int, namespace: dict[str, Any]) -> str:
    """An expression true when `value` fails the quick test for `tp`."""
    if tp is int:  # an IntEnum member, or an int out of range, is left to `_wrong_type`
        return f"(type({value}) is not int or not {INT_MIN} <= {value} <= {INT_MAX})"
    namespace[f"_tp{i}"] = _PLAIN.get(tp, tp)
    if tp in _PLAIN:
        return f"type({value}) is not _tp{i}"
    if isinstance(tp, type) and issubclass(tp, (enum.IntEnum, Message)):
        return f"not isinstance({value}, _tp{i})"
    namespace[f"_quick{i}"] = _type_check(tp)
    return f"not _quick{i}({value})"


def _quick_accept(tp: Any, value: str, i: int, namespace: dict[str, Any]) -> str:
    """An expression true when `value` passes the quick test for `tp` (the negation of
    `_quick_refusal`'s)."""
    if tp is int:
        return f"type({value}) is int and {INT_MIN} <= {value} <= {INT_MAX}"
    _quick_refusal(tp, value, i, namespace)  # (the names it needs)
    if tp in _PLAIN:
        return f"type({value}) is _tp{i}"
    if isinstance(tp, type) and issubclass(tp, (enum.IntEnum, Message)):
        return f"isinstance({value}, _tp{i})"
    return f"_quick{i}({value})"


def _optional_of(tp: Any) -> Any:
    """X for an annotation `X | None` (or Optional[X]), else None."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    others = [a for a in typing.get_args(tp) if a is not type(None)]
    return others[0] if len(others) == 1 and len(typing.get_args(tp)) == 2 else None


def _wrong_type(cls: type[Message], name: str, value: Any, ok: Callable[[Any], bool]) -> None:
    """The slow decision for a value the quick test did not pass: FieldTypeError, unless
    the value is acceptable after all (an IntEnum member for an int field)."""
    if not ok(value):
        tp = _type_hints(cls)[name]
        raise FieldTypeError(f"{cls.__name__}.{name}", _type_name(tp), _value_kind(value))


def _builder(cls: type[Message]) -> Callable[..., Message]:
    """Build `cls` from field values whose types are checked already (by a decoder)."""
    raw_init = _raw_inits.get(cls)
    if raw_init is None:  # not tagged: built as it is
        return cls
    inline = _inline_builder(cls)
    if inline is not None:
        return inline
    new = object.__new__

    def build(*values: Any) -> Message:
        message: Message = new(cls)
        raw_init(message, *values)
        return message

    return build


# A decoder builds thousands of messages a second, and the attrs `__init__` calls each
# field's validator. For a class whose `__init__` does nothing but set the fields, run the
# validators and `__attrs_post_init__` (no converter, factory, keyword-only or non-init
# field, no `__attrs_pre_init__`, frozen or without a `__setattr__` of its own), the
# builder is generated: the same steps in the same order, where a validator made by
# `int_range` or `max_len` (`_inline_tests`) is first tested inline and called, to raise
# its own error, only when its test fails. Validators disabled through attrs are honoured
# as the attrs `__init__` honours them.

_inline_tests: dict[Any, tuple[str, dict[str, Any]]] = {}  # validator -> (test, names)


@attrs.frozen
class _Frozen:
    """(Its `__setattr__` is the one attrs gives every frozen class.)"""


def _inline_builder(cls: type[Message]) -> Callable[..., Message] | None:
    fields = attrs.fields(typing.cast(Any, cls))
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    args = [f"a{i}" for i in range(len(fields))]
    steps = _inline_steps(cls, "m", args, namespace)
    if steps is None:
        return None
    params = []
    for i, f in enumerate(fields):
        if f.default is attrs.NOTHING:
            params.append(f"a{i}")
        else:
            namespace[f"_default{i}"] = f.default
            params.append(f"a{i}=_default{i}")
    lines = [f"def build({', '.join(params)}):", "    m = _new(_cls)", *steps, "    return m"]
    _run("\n".join(lines), namespace, "build", cls)
    build: Callable[..., Message] = namespace["build"]
    return build


def _inline_steps(
    cls: type[Message],
    target: str,
    args: list[str],
    namespace: dict[str, Any],
    untested_only: bool = False,
) -> list[str] | None:
    """The lines of generated code that do what the attrs `__init__` of `cls` does with
    the field values named `args` (in field order) on the object named `target`: set the
    fields, run the validators (those of `_inline_tests` tested inline first), then
    `__attrs_post_init__`. None if the attrs `__init__` does more (see above). The names
    it needs go into `namespace` (`_set`, `_disabled`, `_validate{i}`, `_field{i}`...).
    `untested_only`: without the validators of `_inline_tests` (for values known to pass
    their tests)."""
    if not _has_plain_init(cls):
        return None
    fields = attrs.fields(typing.cast(Any, cls))
    namespace["_set"], namespace["_disabled"] = object.__setattr__, attrs.validators.get_disabled
    sets, checks = [], []
    for i, (f, arg) in enumerate(zip(fields, args, strict=True)):
        slot = _slot_setter(cls, f.name)
        if slot is not None:  # (what `object.__setattr__` calls, without finding it first)
            namespace[f"_set{i}"] = slot
            sets.append(f"    _set{i}({target}, {arg})")
        else:
            sets.append(f"    _set({target}, {f.name!r}, {arg})")
        if f.validator is None:
            continue
        namespace[f"_validate{i}"], namespace[f"_field{i}"] = f.validator, f
        call = f"_validate{i}({target}, _field{i}, {arg})"
        inline = _inline_tests.get(f.validator)
        # Whether validators run (`attrs.validators.disabled()`) is asked only before a
        # call: an inline-tested validator is called only when its test fails, and then
        # raises (a call per message otherwise).
        if inline is None:
            checks.append(f"    if not _disabled(): {call}")
            continue
        test, names = inline
        for name, value in names.items():
            namespace[f"{name}{i}"] = value
        if not untested_only:
            checks.append(f"    if {test.format(value=arg, i=i)} and not _disabled(): {call}")
    lines = sets + checks
    if hasattr(cls, "__attrs_post_init__"):
        lines.append(f"    {target}.__attrs_post_init__()")
    return lines


def _has_plain_init(cls: type[Message]) -> bool:
    """Whether the attrs `__init__` of `cls` only sets the fields, runs the validators and
    `__attrs_post_init__` (see above), with one parameter per field, in field order."""
    fields = attrs.fields(typing.cast(Any, cls))
    # Setting a field as the attrs `__init__` does: frozen, or no `__setattr__` of its own.
    plain_setattr = cls.__setattr__ in (object.__setattr__, _Frozen.__setattr__)
    return not (
        not plain_setattr
        or hasattr(cls, "__attrs_pre_init__")
        or any(
            f.converter is not None
            or not f.init
            or f.kw_only
            or f.alias != f.name
            or isinstance(f.default, attrs.Factory)  # type: ignore[arg-type]
            for f in fields
        )
    )


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None] | None:
    """The `__set__` of the slot that holds field `name` (what `object.__setattr__` finds
    and calls for it: the data descriptor on the class), or None if it is not a slot."""
    for klass in cls.__mro__:
        found = klass.__dict__.get(name)
        if found is not None:
            if isinstance(found, types.MemberDescriptorType):
                setter: Callable[[Any, Any], None] = found.__set__
                return setter
            return None
    return None


def _type_check(tp: Any) -> Callable[[Any], bool]:
    """Whether a value may be held by a field annotated `tp`: it encodes, and decodes to
    an equal value. The counterpart of `_compile` for values built in process."""
    if tp is int:
        return _int_ok
    if tp in _PLAIN:
        kind = _PLAIN[tp]
        return lambda value: type(value) is kind
    if tp is float:
        return _float_ok
    if isinstance(tp, type) and issubclass(tp, (enum.IntEnum, Message)):
        return lambda value: isinstance(value, tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _type_check(args[0])
            return lambda value: type(value) is tuple and all(map(item, value))
        items = [_type_check(a) for a in args]
        return lambda value: (
            type(value) is tuple
            and len(value) == len(items)
            and all(ok(v) for ok, v in zip(items, value, strict=True))
        )
    if origin in (typing.Union, types.UnionType):
        optional = _optional_of(tp)
        if optional is not None:
            only = _type_check(optional)
            return lambda value: value is None or only(value)
        alternatives = [_type_check(a) for a in args]
        return lambda value: any(ok(value) for ok in alternatives)
    raise TypeError(f"codec cannot handle annotation {tp!r}")


def _int_ok(value: Any) -> bool:
    # An IntEnum member is an int that encodes as one (`_default`); a bool is not.
    return (
        type(value) is int or (isinstance(value, int) and not isinstance(value, bool))
    ) and INT_MIN <= value <= INT_MAX


def _float_ok(value: Any) -> bool:
    return type(value) is float or (type(value) is int and abs(value) <= 2**53)


def _type_name(tp: Any) -> str:
    """`tp` as the docs name it: ``int``, ``bytes``, ``tuple[Compare, ...]``."""
    if tp is type(None) or tp is None:
        return "None"
    if isinstance(tp, type):
        return tp.__name__
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple:
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"tuple[{inner}]"
    return " | ".join(_type_name(a) for a in args)


def _value_kind(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        return f"int {value} (outside the 64-bit range)"
    return describe_value(value)


# -- validators (limits checked when a message is built, and so when it is decoded) -----


def _field_name(instance: Any, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def max_len(limit: int, unit: str = "bytes") -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Validator: len(value) <= limit (bytes, str, or tuple items)."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and len(value) > limit:
            raise LimitExceeded(_field_name(instance, attribute), limit, len(value), unit)

    _inline_tests[check] = ("{value} is not None and len({value}) > _limit{i}", {"_limit": limit})
    return check


def int_range(low: int, high: int = INT_MAX) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Validator: low <= value <= high."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if not low <= value <= high:
            raise InvalidArgument(
                _field_name(instance, attribute), f"{value} is outside {low}..{high}"
            )

    _inline_tests[check] = ("not _low{i} <= {value} <= _high{i}", {"_low": low, "_high": high})
    return check


non_negative = int_range(0)
positive = int_range(1)
