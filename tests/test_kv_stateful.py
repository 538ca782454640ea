"""The configuration database against a plain model, through encoded commands and queries.

Every step goes through `ClusterState.apply(index, bytes)` / `query(bytes)` and compares
the decoded result with the model's, field for field (failures by code and detail).
The configuration is tiny so that caps, budgets, auto-compaction and paging all happen.
A rule swaps the replica for one restored from its snapshot, so everything after it
also checks the restored state (including the rebuilt change log).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode, encode
from statemachine.kv import (
    Changes,
    ChangesResult,
    Compact,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    KvConfig,
    KvEvent,
    KvPart,
    Put,
    Range,
    Txn,
    TxnOp,
    prefix_end,
)
from statemachine.results import Failure
from tests.kv_model import KvModel, Refused

CONFIG = KvConfig(
    max_range_kvs=3,
    max_response_bytes=24,
    history_revisions=12,
    max_changes_per_revision=5,
    max_changes_scan=4,
)
KEYS = [b"\x00", b"a", b"a\x00", b"ab", b"b", b"ba", b"c", b"\xff", b"\xff\xff"]
keys = st.sampled_from(KEYS)
values = st.binary(max_size=6)


@st.composite
def range_ends(draw: st.DrawFn, key: bytes) -> bytes:
    return draw(st.sampled_from([b"", b"", b"\x00", prefix_end(key), draw(keys)]))


@st.composite
def puts(draw: st.DrawFn) -> Put:
    return Put(draw(keys), draw(values), draw(st.booleans()))


@st.composite
def deletes(draw: st.DrawFn) -> DeleteRange:
    key = draw(keys)
    return DeleteRange(key, draw(range_ends(key)), draw(st.booleans()))


@st.composite
def ranges(draw: st.DrawFn, max_revision: int) -> Range:
    key = draw(keys)
    return Range(
        key,
        draw(range_ends(key)),
        revision=draw(st.one_of(st.just(0), st.integers(0, max_revision + 2))),
        limit=draw(st.integers(0, 4)),
        count_only=draw(st.booleans()),
        keys_only=draw(st.booleans()),
    )


@st.composite
def compares(draw: st.DrawFn, max_revision: int) -> Compare:
    target = draw(st.sampled_from(CompareTarget))
    if target == CompareTarget.VALUE:
        operand: int | bytes = draw(values)
    else:
        operand = draw(st.integers(0, max_revision + 1))
    return Compare(draw(keys), target, draw(st.sampled_from(CompareOp)), operand)


def ops(max_revision: int) -> st.SearchStrategy[list[TxnOp]]:
    op: st.SearchStrategy[TxnOp] = st.one_of(puts(), deletes(), ranges(max_revision))
    return st.lists(op, max_size=4)


class KvMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.model = KvModel(CONFIG)
        self.sut = ClusterState(kv=CONFIG)
        self.index = 0

    def apply(self, command: Message) -> Message:
        self.index += 1
        return decode(self.sut.apply(self.index, encode(command)).result, Message)

    def query(self, query: Message) -> Message:
        return decode(self.sut.query(encode(query)), Message)

    def check(self, actual: Message, expected: Callable[[], Message]) -> None:
        try:
            wanted = expected()
        except Refused as refusal:
            assert isinstance(actual, Failure), f"expected a refusal, got {actual}"
            assert (actual.code, actual.detail) == (refusal.code, refusal.detail), actual
            return
        assert actual == wanted

    @rule(put=puts())
    def put(self, put: Put) -> None:
        self.check(self.apply(put), lambda: self.model.write([put])[0])

    @rule(delete=deletes())
    def delete(self, delete: DeleteRange) -> None:
        self.check(self.apply(delete), lambda: self.model.write([delete])[0])

    @rule(data=st.data())
    def range(self, data: st.DataObject) -> None:
        request = data.draw(ranges(self.model.revision))
        self.check(self.query(request), lambda: self.model.query_range(request))

    @rule(data=st.data())
    def range_through_log(self, data: st.DataObject) -> None:
        request = data.draw(ranges(self.model.revision))
        self.check(self.apply(request), lambda: self.model.write([request])[0])

    @rule(data=st.data())
    def txn(self, data: st.DataObject) -> None:
        revision = self.model.revision
        conditions = data.draw(st.lists(compares(revision), max_size=3))
        success, failure = data.draw(ops(revision)), data.draw(ops(revision))
        txn = Txn(tuple(conditions), tuple(success), tuple(failure))
        self.check(self.apply(txn), lambda: self.model.txn(conditions, success, failure))

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        revision = data.draw(st.integers(1, self.model.revision + 1))
        self.check(self.apply(Compact(revision)), lambda: self.model.compact_to(revision))

    @rule(data=st.data())
    def changes(self, data: st.DataObject) -> None:
        """Page through the history from a revision; the pages add up to the model's."""
        key = data.draw(keys)
        request = Changes(
            key,
            data.draw(range_ends(key)),
            start_revision=data.draw(st.integers(1, self.model.revision + 1)),
            limit=data.draw(st.integers(0, 3)),
            prev_kv=data.draw(st.booleans()),
        )
        try:
            expected = self.model.history(request)
        except Refused:
            self.check(self.query(request), lambda: self.model.history(request)[0])
            return
        got: list[KvEvent] = []
        for _ in range(1000):
            page = self.query(request)
            assert isinstance(page, ChangesResult), page
            assert (page.revision, page.compact_revision) == self.model.changes_result_header()
            got.extend(page.events)
            if page.next_revision > self.model.revision:
                assert page.next_skip == 0
                break
            cursor = (page.next_revision, page.next_skip)
            assert cursor > (request.start_revision, request.skip), "no progress"
            request = Changes(
                request.key,
                request.range_end,
                page.next_revision,
                request.limit,
                request.prev_kv,
                page.next_skip,
            )
        assert got == expected

    @rule()
    def replace_with_restored_replica(self) -> None:
        snapshot = self.sut.snapshot()
        # Built from the parts' plain arrays: the very bytes of the snapshot message.
        assert snapshot == encode(self.sut.snapshot_message())
        restored = ClusterState(kv=CONFIG)
        restored.restore(snapshot)
        assert restored.snapshot() == snapshot
        # What the limits count must not drift from what a snapshot rebuilds.
        old, new = self.sut.part("kv"), restored.part("kv")
        assert isinstance(old, KvPart) and isinstance(new, KvPart)
        assert new.store.stored_bytes == old.store.stored_bytes
        assert len(new.store.index) == len(old.store.index) == len(new.store.history)
        self.sut = restored

    @invariant()
    def revisions_agree(self) -> None:
        if not hasattr(self, "model"):
            return
        head = self.query(Range(b"\x00", b"\x00", count_only=True))
        self.check(head, lambda: self.model.query_range(Range(b"\x00", b"\x00", count_only=True)))


KvMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestKvAgainstModel = KvMachine.TestCase
