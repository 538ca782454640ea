"""Reads: ranges at a revision, and the change history a watch follows."""

from __future__ import annotations

from statemachine.errors import Compacted, FutureRevision
from statemachine.kv.commands import Changes, Range
from statemachine.kv.keys import KeyRange
from statemachine.kv.limits import KvConfig
from statemachine.kv.results import ChangesResult, EventKind, KeyValue, KvEvent, RangeResult
from statemachine.kv.store import Store, Version


class ResponseBudget:
    """Bytes of keys and values one response may still carry.

    The first pair of a response always fits, so every read makes progress; after
    that a pair fits only within `max_bytes`.
    """

    __slots__ = ("left", "empty")

    def __init__(self, max_bytes: int) -> None:
        self.left = max_bytes
        self.empty = True

    def take(self, size: int) -> bool:
        if size > self.left and not self.empty:
            return False
        self.left -= size
        self.empty = False
        return True


def key_value(key: bytes, version: Version, keys_only: bool = False) -> KeyValue:
    assert version.value is not None
    value = b"" if keys_only else version.value
    return KeyValue(key, version.create_revision, version.mod_revision, version.version, value)


def check_readable(store: Store, revision: int) -> None:
    """Raise unless `revision` (0: current) can be read."""
    if revision == 0:
        return
    if revision < store.compact_revision:
        raise Compacted(
            f"revision {revision} is compacted; the oldest readable is {store.compact_revision}",
            detail=store.compact_revision,
        )
    if revision > store.revision:
        raise FutureRevision(
            f"revision {revision} is newer than the current revision {store.revision}",
            detail=store.revision,
        )


def read_range(
    store: Store, request: Range, config: KvConfig, budget: ResponseBudget, header: int
) -> RangeResult:
    """The keys of `request` at its revision (0: newest, seeing a txn's earlier writes).

    Pairs are a prefix of the keys in range, cut by `limit`, `max_range_kvs` and the
    budget; `count` always counts every existing key in range.
    """
    check_readable(store, request.revision)
    if not request.range_end:  # one key (the most common read): no range to walk
        return read_key(store, request, budget, header)
    cap = min(request.limit, config.max_range_kvs) if request.limit else config.max_range_kvs
    kvs: list[KeyValue] = []
    count = 0
    full = request.count_only
    for key, version in store.live(KeyRange.of(request.key, request.range_end), request.revision):
        count += 1
        if full:
            continue
        size = len(key) + (0 if request.keys_only else len(version.value or b""))
        if len(kvs) < cap and budget.take(size):
            kvs.append(key_value(key, version, request.keys_only))
        else:
            full = True
    more = len(kvs) < count and not request.count_only
    return RangeResult(header, tuple(kvs), more, count)


def read_key(store: Store, request: Range, budget: ResponseBudget, header: int) -> RangeResult:
    """`read_range` of a single key (`request.range_end` empty, its revision checked
    readable): the same answer (every cap is at least one pair)."""
    key = request.key
    found = store.latest(key) if request.revision == 0 else store.at(key, request.revision)
    if found is None:
        return RangeResult(header, (), False, 0)
    if request.count_only:
        return RangeResult(header, (), False, 1)
    size = len(key) + (0 if request.keys_only else len(found.value or b""))
    if not budget.take(size):
        return RangeResult(header, (), True, 1)
    return RangeResult(header, (key_value(key, found, request.keys_only),), False, 1)


def event_of(store: Store, key: bytes, revision: int, with_prev: bool = True) -> KvEvent:
    """The event of `key`'s change at `revision` (which must be retained)."""
    version, prev = store.change_at(key, revision)
    prev_kv = key_value(key, prev) if with_prev and prev is not None else None
    if version.value is None:
        return KvEvent(EventKind.DELETE, KeyValue(key, 0, revision, 0), prev_kv)
    return KvEvent(EventKind.PUT, key_value(key, version), prev_kv)


def _event_bytes(event: KvEvent) -> int:
    size = len(event.kv.key) + len(event.kv.value)
    if event.prev_kv is not None:
        size += len(event.prev_kv.key) + len(event.prev_kv.value)
    return size


def read_changes(store: Store, request: Changes, config: KvConfig) -> ChangesResult:
    """Matching changes from the cursor (start_revision, skip) on, in log order.

    The log holds every change from the compact revision on, ordered by (revision, key);
    `skip` counts the log entries of `start_revision` already examined, matching or not,
    so resuming never examines an entry twice. A response stops at `limit` events, at
    the byte budget, or after `max_changes_scan` entries, and says where to resume.
    """
    if request.start_revision == 0:  # from now on: nothing yet
        return ChangesResult(store.revision, store.compact_revision, (), store.revision + 1)
    start = request.start_revision
    if start < store.compact_revision:
        check_readable(store, start)
    log = store.log
    position = log.first_at(start)
    if request.skip:
        position = min(position + request.skip, log.first_at(start + 1))
    keys = KeyRange.of(request.key, request.range_end)
    cap = min(request.limit, config.max_range_kvs) if request.limit else config.max_range_kvs
    budget = ResponseBudget(config.max_response_bytes)
    events: list[KvEvent] = []
    end = min(len(log), position + config.max_changes_scan)
    while position < end:
        key = log.keys[position]
        if key in keys:
            if len(events) == cap:
                break
            event = event_of(store, key, log.revs[position], request.prev_kv)
            if not budget.take(_event_bytes(event)):
                break
            events.append(event)
        position += 1
    if position == len(log):
        next_revision, next_skip = max(start, store.revision + 1), 0
    else:
        next_revision = log.revs[position]
        next_skip = position - log.first_at(next_revision)
    return ChangesResult(
        store.revision, store.compact_revision, tuple(events), next_revision, next_skip
    )
