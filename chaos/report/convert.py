"""One conversion between the run record's classes and JSON, driven by their types.

`to_json(value)` gives any record value as plain JSON data; `from_json(cls, data, path)`
reads one back, checking every value on the way, and raises only `RecordError(path,
reason)`. Both follow each attrs class's fields and type hints: no class has a
conversion of its own. What a hint means (the types are in `chaos.report.reading`):

| hint | JSON | read as |
| --- | --- | --- |
| `int` | integer | 0 to 2**63 - 1 (`Signed`: from -2**63) |
| `float` | number | finite |
| `bool` | `true` or `false` | (never 0 or 1) |
| `str` | string | a name: 1 to 200 characters (`Text`: free text, up to 64 KiB) |
| `X \\| None` | `null`, or X | |
| an `enum.Enum` | its value | one of the values |
| `tuple[X, ...]` | list | at most 1,000 items, or `Annotated[..., Limit(n)]` |
| `tuple[X, Y]` | list of two | exactly as many items as the hint has |
| `Pairs[K, V]` | object | sorted pairs; keys `str` (names) or `int` (digits); 1,000 at most |
| an attrs class | object | each field by its hint; a key that is not a field is refused |
| `Annotated[T, Value(read, write)]` | as `write` gives it | by `read` |

A field opts into more through its attrs metadata, `metadata=meta(...)`:

- `read`: the field's own reader, (value, path) -> value, in place of its hint's: for a
  check its type cannot say (an object that must be a JSON object, say);
- `missing`: the value taken when the key is absent, for a field without an attrs default;
- `required`: the key must be present although the field has an attrs default.

Otherwise a field with an attrs default may be left out, and takes it. Fields are read in
the class's order, then unknown keys are refused, then the class is built; its own checks
(`__attrs_post_init__`) raise `RecordError`s, located here under the object's path.
"""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeVar

import attrs

from chaos.report import reading as rd
from chaos.report.errors import RecordError

T = TypeVar("T")
Reader = Callable[[Any, str], Any]
Writer = Callable[[Any], Any]

READ: Final = "chaos.report.convert.read"
MISSING: Final = "chaos.report.convert.missing"
REQUIRED: Final = "chaos.report.convert.required"
MAX_INT_KEY_LEN: Final = 18  # digits of an integer key: below 2**63, as every int is


_UNSET: Final = object()


def meta(
    read: Reader | None = None, *, required: bool = False, missing: Any = _UNSET
) -> dict[str, Any]:
    """A field's metadata for this module: its own reader, whether its key is required,
    and the value it takes when its key is absent."""
    out: dict[str, Any] = {}
    if read is not None:
        out[READ] = read
    if required:
        out[REQUIRED] = True
    if missing is not _UNSET:
        out[MISSING] = missing
    return out


def to_json(value: Any) -> Any:
    """`value` (an instance of a record class) as plain JSON data."""
    cls: Any = type(value)
    return _writer(cls)(value)


def from_json(cls: type[T], data: Any, path: str = "") -> T:
    """An instance of the attrs class `cls` from parsed JSON; `RecordError` if invalid."""
    hint: Any = cls
    value: T = _object_reader(hint)(data, path)
    return value


