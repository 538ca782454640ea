"""The configuration database, one convention at a time (the script docs/configdb.md tells)."""

from __future__ import annotations

import pytest

from statemachine.cluster import ClusterState
from statemachine.codec import Message
from statemachine.errors import Code, InvalidArgument, LimitExceeded
from statemachine.kv import (
    ALL_KEYS,
    MAX_KEY_BYTES,
    MAX_TXN_OPS,
    MAX_VALUE_BYTES,
    Changes,
    ChangesResult,
    Compact,
    CompactResult,
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
    Txn,
    TxnResult,
    prefix_end,
)
from statemachine.kv.sortedkeys import SortedKeys
from statemachine.results import Failure, expect


class Db:
    def __init__(self, **config: int) -> None:
        self.state = ClusterState(kv=KvConfig(**config))
        self.index = 0
        self.events: list[Message] = []

    def __call__(self, command: Message) -> Message:
        self.index += 1
        done = self.state.execute(self.index, command)
        self.events.extend(done.events)
        return done.result

    def read(self, query: Message) -> Message:
        return self.state.read(query)

    def range(self, request: Range) -> RangeResult:
        return expect(self.read(request), RangeResult)

    def refused(self, command: Message, code: Code, query: bool = False) -> Failure:
        before = self.state.snapshot()
        result = self.read(command) if query else self(command)
        assert isinstance(result, Failure), result
        assert result.code == code, result
        assert self.state.snapshot() == before
        return result

    def values(self, request: Range) -> list[bytes]:
        return [kv.key for kv in self.range(request).kvs]


def test_revisions_start_at_one_and_count_write_requests() -> None:
    db = Db()
    assert db.range(Range(b"k")).revision == 1
    assert db(Put(b"k", b"1")) == PutResult(2)
    assert db(DeleteRange(b"nothing")) == DeleteRangeResult(2, 0)  # deleting nothing: no bump
    assert db(Range(b"k")) == db.range(Range(b"k"))  # a read through the log: no bump
    three = Txn((), (Put(b"a", b"1"), Put(b"b", b"2"), DeleteRange(b"k")), ())
    result = expect(db(three), TxnResult)
    assert result.revision == 3 and all(r.revision == 3 for r in result.responses)
    assert expect(db(Txn()), TxnResult).revision == 3


def test_create_mod_and_version_per_key_and_delete_resets() -> None:
    db = Db()
    db(Put(b"k", b"1"))
    db(Put(b"k", b"2"))
    assert db.range(Range(b"k")).kvs == (KeyValue(b"k", 2, 3, 2, b"2"),)
    db(DeleteRange(b"k"))
    db(Put(b"k", b"3"))
    assert db.range(Range(b"k")).kvs == (KeyValue(b"k", 5, 5, 1, b"3"),)


def test_put_and_delete_return_previous_pairs_when_asked() -> None:
    db = Db()
    assert db(Put(b"k", b"1", prev_kv=True)) == PutResult(2, None)
    assert db(Put(b"k", b"2", prev_kv=True)) == PutResult(3, KeyValue(b"k", 2, 2, 1, b"1"))
    assert db(Put(b"k", b"3")) == PutResult(4)
    gone = db(DeleteRange(b"k", prev_kv=True))
    assert gone == DeleteRangeResult(5, 1, (KeyValue(b"k", 2, 4, 3, b"3"),))


def test_range_end_conventions() -> None:
    db = Db()
    for key in (b"\x00", b"a", b"a/1", b"a/2", b"a0", b"b", b"\xff", b"\xff\xff"):
        db(Put(key, b"v"))
    assert db.values(Range(b"a")) == [b"a"]
    assert db.values(Range(b"a/", ALL_KEYS)) == [b"a/1", b"a/2", b"a0", b"b", b"\xff", b"\xff\xff"]
    assert (
        db.values(Range.all()) == db.values(Range(b"\x00", b"\x00"))
        and len(db.values(Range.all())) == 8
    )
    assert db.values(Range.prefix(b"a/")) == [b"a/1", b"a/2"]
    assert db.values(Range(b"a/1", b"a0")) == [b"a/1", b"a/2"]
    assert db.values(Range(b"b", b"a")) == []  # range_end <= key: empty
    assert db.values(Range.prefix(b"\xff")) == [b"\xff", b"\xff\xff"]
    assert prefix_end(b"a/") == b"a0" and prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == ALL_KEYS and prefix_end(b"") == ALL_KEYS


def test_range_limit_count_keys_only_and_count_only() -> None:
    db = Db()
    for i in range(5):
        db(Put(b"k%d" % i, b"value"))
    page = db.range(Range.prefix(b"k", limit=2))
    assert [kv.key for kv in page.kvs] == [b"k0", b"k1"] and page.more and page.count == 5
    keys = db.range(Range.prefix(b"k", keys_only=True))
    assert all(kv.value == b"" and kv.version == 1 for kv in keys.kvs) and not keys.more
    counted = db.range(Range.prefix(b"k", count_only=True))
    assert (counted.kvs, counted.more, counted.count) == ((), False, 5)


