"""The run record's value types and their readers.

Each reader takes (value, path), checks the value's type and bounds, and returns it
(frozen, for JSON values) or raises `RecordError(path, reason)`. The types the record's
classes are written in (`Millis`, `Text`, `Signed`, `JsonValue`, `NodeIds`, `Pairs`...)
carry their reader, or their limit, as `Annotated` metadata (`Value`, `Limit`,
`AS_OBJECT`), which `chaos.report.convert` follows; to a type checker they are the plain
types they annotate.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Final, TypeVar

import attrs

from chaos.checker.values import Frozen, JsonBool, JsonObject, freeze, thaw
from chaos.report.errors import RecordError

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
K = TypeVar("K")
V = TypeVar("V")

# Bounds on a record, so that a bad file cannot exhaust memory (a history is bounded
# the same way, by chaos.checker.HistoryLimits).
MAX_NODES: Final = 256
MAX_OPERATIONS: Final = 200_000
MAX_INTERVALS: Final = 200_000
MAX_FAULTS: Final = 100_000
MAX_VIOLATIONS: Final = 10_000
MAX_NAMES: Final = 1_000  # nemeses, counts, wall fields, checkers, notes, ids in a list
MAX_NAME_LEN: Final = 200  # a name: node kind, counter, nemesis, workload, model
MAX_TEXT_LEN: Final = 64 * 1024  # free text: details, messages, notes, the replay command
MAX_VALUE_DEPTH: Final = 32  # nesting of a JSON value (an operation's input or output)
MAX_INT: Final = (1 << 63) - 1  # ids, seeds and counts are int64, as on the wire


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if type(value) in names:
        return names[type(value)]
    if isinstance(value, list | tuple) and not isinstance(value, JsonObject):
        return "a list"
    return "an object" if isinstance(value, dict | JsonObject) else type(value).__name__


def integer(lo: int = 0, hi: int = MAX_INT) -> Callable[[Any, str], int]:
    def read(value: Any, path: str) -> int:
        if type(value) is not int:
            raise RecordError(path, f"must be an integer, not {kind_of(value)}")
        if not lo <= value <= hi:
            raise RecordError(path, f"must be between {lo} and {hi}, not {value}")
        return value

    return read


count = integer()
signed = integer(-MAX_INT - 1)


def number(value: Any, path: str) -> float:
    if type(value) not in (int, float):
        raise RecordError(path, f"must be a number, not {kind_of(value)}")
    if not math.isfinite(value):
        raise RecordError(path, f"must be a finite number, not {value}")
    return value  # type: ignore[no-any-return]


def millis(value: Any, path: str) -> Millis:
    if type(value) not in (int, float):
        raise RecordError(path, f"must be a number of milliseconds, not {kind_of(value)}")
    if not math.isfinite(value) or value < 0:
        raise RecordError(path, f"must be a finite, non-negative number, not {value}")
    return value  # type: ignore[no-any-return]


def string(max_len: int = MAX_NAME_LEN, empty: bool = False) -> Callable[[Any, str], str]:
    def read(value: Any, path: str) -> str:
        if type(value) is not str:
            raise RecordError(path, f"must be a string, not {kind_of(value)}")
        if len(value) > max_len:
            raise RecordError(path, f"is {len(value)} characters, over the limit of {max_len}")
        if not value and not empty:
            raise RecordError(path, "must not be empty")
        return value

    return read


name = string()
text = string(MAX_TEXT_LEN, empty=True)


def boolean(value: Any, path: str) -> bool:
    if type(value) is not bool:
        raise RecordError(path, f"must be true or false, not {kind_of(value)}")
    return value


def choice(cls: type[E]) -> Callable[[Any, str], E]:
    choices = ", ".join(m.value for m in cls)

    def read(value: Any, path: str) -> E:
        for member in cls:
            if member.value == value and type(value) is str:
                return member
        raise RecordError(path, f"must be one of {choices}, not {value!r}")

    return read


def json_value(value: Any, path: str, depth: int = 0) -> Frozen:
    """Any JSON value (finite numbers only), plain or already frozen, frozen
    (chaos.checker.values: lists become tuples, objects sorted pairs)."""
    _check_json(value, path, depth)
    return freeze(value)


def _check_json(value: Any, path: str, depth: int) -> None:
    if depth > MAX_VALUE_DEPTH:
        raise RecordError(path, f"nested deeper than the limit of {MAX_VALUE_DEPTH}")
    kind = type(value)
    if kind is float and not math.isfinite(value):
        raise RecordError(path, f"must be a finite number, not {value}")
    if kind is str and len(value) > MAX_TEXT_LEN:
        raise RecordError(path, f"is {len(value)} characters, over the limit of {MAX_TEXT_LEN}")
    if kind is dict or kind is JsonObject:
        pairs = value.items() if kind is dict else value
        for key, item in pairs:
            if type(key) is not str:
                raise RecordError(path, f"object keys must be strings, not {kind_of(key)}")
            _check_json(item, f"{path}.{key}", depth + 1)
    elif kind is list or kind is tuple:
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", depth + 1)
    elif value is not None and kind not in (bool, int, float, str, JsonBool):
        raise RecordError(path, f"must be a JSON value, not {kind.__name__}")


def frozen_json(value: Any) -> Frozen:
    """Converter for the JSON-valued fields of classes built in Python."""
    return json_value(value, "")


def scalar(value: Any, path: str) -> Scalar:
    if value is not None and type(value) not in (str, int, float, bool):
        raise RecordError(path, f"must be a string, number, boolean or null, not {kind_of(value)}")
    if type(value) is float and not math.isfinite(value):
        raise RecordError(path, f"must be a finite number, not {value}")
    if type(value) is str and len(value) > MAX_TEXT_LEN:
        raise RecordError(path, f"is {len(value)} characters, over the limit of {MAX_TEXT_LEN}")
    return value  # type: ignore[no-any-return]


def sorted_pairs(
    items: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
) -> tuple[tuple[Any, Any], ...]:
    """A mapping (or pairs) as pairs sorted by key: hashable, and in one order only."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


