"""Writes: a list of ops applied atomically in one revision (a Put alone is a list of one).

`plan` checks the whole list against the current state and raises before anything
changes; `execute` then applies it, and cannot fail. `put_alone` is both for the most
common request, a lone `Put`: the same checks (`check_limits`, shared), the same change,
result and event, without the bookkeeping a list of ops needs. Ops run in order, so a `Range`
after a `Put` of the same txn sees the put (as in etcd). A txn may not put one key
twice, nor put a key that one of its deletes covers: either would make two changes
to one key in one revision.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from statemachine.errors import InvalidArgument, LimitExceeded
from statemachine.kv.commands import (
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    Put,
    Range,
    TxnOp,
)
from statemachine.kv.keys import KeyRange
from statemachine.kv.limits import KvConfig
from statemachine.kv.reads import ResponseBudget, check_readable, event_of, key_value, read_range
from statemachine.kv.results import DeleteRangeResult, EventKind, KvEvent, OpResult, PutResult
from statemachine.kv.store import Store, Version

_COMPARE: dict[CompareOp, Callable[[Any, Any], bool]] = {
    CompareOp.EQUAL: operator.eq,
    CompareOp.NOT_EQUAL: operator.ne,
    CompareOp.GREATER: operator.gt,
    CompareOp.LESS: operator.lt,
}


def holds(store: Store, compare: Compare) -> bool:
    """Whether `compare` holds against the current state (etcd's rules for missing keys)."""
    version = store.latest(compare.key)
    if compare.target == CompareTarget.VALUE:
        if version is None:
            return False  # a missing key has no value: every value compare is false
        actual: int | bytes = version.value or b""
    elif version is None:
        actual = 0
    elif compare.target == CompareTarget.VERSION:
        actual = version.version
    elif compare.target == CompareTarget.CREATE:
        actual = version.create_revision
    else:
        actual = version.mod_revision
    return _COMPARE[compare.op](actual, compare.operand)


@attrs.define
class Plan:
    """What a checked op list will do: the keys each delete removes, and the totals."""

    deletions: list[list[bytes]]  # per DeleteRange op, in order: the keys it deletes
    changes: int  # keys changed: the revision moves on when > 0
    prev_bytes: int  # bytes of the prev_kv answers the writes will carry


def plan(store: Store, ops: Sequence[TxnOp], config: KvConfig) -> Plan:
    """Check `ops` whole against the current state; raise before anything changes."""
    puts: dict[bytes, Put] = {}
    deletes: list[tuple[KeyRange, DeleteRange]] = []
    for op in ops:
        if isinstance(op, Put):
            if op.key in puts:
                raise InvalidArgument("Txn", f"duplicate key given in txn request: {op.key!r}")
            puts[op.key] = op
        elif isinstance(op, DeleteRange):
            deletes.append((KeyRange.of(op.key, op.range_end), op))
        else:
            assert isinstance(op, Range)
            check_readable(store, op.revision)
    deletions, deleted, prev_bytes = _deletions(store, deletes, puts)
    prev_bytes += sum(_pair_bytes(store, key) for key, put in puts.items() if put.prev_kv)
    result = Plan(deletions, len(puts) + len(deleted), prev_bytes)
    if puts:
        history = store.history
        new_keys = sum(1 for key in puts if key not in history)
        added = sum(len(k) + len(p.value) for k, p in puts.items()) + sum(map(len, deleted))
        check_limits(store, config, result.changes, prev_bytes, new_keys, added)
    else:  # deletes are always allowed, so a full store can be emptied
        check_limits(store, config, result.changes, prev_bytes)
    return result


def _deletions(
    store: Store, deletes: list[tuple[KeyRange, DeleteRange]], puts: dict[bytes, Put]
) -> tuple[list[list[bytes]], set[bytes], int]:
    deletions: list[list[bytes]] = []
    deleted: set[bytes] = set()
    prev_bytes = 0
    for keys, op in deletes:
        for key in puts:
            if key in keys:
                raise InvalidArgument("Txn", f"key {key!r} is both put and deleted in one txn")
        mine = [key for key, _ in store.live(keys) if key not in deleted]
        deleted.update(mine)
        deletions.append(mine)
        if op.prev_kv:
            prev_bytes += sum(_pair_bytes(store, key) for key in mine)
    return deletions, deleted, prev_bytes


def _pair_bytes(store: Store, key: bytes) -> int:
    """Bytes of the key's current pair (0 if it does not exist)."""
    found = store.latest(key)
    return len(key) + len(found.value or b"") if found is not None else 0


def check_limits(
    store: Store,
    config: KvConfig,
    changes: int,
    prev_bytes: int,
    new_keys: int | None = None,
    added_bytes: int = 0,
) -> None:
    """Raise if a write changing `changes` keys, answering `prev_bytes` of prev_kv pairs,
    would break a limit; with puts, also if its `new_keys` keys and `added_bytes` (keys
    and values put, keys deleted) would (`new_keys` None: no puts, nothing more to check)."""
    if changes > config.max_changes_per_revision:
        raise LimitExceeded(
            "keys changed in one revision", config.max_changes_per_revision, changes, "keys"
        )
    if prev_bytes > config.max_response_bytes:
        raise LimitExceeded("prev_kv answers", config.max_response_bytes, prev_bytes)
    if new_keys is None:
        return
    keys = len(store.index) + new_keys
    if keys > config.max_keys:
        raise LimitExceeded("keys in the store", config.max_keys, keys, "keys")
    size = store.stored_bytes + added_bytes
    if size > config.max_store_bytes:
        raise LimitExceeded("store size", config.max_store_bytes, size)


def put_alone(store: Store, put: Put, config: KvConfig) -> tuple[PutResult, KvEvent]:
    """What `plan` then `execute` do with the list `[put]`: check it (raising before
    anything changes), write it at the next revision; its result and its event."""
    key = put.key
    versions = store.history.get(key)
    live: Version | None = None  # the key's current version (None: it does not exist)
    if versions is not None and versions[-1].value is not None:
        live = versions[-1]
    prev_bytes = len(key) + len(live.value or b"") if put.prev_kv and live is not None else 0
    new_keys = 1 if versions is None else 0
    check_limits(store, config, 1, prev_bytes, new_keys, len(key) + len(put.value))
    revision = store.revision + 1
    mark = len(store.log)
    store.put(key, put.value, revision)
    store.commit(revision, mark)
    written = store.history[key][-1]
    prev_kv = key_value(key, live) if live is not None else None
    event = KvEvent(EventKind.PUT, key_value(key, written), prev_kv)
    return PutResult(revision, prev_kv if put.prev_kv else None), event


def execute(
    store: Store, ops: Sequence[TxnOp], checked: Plan, config: KvConfig
) -> tuple[list[OpResult], list[KvEvent]]:
    """Apply checked `ops` in order at the next revision; return results and events."""
    revision = store.revision + 1 if checked.changes else store.revision
    budget = ResponseBudget(config.max_response_bytes - checked.prev_bytes)
    budget.empty = checked.prev_bytes == 0
    mark = len(store.log)
    deletions = iter(checked.deletions)
    results: list[OpResult] = []
    for op in ops:
        if isinstance(op, Put):
            prev = store.put(op.key, op.value, revision)
            prev_kv = key_value(op.key, prev) if op.prev_kv and prev is not None else None
            results.append(PutResult(revision, prev_kv))
        elif isinstance(op, DeleteRange):
            keys = next(deletions)
            gone = [key_value(k, store.delete(k, revision)) for k in keys]
            results.append(
                DeleteRangeResult(revision, len(keys), tuple(gone) if op.prev_kv else ())
            )
        else:
            assert isinstance(op, Range)
            results.append(read_range(store, op, config, budget, revision))
    if not checked.changes:
        return results, []
    store.commit(revision, mark)
    events = [event_of(store, key, revision) for key in store.log.keys[mark:]]
    return results, events
