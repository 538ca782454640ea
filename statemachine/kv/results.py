"""Results and events of the configuration database (tags 140-169)."""

from __future__ import annotations

import enum

import attrs

from statemachine.codec import Message, max_len, non_negative, tagged
from statemachine.kv.keys import check_key
from statemachine.kv.limits import MAX_VALUE_BYTES


@tagged(140)
@attrs.frozen
class KeyValue(Message):
    """A key's state at some revision.

    `create_revision` is the revision that created the key (since it last did not
    exist), `mod_revision` the one that last wrote it, `version` the number of puts
    since it was created (1 after the first). In a DELETE event, `mod_revision` is the
    deleting revision and the other fields are 0. `value` is empty when keys_only.
    """

    key: bytes = attrs.field(validator=check_key)
    create_revision: int = attrs.field(validator=non_negative)
    mod_revision: int = attrs.field(validator=non_negative)
    version: int = attrs.field(validator=non_negative)
    value: bytes = attrs.field(default=b"", validator=max_len(MAX_VALUE_BYTES))


class OpResult(Message):
    """The result of one `TxnOp`; each carries the store's revision after the request."""

    __slots__ = ()
    revision: int  # declared for type checkers; each subclass defines the field


@tagged(141)
@attrs.frozen
class PutResult(OpResult):
    revision: int  # the store's revision after the command
    prev_kv: KeyValue | None = None  # the pair replaced, when asked for and it existed


@tagged(142)
@attrs.frozen
class DeleteRangeResult(OpResult):
    revision: int
    deleted: int  # how many keys were deleted
    prev_kvs: tuple[KeyValue, ...] = ()  # the pairs deleted, when asked for


@tagged(143)
@attrs.frozen
class RangeResult(OpResult):
    revision: int  # the store's current revision (not the one read at)
    kvs: tuple[KeyValue, ...]  # ascending by key
    more: bool  # pairs in range were left out (by limit, or by the response caps)
    count: int  # how many keys are in range at the revision read


@tagged(144)
@attrs.frozen
class TxnResult(Message):
    revision: int
    succeeded: bool  # whether every compare held (success ops ran) or not (failure ops ran)
    responses: tuple[OpResult, ...]  # one per op of the branch that ran, in order


@tagged(145)
@attrs.frozen
class CompactResult(Message):
    revision: int
    compact_revision: int  # reads and changes before this revision now give Compacted


class EventKind(enum.IntEnum):
    PUT = 0
    DELETE = 1


@tagged(146)
@attrs.frozen
class KvEvent(Message):
    """One key changed at `kv.mod_revision`. Events of one revision come in key order."""

    kind: EventKind
    kv: KeyValue
    prev_kv: KeyValue | None = None  # the pair before the change, if it existed (and asked)


@tagged(147)
@attrs.frozen
class ChangesResult(Message):
    """Changes in [start, next_revision); ask again from (next_revision, next_skip)."""

    revision: int  # the store's current revision
    compact_revision: int
    events: tuple[KvEvent, ...]
    next_revision: int
    next_skip: int = 0  # log entries of next_revision already examined