def int_tuple(nodes: Iterable[int]) -> tuple[int, ...]:
    return tuple(nodes)


def require(ok: bool, path: str, reason: str) -> None:
    if not ok:
        raise RecordError(path, reason)


def check_times(obj: Any, *fields: str) -> None:
    """The class's time fields (None allowed) are finite, non-negative numbers."""
    for field in fields:
        value = getattr(obj, field)
        if value is not None:
            millis(value, field)


# ---------------------------------------------------------------------------------------
# The types, with what `chaos.report.convert` needs to know of them.


@attrs.frozen
class Value:
    """`Annotated` metadata: a value of this type is read by `read` (value, path) and
    written by `write` (None: as it is)."""

    read: Callable[[Any, str], Any]
    write: Callable[[Any], Any] | None = None


@attrs.frozen
class Limit:
    """`Annotated` metadata: a list (or object) of this type holds at most `items`."""

    items: int


class _AsObject:
    def __repr__(self) -> str:
        return "AS_OBJECT"


AS_OBJECT: Final = _AsObject()
"""`Annotated` metadata: these sorted pairs are a mapping, a JSON object."""

# A mapping kept as (key, value) pairs sorted by key (hashable, one order only), written
# as a JSON object; keys are names (`str`) or non-negative integers (`int`).
Pairs = Annotated[tuple[tuple[K, V], ...], AS_OBJECT]
Millis = Annotated[int | float, Value(millis)]  # a time or duration on the run's clock
Signed = Annotated[int, Value(signed)]  # an int64 that may be negative (seeds, processes)
Text = Annotated[str, Value(text)]  # free text, possibly empty (a bare `str` is a name)
Scalar = Annotated[str | int | float | bool | None, Value(scalar)]  # a JSON scalar
JsonValue = Annotated[Frozen, Value(json_value, thaw)]  # any JSON value, kept frozen
NodeIds = Annotated[tuple[int, ...], Limit(MAX_NODES)]
OpIds = Annotated[tuple[int, ...], Limit(MAX_OPERATIONS)]  # operation indexes