def test_range_caps_set_more() -> None:
    db = Db(max_range_kvs=3, max_response_bytes=20)
    for i in range(5):
        db(Put(b"k%d" % i, b"12345678"))  # 10 bytes per pair
    capped = db.range(Range.prefix(b"k"))
    assert len(capped.kvs) == 2 and capped.more and capped.count == 5
    assert len(db.range(Range.prefix(b"k", keys_only=True)).kvs) == 3
    db(Put(b"huge", b"x" * 100))
    assert len(db.range(Range(b"huge")).kvs) == 1  # the first pair always fits


def test_reads_at_older_revisions_until_compacted() -> None:
    db = Db()
    db(Put(b"k", b"1"))  # 2
    db(Put(b"k", b"2"))  # 3
    db(DeleteRange(b"k"))  # 4
    assert db.range(Range(b"k", revision=2)).kvs[0].value == b"1"
    assert db.range(Range(b"k", revision=3)).kvs[0].value == b"2"
    assert db.range(Range(b"k", revision=4)).count == 0
    assert db.range(Range(b"k", revision=1)).count == 0
    future = db.refused(Range(b"k", revision=5), Code.FUTURE_REVISION, query=True)
    assert future.detail == 4
    assert db(Compact(3)) == CompactResult(4, 3)
    assert db.range(Range(b"k", revision=3)).kvs[0].value == b"2"
    assert db.refused(Range(b"k", revision=2), Code.COMPACTED, query=True).detail == 3
    assert db.refused(Compact(3), Code.COMPACTED).detail == 3
    assert db.refused(Compact(5), Code.FUTURE_REVISION).detail == 4


def test_compare_rules_for_missing_keys_and_each_target() -> None:
    db = Db()
    db(Put(b"k", b"b"))
    db(Put(b"k", b"b"))

    def holds(compare: Compare) -> bool:
        return expect(db(Txn((compare,))), TxnResult).succeeded

    assert holds(Compare.version(b"k", CompareOp.EQUAL, 2))
    assert holds(Compare.create_revision(b"k", CompareOp.EQUAL, 2))
    assert holds(Compare.mod_revision(b"k", CompareOp.GREATER, 2))
    assert holds(Compare.value(b"k", CompareOp.LESS, b"c"))
    assert not holds(Compare.value(b"k", CompareOp.NOT_EQUAL, b"b"))
    assert holds(Compare.version(b"missing", CompareOp.EQUAL, 0))
    assert holds(Compare.mod_revision(b"missing", CompareOp.LESS, 1))
    for op in CompareOp:
        assert not holds(Compare.value(b"missing", op, b""))
    with pytest.raises(InvalidArgument):
        Compare(b"k", CompareTarget.VALUE, CompareOp.EQUAL, 1)
    with pytest.raises(InvalidArgument):
        Compare(b"k", CompareTarget.VERSION, CompareOp.EQUAL, b"1")


def test_txn_runs_one_branch_atomically_and_reads_see_earlier_writes() -> None:
    db = Db()
    db(Put(b"k", b"1"))
    create_if_absent = Txn(
        (Compare.version(b"lock", CompareOp.EQUAL, 0),),
        (Put(b"lock", b"me"), Range(b"lock"), DeleteRange(b"k", prev_kv=True)),
        (Range(b"lock"),),
    )
    first = expect(db(create_if_absent), TxnResult)
    assert first.succeeded and first.revision == 3
    read = first.responses[1]
    assert isinstance(read, RangeResult) and read.kvs[0].value == b"me"
    second = expect(db(create_if_absent), TxnResult)
    assert not second.succeeded and second.revision == 3
    assert db.events[-2:] == [
        KvEvent(EventKind.DELETE, KeyValue(b"k", 0, 3, 0), KeyValue(b"k", 2, 2, 1, b"1")),
        KvEvent(EventKind.PUT, KeyValue(b"lock", 3, 3, 1, b"me")),
    ]


def test_txn_refuses_two_changes_to_one_key() -> None:
    db = Db()
    db(Put(b"a/1", b"v"))
    db.refused(Txn((), (Put(b"k", b"1"), Put(b"k", b"2"))), Code.INVALID_ARGUMENT)
    db.refused(Txn((), (Put(b"a/1", b"1"), DeleteRange.prefix(b"a/"))), Code.INVALID_ARGUMENT)
    db.refused(Txn((), (DeleteRange.prefix(b"a/"), Put(b"a/2", b"2"))), Code.INVALID_ARGUMENT)
    overlapping = expect(db(Txn((), (DeleteRange.prefix(b"a"), DeleteRange(b"a/1")))), TxnResult)
    assert [r.deleted for r in overlapping.responses] == [1, 0]  # type: ignore[attr-defined]


