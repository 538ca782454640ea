"""A plain model of the configuration database: one dict of pairs per revision.

It knows nothing of the store's index, version lists or change log: every revision's
whole state is kept, reads look it up, and the change history is the difference
between consecutive revisions. It follows docs/configdb.md, not the implementation.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from statemachine.errors import Code
from statemachine.kv import (
    ChangesResult,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    DeleteRangeResult,
    EventKind,
    KeyValue,
    KvConfig,
    KvEvent,
    Put,
    PutResult,
    Range,
    RangeResult,
    TxnOp,
    TxnResult,
)
from statemachine.kv.commands import Changes
from statemachine.kv.results import CompactResult, OpResult

Pair = tuple[int, int, int, bytes]  # create_revision, mod_revision, version, value
State = dict[bytes, Pair]


class Refused(Exception):
    def __init__(self, code: int, detail: int = 0) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


OPS: dict[CompareOp, Callable[[Any, Any], bool]] = {
    CompareOp.EQUAL: operator.eq,
    CompareOp.NOT_EQUAL: operator.ne,
    CompareOp.GREATER: operator.gt,
    CompareOp.LESS: operator.lt,
}


def selected(state: State, key: bytes, range_end: bytes) -> list[bytes]:
    if range_end == b"":
        return [key] if key in state else []
    high = None if range_end == b"\0" else range_end
    return sorted(k for k in state if key <= k and (high is None or k < high))


def kv(key: bytes, pair: Pair, keys_only: bool = False) -> KeyValue:
    create, mod, version, value = pair
    return KeyValue(key, create, mod, version, b"" if keys_only else value)


class Budget:
    def __init__(self, left: int, empty: bool = True) -> None:
        self.left, self.empty = left, empty

    def take(self, size: int) -> bool:
        if size > self.left and not self.empty:
            return False
        self.left -= size
        self.empty = False
        return True


class KvModel:
    def __init__(self, config: KvConfig) -> None:
        self.config = config
        self.revision = 1
        self.compact = 0
        self.states: dict[int, State] = {1: {}}

    @property
    def current(self) -> State:
        return self.states[self.revision]

    def readable(self, revision: int) -> None:
        if revision and revision < self.compact:
            raise Refused(Code.COMPACTED, self.compact)
        if revision > self.revision:
            raise Refused(Code.FUTURE_REVISION, self.revision)

    # -- reads --------------------------------------------------------------------------

    def range(self, request: Range, work: State, budget: Budget, header: int) -> RangeResult:
        self.readable(request.revision)
        state = self.states[request.revision] if request.revision else work
        keys = selected(state, request.key, request.range_end)
        limit = self.config.max_range_kvs
        if request.limit:
            limit = min(limit, request.limit)
        kvs: list[KeyValue] = []
        if not request.count_only:
            for key in keys:
                value_size = 0 if request.keys_only else len(state[key][3])
                if len(kvs) == limit or not budget.take(len(key) + value_size):
                    break
                kvs.append(kv(key, state[key], request.keys_only))
        more = not request.count_only and len(kvs) < len(keys)
        return RangeResult(header, tuple(kvs), more, len(keys))

    def query_range(self, request: Range) -> RangeResult:
        budget = Budget(self.config.max_response_bytes)
        return self.range(request, self.current, budget, self.revision)

    def events_at(self, revision: int, prev_kv: bool) -> list[KvEvent]:
        before, after = self.states[revision - 1], self.states[revision]
        events = []
        for key in sorted(set(before) | set(after)):
            if before.get(key) == after.get(key):
                continue
            prev = kv(key, before[key]) if prev_kv and key in before else None
            if key in after:
                events.append(KvEvent(EventKind.PUT, kv(key, after[key]), prev))
            else:
                events.append(KvEvent(EventKind.DELETE, KeyValue(key, 0, revision, 0), prev))
        return events

    def history(self, request: Changes) -> list[KvEvent]:
        """Every matching change from request.start_revision on (no paging)."""
        self.readable(min(request.start_revision, self.revision))
        first = max(request.start_revision, 2)
        return [
            event
            for revision in range(first, self.revision + 1)
            for event in self.events_at(revision, request.prev_kv)
            if selected({event.kv.key: (0, 0, 0, b"")}, request.key, request.range_end)
        ]

    # -- writes -------------------------------------------------------------------------

    def holds(self, compare: Compare) -> bool:
        pair = self.current.get(compare.key)
        if compare.target == CompareTarget.VALUE:
            if pair is None:
                return False
            actual: Any = pair[3]
        elif pair is None:
            actual = 0
        else:
            actual = {CompareTarget.VERSION: pair[2], CompareTarget.CREATE: pair[0]}.get(
                compare.target, pair[1]
            )
        return OPS[compare.op](actual, compare.operand)

    def txn(
        self, compares: Sequence[Compare], success: Sequence[TxnOp], failure: Sequence[TxnOp]
    ) -> TxnResult:
        succeeded = all(self.holds(c) for c in compares)
        results = self.write(success if succeeded else failure)
        return TxnResult(self.revision, succeeded, tuple(results))

    def write(self, ops: Sequence[TxnOp]) -> list[OpResult]:
        current = self.current
        puts: dict[bytes, Put] = {}
        for op in ops:
            if isinstance(op, Put):
                if op.key in puts:
                    raise Refused(Code.INVALID_ARGUMENT)
                puts[op.key] = op
            elif isinstance(op, Range):
                self.readable(op.revision)
        deletions: list[list[bytes]] = []
        deleted: set[bytes] = set()
        prev_bytes = 0
        for op in ops:
            if not isinstance(op, DeleteRange):
                continue
            if any(selected({k: (0, 0, 0, b"")}, op.key, op.range_end) for k in puts):
                raise Refused(Code.INVALID_ARGUMENT)
            mine = [k for k in selected(current, op.key, op.range_end) if k not in deleted]
            deleted.update(mine)
            deletions.append(mine)
            if op.prev_kv:
                prev_bytes += sum(len(k) + len(current[k][3]) for k in mine)
        for key, put in puts.items():
            if put.prev_kv and key in current:
                prev_bytes += len(key) + len(current[key][3])
        changes = len(puts) + len(deleted)
        if changes > self.config.max_changes_per_revision:
            raise Refused(Code.LIMIT_EXCEEDED, self.config.max_changes_per_revision)
        if prev_bytes > self.config.max_response_bytes:
            raise Refused(Code.LIMIT_EXCEEDED, self.config.max_response_bytes)
        return self._run(ops, deletions, changes, prev_bytes)

    def _run(
        self, ops: Sequence[TxnOp], deletions: list[list[bytes]], changes: int, prev_bytes: int
    ) -> list[OpResult]:
        revision = self.revision + 1 if changes else self.revision
        work = dict(self.current)
        budget = Budget(self.config.max_response_bytes - prev_bytes, prev_bytes == 0)
        pending = iter(deletions)
        results: list[OpResult] = []
        for op in ops:
            if isinstance(op, Put):
                prev = work.get(op.key)
                if prev is None:
                    work[op.key] = (revision, revision, 1, op.value)
                else:
                    work[op.key] = (prev[0], revision, prev[2] + 1, op.value)
                prev_kv = kv(op.key, prev) if op.prev_kv and prev is not None else None
                results.append(PutResult(revision, prev_kv))
            elif isinstance(op, DeleteRange):
                keys = next(pending)
                gone = tuple(kv(k, work.pop(k)) for k in keys)
                results.append(DeleteRangeResult(revision, len(keys), gone if op.prev_kv else ()))
            else:
                assert isinstance(op, Range)
                results.append(self.range(op, work, budget, revision))
        if changes:
            self.revision = revision
            self.states[revision] = work
            target = revision - self.config.history_revisions + 1
            self.compact = max(self.compact, target)
        return results

    def compact_to(self, revision: int) -> CompactResult:
        if revision <= self.compact:
            raise Refused(Code.COMPACTED, self.compact)
        if revision > self.revision:
            raise Refused(Code.FUTURE_REVISION, self.revision)
        self.compact = revision
        return CompactResult(self.revision, revision)

    def changes_result_header(self) -> tuple[int, int]:
        return self.revision, self.compact


__all__ = ["ChangesResult", "KvModel", "Refused"]
