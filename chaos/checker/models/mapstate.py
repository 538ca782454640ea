"""A map as a hashable state: the sorted (key, value) pairs that differ from a default.

Models over many keys (kv, multi-register) keep their state this way so that a partition
touching one key carries a state of at most one pair, and equal maps are equal states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MapState = tuple[tuple[Any, Any], ...]

EMPTY: MapState = ()


def _order(pair: tuple[Any, Any]) -> tuple[str, Any]:
    return (type(pair[0]).__name__, pair[0])


def map_get(state: MapState, key: Any, default: Any) -> Any:
    for k, v in state:
        if k == key and type(k) is type(key):
            return v
    return default


def map_set(state: MapState, key: Any, value: Any, default: Any) -> MapState:
    kept = [(k, v) for k, v in state if not (k == key and type(k) is type(key))]
    if value != default or type(value) is not type(default):
        kept.append((key, value))
        kept.sort(key=_order)
    return tuple(kept)


def map_from(pairs: dict[Any, Any], default_of: Callable[[Any], Any]) -> MapState:
    return tuple(sorted(((k, v) for k, v in pairs.items() if v != default_of(k)), key=_order))
