"""Hypothesis strategies for a part's messages, built from their attrs field types.

`messages(cls, **fields)` draws instances of one message class: each field from a
strategy for its declared type (int, bool, float, str, bytes, an IntEnum, a nested
message, `X | None`, `tuple[X, ...]`), unless `fields` gives one for it by name. Values a
field's validator refuses are rejected (Hypothesis draws again), so validated ranges need
no repeating here; give a strategy by name where the useful values are few (the same few
account names, so that transfers meet open accounts). `commands(spec, **fields)` and
`queries(spec, **fields)` draw any of a part's command or query classes.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, cast

import attrs
from hypothesis import strategies as st

from statemachine.codec import Message
from statemachine.errors import ClusterError
from statemachine.part import PartSpec

# Drawn collections stay small: a message's tuples are bounded by their validators, and
# small examples shrink and read better.
MAX_ITEMS = 4
MAX_TEXT_CHARS = 12
MAX_BYTES = 12


def messages(cls: type[Message], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    """Instances of `cls`; `fields` gives a strategy for any field by name."""
    unknown = set(fields) - {f.name for f in _fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    drawn = {
        f.name: fields[f.name] if f.name in fields else for_type(hints[f.name], f.name)
        for f in _fields(cls)
    }
    built = st.fixed_dictionaries(drawn).map(lambda values: _build(cls, values))
    return built.filter(lambda message: message is not None).map(lambda m: cast(Message, m))


def commands(spec: PartSpec, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    """Any command of the part `spec`; `fields` by name, for every class that has it."""
    return _any_of(spec.commands, fields)


def queries(spec: PartSpec, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    """Any query of the part `spec` (same `fields` rule as `commands`)."""
    return _any_of(spec.queries, fields)


def _any_of(
    classes: tuple[type[Message], ...], fields: Mapping[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Message]:
    if not classes:
        raise TypeError("the part has no such message classes")
    return st.one_of(
        [messages(cls, **{k: v for k, v in fields.items() if k in _names(cls)}) for cls in classes]
    )


def _fields(cls: type[Message]) -> tuple[attrs.Attribute[Any], ...]:
    return tuple(attrs.fields(cast(Any, cls)))


def _names(cls: type[Message]) -> set[str]:
    return {f.name for f in _fields(cls)}


def _build(cls: type[Message], values: dict[str, Any]) -> Message | None:
    try:
        return cls(**values)
    except (ClusterError, ValueError, TypeError):  # refused by a validator: draw again
        return None


def for_type(tp: Any, name: str = "<value>") -> st.SearchStrategy[Any]:
    """A strategy for a message field declared as `tp` (TypeError for a type no message
    field may have: see docs/statemachine.md)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return st.one_of([for_type(arg, name) for arg in typing.get_args(tp)])
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(for_type(args[0], name), max_size=MAX_ITEMS).map(tuple)
        return st.tuples(*(for_type(arg, name) for arg in args))
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        return st.sampled_from(tp)
    if tp is int:
        return st.integers(-(2**63), 2**64 - 1)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is str:
        return st.text(max_size=MAX_TEXT_CHARS)
    if tp is bytes:
        return st.binary(max_size=MAX_BYTES)
    if isinstance(tp, type) and issubclass(tp, Message):
        if tp is Message:
            raise TypeError(f"{name}: a field of any Message needs a strategy given by name")
        return st.deferred(lambda: messages(tp))
    raise TypeError(f"{name}: no strategy for the type {tp!r}; give one by name")
