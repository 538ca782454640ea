"""The configuration database against a plain model, with the Hypothesis kit.

`raftcluster.testing.ReplicasMachine` does the replicas: every command goes through
`ClusterState.execute` and `apply(index, bytes)` (results and events byte for byte
equal), lagging replicas catch up by the log and by snapshot, a replica restarts from its
own snapshot. Here: the kv commands drawn against the model's current revision, and the
model (`tests/kv_model.py`) the results must equal, field for field (failures by code
and detail). The configuration is tiny so that caps, budgets, auto-compaction and paging
all happen.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from raftcluster.testing import ReplicasMachine
from statemachine.codec import Message
from statemachine.errors import Rejected
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


class KvReference:
    """`tests/kv_model.py` as the kit's model: a refusal raises `Rejected`."""

    def __init__(self) -> None:
        self.kv = KvModel(CONFIG)

    def execute(self, command: Message) -> Message:
        try:
            if isinstance(command, Txn):
                return self.kv.txn(command.compares, command.success, command.failure)
            if isinstance(command, Compact):
                return self.kv.compact_to(command.revision)
            assert isinstance(command, Put | DeleteRange | Range)
            return self.kv.write([command])[0]
        except Refused as refusal:
            raise Rejected("refused", code=refusal.code, detail=refusal.detail) from None

    def query(self, query: Message) -> Message:
        assert isinstance(query, Range)
        try:
            return self.kv.query_range(query)
        except Refused as refusal:
            raise Rejected("refused", code=refusal.code, detail=refusal.detail) from None


class KvMachine(ReplicasMachine):
    state_options = {"kv": CONFIG}

    def make_model(self) -> KvReference:
        return KvReference()

    @property
    def revision(self) -> int:
        return self.reference.kv.revision

    @property
    def reference(self) -> KvReference:
        assert isinstance(self.model, KvReference)
        return self.model

    @rule(put=puts())
    def put(self, put: Put) -> None:
        self.write(put)

    @rule(delete=deletes())
    def delete(self, delete: DeleteRange) -> None:
        self.write(delete)

    @rule(data=st.data())
    def range(self, data: st.DataObject) -> None:
        self.read(data.draw(ranges(self.revision)))

    @rule(data=st.data())
    def range_through_log(self, data: st.DataObject) -> None:
        self.write(data.draw(ranges(self.revision)))

    @rule(data=st.data())
    def txn(self, data: st.DataObject) -> None:
        revision = self.revision
        conditions = data.draw(st.lists(compares(revision), max_size=3))
        success, failure = data.draw(ops(revision)), data.draw(ops(revision))
        self.write(Txn(tuple(conditions), tuple(success), tuple(failure)))

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        self.write(Compact(data.draw(st.integers(1, self.revision + 1))))

    @rule(data=st.data())
    def changes(self, data: st.DataObject) -> None:
        """Page through the history from a revision; the pages add up to the model's."""
        key = data.draw(keys)
        request = Changes(
            key,
            data.draw(range_ends(key)),
            start_revision=data.draw(st.integers(1, self.revision + 1)),
            limit=data.draw(st.integers(0, 3)),
            prev_kv=data.draw(st.booleans()),
        )
        model = self.reference.kv
        try:
            expected = model.history(request)
        except Refused as refusal:
            failure = Rejected("refused", code=refusal.code, detail=refusal.detail)
            self.expect(self.by_execute.read(request), lambda: _raise(failure))
            return
        got: list[KvEvent] = []
        for _ in range(1000):
            page = self.by_execute.read(request)
            assert isinstance(page, ChangesResult), page
            assert (page.revision, page.compact_revision) == model.changes_result_header()
            got.extend(page.events)
            if page.next_revision > model.revision:
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
    def a_restored_store_counts_what_it_holds(self) -> None:
        """What the limits count must not drift from what a snapshot rebuilds."""
        restored = self.new_state()
        restored.restore(self.by_bytes.snapshot())
        old, new = self.by_bytes.part("kv"), restored.part("kv")
        assert isinstance(old, KvPart) and isinstance(new, KvPart)
        assert new.store.stored_bytes == old.store.stored_bytes
        assert len(new.store.index) == len(old.store.index) == len(new.store.history)

    @invariant()
    def revisions_agree(self) -> None:
        self.read(Range(b"\x00", b"\x00", count_only=True))


def _raise(error: Exception) -> Message:
    raise error


KvMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestKvAgainstModel = KvMachine.TestCase
