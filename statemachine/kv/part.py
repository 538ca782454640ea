"""The configuration database as a part of the cluster state (named `kv`)."""

from __future__ import annotations

from typing import Any

from statemachine.codec import Message
from statemachine.errors import Compacted, FutureRevision
from statemachine.kv import txn
from statemachine.kv.commands import Changes, Compact, DeleteRange, Put, Range, Txn, TxnOp
from statemachine.kv.limits import KvConfig
from statemachine.kv.reads import ResponseBudget, read_changes, read_range
from statemachine.kv.results import CompactResult, OpResult, TxnResult
from statemachine.kv.snapshot import KvCopy, KvSnapshot, snapshot_array, snapshot_of, store_of
from statemachine.kv.store import Store
from statemachine.part import ApplyContext, PartSpec, expect_snapshot

NAME = "kv"
COMMANDS: tuple[type[Message], ...] = (Put, DeleteRange, Range, Txn, Compact)
QUERIES: tuple[type[Message], ...] = (Range, Changes)


class KvPart:
    """etcd-like multi-version key-value store; see docs/configdb.md."""

    def __init__(self, config: KvConfig | None = None) -> None:
        self.config = config or KvConfig()
        self.store = Store()

    def apply(self, command: Message, context: ApplyContext) -> Message:
        if type(command) is Put:  # the most common write, without a plan for a list of ops
            result, event = txn.put_alone(self.store, command, self.config)
            context.emit(event)
            self._auto_compact()
            return result
        if isinstance(command, Txn):
            succeeded = all(txn.holds(self.store, c) for c in command.compares)
            ops = command.success if succeeded else command.failure
            results = self._write(ops, context)
            return TxnResult(self.store.revision, succeeded, tuple(results))
        if isinstance(command, Compact):
            return self._compact(command.revision)
        assert isinstance(command, TxnOp), f"not a kv command: {type(command).__name__}"
        return self._write((command,), context)[0]

    def query(self, query: Message) -> Message:
        if isinstance(query, Range):
            budget = ResponseBudget(self.config.max_response_bytes)
            return read_range(self.store, query, self.config, budget, self.store.revision)
        assert isinstance(query, Changes), f"not a kv query: {type(query).__name__}"
        return read_changes(self.store, query, self.config)

    def snapshot(self) -> Message:
        return snapshot_of(self.store)

    def snapshot_array(self) -> list[Any]:
        return snapshot_array(self.store)

    def snapshot_copy(self) -> KvCopy:
        """The store copied now, to encode later (`statemachine.snapshot_copy`)."""
        return KvCopy(self.store)

    def restore(self, snapshot: Message) -> None:
        self.store = store_of(expect_snapshot(snapshot, KvSnapshot, NAME))

    def _write(self, ops: tuple[TxnOp, ...], context: ApplyContext) -> list[OpResult]:
        checked = txn.plan(self.store, ops, self.config)
        results, events = txn.execute(self.store, ops, checked, self.config)
        for event in events:
            context.emit(event)
        if events:
            self._auto_compact()
        return results

    def _auto_compact(self) -> None:
        """Keep at most `history_revisions` revisions readable (a deterministic rule)."""
        target = self.store.revision - self.config.history_revisions + 1
        if target > self.store.compact_revision:
            self.store.compact(target)

    def _compact(self, revision: int) -> CompactResult:
        store = self.store
        if revision <= store.compact_revision:
            raise Compacted(
                f"revision {revision} is already compacted (compact revision "
                f"{store.compact_revision})",
                detail=store.compact_revision,
            )
        if revision > store.revision:
            raise FutureRevision(
                f"cannot compact to {revision}: the current revision is {store.revision}",
                detail=store.revision,
            )
        store.compact(revision)
        return CompactResult(store.revision, revision)


def spec(config: KvConfig | None = None) -> PartSpec:
    """The registration of the configuration database, with `config` on every replica."""
    return PartSpec(NAME, lambda: KvPart(config), COMMANDS, QUERIES)
