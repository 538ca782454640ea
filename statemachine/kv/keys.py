"""Keys and key ranges, with etcd's conventions for `range_end`.

- `range_end == b""`: the single key `key`;
- `range_end == b"\\0"`: every key >= `key` (so `key=b"\\0", range_end=b"\\0"` is all keys);
- otherwise the half-open interval `[key, range_end)`, empty when `range_end <= key`.
`prefix_end(p)` is the `range_end` that selects every key starting with `p`.
"""

from __future__ import annotations

from typing import Any

import attrs

from statemachine.codec import max_len
from statemachine.errors import InvalidArgument, LimitExceeded
from statemachine.kv.limits import MAX_KEY_BYTES

ALL_KEYS = b"\0"  # as a range_end: no upper bound


def prefix_end(prefix: bytes) -> bytes:
    """The range_end of all keys starting with `prefix`: the prefix with its last byte
    below 0xff incremented and the rest dropped; `b"\\0"` (no bound) when there is none."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return ALL_KEYS
    return stripped[:-1] + bytes([stripped[-1] + 1])


@attrs.frozen
class KeyRange:
    """The keys a (key, range_end) pair selects: `low <= k < high` (high None = no bound)."""

    low: bytes
    high: bytes | None
    single: bool

    @classmethod
    def of(cls, key: bytes, range_end: bytes) -> KeyRange:
        if not range_end:
            return cls(key, None, True)
        if range_end == ALL_KEYS:
            return cls(key, None, False)
        return cls(key, range_end, False)

    def __contains__(self, key: object) -> bool:
        if self.single:
            return key == self.low
        assert isinstance(key, bytes)
        return self.low <= key and (self.high is None or key < self.high)

    def overlaps(self, other: KeyRange) -> bool:
        if self.single:
            return self.low in other
        if other.single:
            return other.low in self
        below_other_end = other.high is None or self.low < other.high
        above_other_start = self.high is None or other.low < self.high
        return below_other_end and above_other_start


def check_key(instance: Any, attribute: attrs.Attribute[Any], value: bytes) -> None:
    """Validator for a key: not empty, at most MAX_KEY_BYTES."""
    if not value or len(value) > MAX_KEY_BYTES:
        field = f"{type(instance).__name__}.{attribute.name}"
        if not value:
            raise InvalidArgument(field, "key is empty")
        raise LimitExceeded(field, MAX_KEY_BYTES, len(value))


check_range_end = max_len(MAX_KEY_BYTES)  # validator for a range_end
