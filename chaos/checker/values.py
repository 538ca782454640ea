"""JSON values made hashable, so that they can be compared, hashed and kept in states.

Lists become tuples, objects `JsonObject` (sorted pairs, never equal to a list), and
booleans the `JSON_TRUE`/`JSON_FALSE` singletons, so that `true` never equals `1` as
Python's `True` does. Numbers compare by value (`1` equals `1.0`). `thaw` gives plain JSON
values back.
"""

from __future__ import annotations

from typing import Any, Final

Frozen = Any  # a frozen JSON value: None, int, float, str, JsonBool, tuple, JsonObject


class JsonBool:
    """A JSON boolean that, unlike Python's, is not equal to 0 or 1."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "true" if self.value else "false"

    def __bool__(self) -> bool:
        return self.value


JSON_TRUE: Final = JsonBool(True)
JSON_FALSE: Final = JsonBool(False)


class JsonObject(tuple[tuple[str, Frozen], ...]):
    """A frozen JSON object: its (key, value) pairs sorted by key. Never equal to a list."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is JsonObject and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(("JsonObject", tuple(self)))


def freeze(value: Any) -> Frozen:
    """The hashable equivalent of a parsed JSON value."""
    kind = type(value)
    if kind is int or kind is str or value is None or kind is float:
        return value
    if kind is bool:
        return JSON_TRUE if value else JSON_FALSE
    if kind is list or kind is tuple:
        return tuple(freeze(v) for v in value)
    if kind is dict:
        return JsonObject(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, JsonBool | JsonObject):
        return value
    raise TypeError(f"not a JSON value: {kind.__name__}")


def thaw(value: Frozen) -> Any:
    """The plain JSON value (lists, dicts, bools) of a frozen one."""
    if isinstance(value, JsonBool):
        return value.value
    if isinstance(value, JsonObject):
        return {k: thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
