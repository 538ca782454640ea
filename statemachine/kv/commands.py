"""Commands and queries of the configuration database (tags 100-139).

The shape is etcd's v3 KV API: `Put`, `DeleteRange`, `Range`, `Txn` of `Compare`s and
ops, `Compact`, and `Changes` (the history a watch reads). Limits on keys, values and
transaction sizes are checked when a message is built or decoded.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from statemachine.codec import Message, max_len, non_negative, positive, tagged
from statemachine.errors import InvalidArgument
from statemachine.kv.keys import ALL_KEYS, check_key, check_range_end, prefix_end
from statemachine.kv.limits import MAX_TXN_OPS, MAX_VALUE_BYTES

_check_value = max_len(MAX_VALUE_BYTES)


class TxnOp(Message):
    """An operation a `Txn` may run: `Put`, `DeleteRange` or `Range`."""

    __slots__ = ()


@tagged(100)
@attrs.frozen
class Put(TxnOp):
    """Set `key` to `value`. With `prev_kv`, the result carries the pair it replaced."""

    key: bytes = attrs.field(validator=check_key)
    value: bytes = attrs.field(validator=_check_value)
    prev_kv: bool = False


@tagged(101)
@attrs.frozen
class DeleteRange(TxnOp):
    """Delete `key`, or the keys of [key, range_end) (see `statemachine.kv.keys`)."""

    key: bytes = attrs.field(validator=check_key)
    range_end: bytes = attrs.field(default=b"", validator=check_range_end)
    prev_kv: bool = False

    @classmethod
    def prefix(cls, prefix: bytes, prev_kv: bool = False) -> DeleteRange:
        """Delete every key that starts with `prefix`."""
        return cls(prefix, prefix_end(prefix), prev_kv)


@tagged(102)
@attrs.frozen
class Range(TxnOp):
    """Read `key` or [key, range_end) at `revision` (0: the current one).

    `limit` (0: none) caps the pairs returned; `count` still counts every key in range.
    `count_only` returns no pairs, `keys_only` returns pairs without values.
    """

    key: bytes = attrs.field(validator=check_key)
    range_end: bytes = attrs.field(default=b"", validator=check_range_end)
    revision: int = attrs.field(default=0, validator=non_negative)
    limit: int = attrs.field(default=0, validator=non_negative)
    count_only: bool = False
    keys_only: bool = False

    @classmethod
    def prefix(cls, prefix: bytes, **options: Any) -> Range:
        """Read every key that starts with `prefix`."""
        return cls(prefix, prefix_end(prefix), **options)

    @classmethod
    def all(cls, **options: Any) -> Range:
        """Read every key."""
        return cls(ALL_KEYS, ALL_KEYS, **options)


class CompareTarget(enum.IntEnum):
    """What a `Compare` looks at (etcd's numbering)."""

    VERSION = 0
    CREATE = 1  # create_revision
    MOD = 2  # mod_revision
    VALUE = 3


class CompareOp(enum.IntEnum):
    """How a `Compare` compares (etcd's numbering)."""

    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


def _check_operand(instance: Compare, attribute: attrs.Attribute[Any], value: int | bytes) -> None:
    field = f"Compare.{attribute.name}"
    if instance.target == CompareTarget.VALUE:
        if type(value) is not bytes:
            raise InvalidArgument(field, "a VALUE compare takes bytes")
        _check_value(instance, attribute, value)
    elif type(value) is not int or value < 0:
        name = CompareTarget(instance.target).name
        raise InvalidArgument(field, f"a {name} compare takes an int >= 0")


@tagged(103)
@attrs.frozen
class Compare(Message):
    """A condition of a `Txn` on one key's current state.

    A missing key has version, create and mod revision 0; any VALUE compare on a
    missing key is false (etcd's rule: there is no value to compare).
    """

    key: bytes = attrs.field(validator=check_key)
    target: CompareTarget = attrs.field(validator=attrs.validators.in_(tuple(CompareTarget)))
    op: CompareOp = attrs.field(validator=attrs.validators.in_(tuple(CompareOp)))
    operand: int | bytes = attrs.field(validator=_check_operand)

    @classmethod
    def value(cls, key: bytes, op: CompareOp, value: bytes) -> Compare:
        return cls(key, CompareTarget.VALUE, op, value)

    @classmethod
    def version(cls, key: bytes, op: CompareOp, version: int) -> Compare:
        return cls(key, CompareTarget.VERSION, op, version)

    @classmethod
    def create_revision(cls, key: bytes, op: CompareOp, revision: int) -> Compare:
        return cls(key, CompareTarget.CREATE, op, revision)

    @classmethod
    def mod_revision(cls, key: bytes, op: CompareOp, revision: int) -> Compare:
        return cls(key, CompareTarget.MOD, op, revision)


@tagged(104)
@attrs.frozen
class Txn(Message):
    """If every compare holds, run `success`, else `failure`: atomically, in one revision."""

    compares: tuple[Compare, ...] = attrs.field(
        default=(), validator=max_len(MAX_TXN_OPS, "compares")
    )
    success: tuple[TxnOp, ...] = attrs.field(default=(), validator=max_len(MAX_TXN_OPS, "ops"))
    failure: tuple[TxnOp, ...] = attrs.field(default=(), validator=max_len(MAX_TXN_OPS, "ops"))


@tagged(105)
@attrs.frozen
class Compact(Message):
    """Forget history before `revision`: reads and changes below it give `Compacted`."""

    revision: int = attrs.field(validator=positive)


@tagged(106)
@attrs.frozen
class Changes(Message):
    """The changes to `key` or [key, range_end) from `start_revision` on (0: from now).

    Resume with the result's `next_revision` and `next_skip` (how many log entries of
    `next_revision` were already examined); `limit` (0: the store's cap) bounds the
    events returned. With `prev_kv` each event carries the pair it replaced.
    """

    key: bytes = attrs.field(validator=check_key)
    range_end: bytes = attrs.field(default=b"", validator=check_range_end)
    start_revision: int = attrs.field(default=0, validator=non_negative)
    limit: int = attrs.field(default=0, validator=non_negative)
    prev_kv: bool = False
    skip: int = attrs.field(default=0, validator=non_negative)

    @classmethod
    def prefix(cls, prefix: bytes, **options: Any) -> Changes:
        return cls(prefix, prefix_end(prefix), **options)