def json_line(value: Any) -> str:
    """Plain data as one line of compact JSON (bytes as hex), ending in a newline."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------------------------------
# Reading: one reader per type hint, made once.


@functools.cache
def _object_reader(cls: Any) -> Reader:
    if not attrs.has(cls):
        raise TypeError(f"{cls.__name__} is not an attrs class")
    hints = typing.get_type_hints(cls, include_extras=True)
    plan: list[tuple[str, str, Reader, Any]] = []  # (key, argument, reader, if absent)
    for field in attrs.fields(cls):
        if not field.init:
            continue
        read = field.metadata.get(READ) or _reader(hints[field.name])
        if field.metadata.get(REQUIRED):
            absent: Any = _MUST
        elif MISSING in field.metadata:
            absent = field.metadata[MISSING]
        else:
            absent = _MUST if field.default is attrs.NOTHING else _DEFAULT
        plan.append((field.name, field.alias or field.name, read, absent))
    known = frozenset(key for key, _, _, _ in plan)

    def read_object(data: Any, path: str) -> Any:
        if not isinstance(data, dict):
            raise RecordError(path, f"must be an object, not {rd.kind_of(data)}")
        args = {}
        for key, argument, read, absent in plan:
            at = f"{path}.{key}" if path else key
            if key in data:
                args[argument] = read(data[key], at)
            elif absent is _MUST:
                raise RecordError(at, "is missing")
            elif absent is not _DEFAULT:
                args[argument] = absent
        if not known.issuperset(data):
            unknown = min((key for key in data if key not in known), key=str)
            at = f"{path}.{unknown}" if path else str(unknown)
            raise RecordError(at, "is not a field of this object")
        try:
            return cls(**args)
        except RecordError as e:
            raise e.within(path) from None

    return read_object


_MUST: Final = object()  # the key must be present
_DEFAULT: Final = object()  # absent, the field takes its attrs default

_SCALARS: Final[dict[Any, Reader]] = {
    int: rd.count,
    float: rd.number,
    bool: rd.boolean,
    str: rd.name,
}


def _reader(hint: Any, limit: int = rd.MAX_NAMES) -> Reader:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        extras = hint.__metadata__
        value = next((e for e in reversed(extras) if isinstance(e, rd.Value)), None)
        if value is not None:
            return value.read
        limit = next((e.items for e in extras if isinstance(e, rd.Limit)), limit)
        if rd.AS_OBJECT in extras:
            return _mapping_reader(hint.__origin__, limit)
        return _reader(hint.__origin__, limit)
    if hint in _SCALARS:
        return _SCALARS[hint]
    if hint is type(None):
        return _null
    if origin is typing.Union or origin is types.UnionType:
        others = [a for a in args if a is not type(None)]
        if len(others) != 1 or len(args) != 2:
            raise TypeError(f"no reader for {hint}: only `X | None` unions are read")
        return _optional(_reader(others[0], limit))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _list_reader(_reader(args[0]), limit)
        return _fixed_reader(tuple(_reader(a) for a in args))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return rd.choice(hint)
    if isinstance(hint, type) and attrs.has(hint):
        return _object_reader(hint)
    raise TypeError(f"no reader for {hint}")


def _null(value: Any, path: str) -> None:
    if value is not None:
        raise RecordError(path, f"must be null, not {rd.kind_of(value)}")


def _optional(read: Reader) -> Reader:
    def read_optional(value: Any, path: str) -> Any:
        return None if value is None else read(value, path)

    return read_optional


def _list_reader(read: Reader, limit: int) -> Reader:
    def read_list(value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise RecordError(path, f"must be a list, not {rd.kind_of(value)}")
        if len(value) > limit:
            raise RecordError(path, f"has {len(value)} items, over the limit of {limit}")
        return tuple(read(item, f"{path}[{i}]") for i, item in enumerate(value))

    return read_list


def _fixed_reader(reads: tuple[Reader, ...]) -> Reader:
    def read_fixed(value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise RecordError(path, f"must be a list, not {rd.kind_of(value)}")
        if len(value) != len(reads):
            raise RecordError(path, f"must have {len(reads)} items, not {len(value)}")
        items = enumerate(zip(reads, value, strict=True))
        return tuple(read(item, f"{path}[{i}]") for i, (read, item) in items)

    return read_fixed


def _mapping_reader(hint: Any, limit: int) -> Reader:
    """`tuple[tuple[K, V], ...]` from a JSON object: pairs sorted by key."""
    key_hint, value_hint = _pair_hints(hint)
    read_key = _int_key if key_hint is int else _reader(key_hint)
    read_value = _reader(value_hint)

    def read_mapping(value: Any, path: str) -> tuple[tuple[Any, Any], ...]:
        if not isinstance(value, dict):
            raise RecordError(path, f"must be an object, not {rd.kind_of(value)}")
        if len(value) > limit:
            raise RecordError(path, f"has {len(value)} fields, over the limit of {limit}")
        pairs = [
            (read_key(key, path), read_value(item, f"{path}.{key}"))
            for key, item in sorted(value.items(), key=lambda pair: str(pair[0]))
        ]
        return tuple(sorted(pairs, key=lambda pair: pair[0]))

    return read_mapping


def _pair_hints(hint: Any) -> tuple[Any, Any]:
    """(K, V) of `tuple[tuple[K, V], ...]`."""
    pair, _ = typing.get_args(hint)
    key, value = typing.get_args(pair)
    return key, value


def _int_key(key: Any, path: str) -> int:
    """An object key that stands for an integer: plain decimal digits, as `str(n)` writes."""
    text = rd.name(key, path)
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_INT_KEY_LEN):
        raise RecordError(f"{path}.{text}", "keys must be non-negative integers")
    if text != str(int(text)):
        raise RecordError(f"{path}.{text}", "keys must be written without leading zeros")
    return int(text)


# ---------------------------------------------------------------------------------------
# Writing: the same walk the other way.


def _same(value: Any) -> Any:
    return value


@functools.cache
def _writer(hint: Any) -> Writer:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        extras = hint.__metadata__
        value = next((e for e in reversed(extras) if isinstance(e, rd.Value)), None)
        if value is not None:
            return value.write or _same
        if rd.AS_OBJECT in extras:
            write_value = _writer(_pair_hints(args[0])[1])
            return lambda pairs: {str(k): write_value(v) for k, v in pairs}
        return _writer(args[0])
    if hint in _SCALARS or hint is type(None):
        return _same
    if origin is typing.Union or origin is types.UnionType:
        (other,) = [a for a in args if a is not type(None)]
        write = _writer(other)
        return lambda value: None if value is None else write(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _writer(args[0])
            return lambda values: [item(v) for v in values]
        items = tuple(_writer(a) for a in args)
        return lambda values: [w(v) for w, v in zip(items, values, strict=True)]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return lambda member: member.value
    if isinstance(hint, type) and attrs.has(hint):
        return _object_writer(hint)
    raise TypeError(f"no writer for {hint}")


def _object_writer(cls: type) -> Writer:
    hints = typing.get_type_hints(cls, include_extras=True)
    plan = [(f.name, _writer(hints[f.name])) for f in attrs.fields(cls) if f.init]

    def write_object(value: Any) -> dict[str, Any]:
        return {
            name: getattr(value, name) if write is _same else write(getattr(value, name))
            for name, write in plan
        }

    return write_object