def test_a_refused_txn_changes_nothing_even_after_a_good_op() -> None:
    db = Db(max_changes_per_revision=2)
    db(Put(b"a", b"1"))
    db(Put(b"b", b"1"))
    txn = Txn((), (Put(b"zz", b"1"), DeleteRange(b"a", b"z")))
    assert db.refused(txn, Code.LIMIT_EXCEEDED).detail == 2


def test_message_limits_are_refused_when_built() -> None:
    with pytest.raises(LimitExceeded):
        Put(b"k" * (MAX_KEY_BYTES + 1), b"")
    with pytest.raises(LimitExceeded):
        Put(b"k", b"v" * (MAX_VALUE_BYTES + 1))
    with pytest.raises(InvalidArgument, match="empty"):
        Put(b"", b"v")
    with pytest.raises(LimitExceeded):
        Txn((), (Put(b"k", b"v"),) * (MAX_TXN_OPS + 1))
    with pytest.raises(LimitExceeded):
        Txn((Compare.version(b"k", CompareOp.EQUAL, 0),) * (MAX_TXN_OPS + 1))
    Put(b"k" * MAX_KEY_BYTES, b"v" * MAX_VALUE_BYTES)


def test_store_limits() -> None:
    db = Db(max_keys=2, max_store_bytes=100, max_response_bytes=30)
    db(Put(b"a", b"1"))
    db(Put(b"b", b"1"))
    assert db.refused(Put(b"c", b"1"), Code.LIMIT_EXCEEDED).detail == 2
    db(Put(b"a", b"x" * 60))
    assert db.refused(Put(b"b", b"x" * 40), Code.LIMIT_EXCEEDED).detail == 100
    assert db.refused(DeleteRange(b"a", b"z", prev_kv=True), Code.LIMIT_EXCEEDED).detail == 30
    assert db(DeleteRange(b"a", b"z")) == DeleteRangeResult(5, 2)  # deleting always works


def test_auto_compaction_keeps_the_configured_number_of_revisions() -> None:
    db = Db(history_revisions=3)
    for i in range(6):
        db(Put(b"k", b"%d" % i))  # revisions 2..7
    assert db.range(Range(b"k", revision=5)).kvs[0].value == b"3"
    assert db.refused(Range(b"k", revision=4), Code.COMPACTED, query=True).detail == 5


def test_changes_resume_from_a_cursor_and_carry_previous_pairs() -> None:
    db = Db(max_changes_scan=2)
    db(Put(b"a", b"1"))  # 2
    db(Txn((), (Put(b"b", b"1"), Put(b"c", b"1"), Put(b"x", b"1"))))  # 3
    db(DeleteRange(b"a"))  # 4
    first = expect(db.read(Changes(b"a", b"c", start_revision=2, prev_kv=True)), ChangesResult)
    assert [e.kv.key for e in first.events] == [b"a", b"b"]
    assert (first.next_revision, first.next_skip) == (3, 1)
    rest = expect(
        db.read(Changes(b"a", b"c", start_revision=3, skip=1, prev_kv=True)), ChangesResult
    )
    assert rest.events == ()  # c and x examined, neither in range
    assert (rest.next_revision, rest.next_skip) == (4, 0)
    last = expect(db.read(Changes(b"a", b"c", start_revision=4, prev_kv=True)), ChangesResult)
    assert last.events == (
        KvEvent(EventKind.DELETE, KeyValue(b"a", 0, 4, 0), KeyValue(b"a", 2, 2, 1, b"1")),
    )
    assert (last.next_revision, last.next_skip) == (5, 0)
    now = expect(db.read(Changes(b"a", start_revision=0)), ChangesResult)
    assert (now.events, now.next_revision) == ((), 5)
    overshoot = expect(db.read(Changes(b"a", ALL_KEYS, start_revision=3, skip=99)), ChangesResult)
    assert [e.kv.key for e in overshoot.events] == [b"a"]  # skip is cut at the revision's end
    db(Compact(3))
    db.refused(Changes(b"a", start_revision=2), Code.COMPACTED, query=True)
    after = expect(db.read(Changes(b"b", start_revision=3, prev_kv=True)), ChangesResult)
    assert after.events[0].kv == KeyValue(b"b", 3, 3, 1, b"1")


def test_sorted_keys_against_a_sorted_list() -> None:
    import random

    rng = random.Random(7)
    keys = SortedKeys()
    model: set[bytes] = set()
    for _ in range(5000):
        key = b"%d" % rng.randrange(3000)
        if key in model:
            keys.remove(key)
            model.discard(key)
        else:
            keys.add(key)
            model.add(key)
    assert list(keys) == sorted(model) and len(keys) == len(model)
    for low, high in [(b"1", b"2"), (b"", None), (b"5", b"4"), (b"29", None)]:
        expected = [k for k in sorted(model) if k >= low and (high is None or k < high)]
        assert list(keys.irange(low, high)) == expected
