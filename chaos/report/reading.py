"""Reading JSON for the run record: each reader takes (value, path), checks the value's
type and bounds, and returns it (frozen, for JSON values) or raises `RecordError(path,
reason)`. `Fields` reads one object's fields and refuses unknown ones.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

from chaos.checker.values import Frozen, JsonBool, JsonObject, freeze
from chaos.report.errors import RecordError

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
Millis = int | float  # a time or duration on the run's clock
Scalar = str | int | float | bool | None  # a JSON scalar (the values of `run.wall`)

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


def optional(read: Callable[[Any, str], T]) -> Callable[[Any, str], T | None]:
    def read_optional(value: Any, path: str) -> T | None:
        return None if value is None else read(value, path)

    return read_optional


def list_of(
    read: Callable[[Any, str], T], limit: int = MAX_NAMES
) -> Callable[[Any, str], tuple[T, ...]]:
    def read_list(value: Any, path: str) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise RecordError(path, f"must be a list, not {kind_of(value)}")
        if len(value) > limit:
            raise RecordError(path, f"has {len(value)} items, over the limit of {limit}")
        return tuple(read(item, f"{path}[{i}]") for i, item in enumerate(value))

    return read_list


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
    return value  # type: ignore[no-any-return]


def mapping(read: Callable[[Any, str], T]) -> Callable[[Any, str], tuple[tuple[str, T], ...]]:
    def read_dict(value: Any, path: str) -> tuple[tuple[str, T], ...]:
        if not isinstance(value, dict):
            raise RecordError(path, f"must be an object, not {kind_of(value)}")
        if len(value) > MAX_NAMES:
            raise RecordError(path, f"has {len(value)} fields, over the limit of {MAX_NAMES}")
        return tuple(
            (name(key, path), read(item, f"{path}.{key}")) for key, item in sorted(value.items())
        )

    return read_dict


_REQUIRED: Final = object()


class Fields:
    """The fields of one JSON object: each read once; unknown ones are an error."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise RecordError(path, f"must be an object, not {kind_of(data)}")
        self.data = data
        self.path = path
        self.seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, read: Callable[[Any, str], T], default: Any = _REQUIRED) -> T:
        self.seen.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise RecordError(self.at(key), "is missing")
            return default  # type: ignore[no-any-return]
        return read(self.data[key], self.at(key))

    def build(self, cls: Callable[..., T], **fields: Any) -> T:
        """`cls(**fields)` once every field is read; its own checks are located here."""
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise RecordError(self.at(str(unknown[0])), "is not a field of this object")
        try:
            return cls(**fields)
        except RecordError as e:
            raise e.within(self.path) from None


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


node_id = integer()
node_ids = list_of(node_id, MAX_NODES)
