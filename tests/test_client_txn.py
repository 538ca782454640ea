"""The transaction builder: conditions written as comparisons build the same `Txn` as the
state machine's own classes, and bad pieces are refused when added."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftcluster import txn
from raftcluster.client.txn import TxnBuilder
from statemachine.errors import InvalidArgument, LimitExceeded
from statemachine.kv import (
    MAX_TXN_OPS,
    Compare,
    CompareOp,
    DeleteRange,
    Put,
    Range,
    Txn,
    prefix_end,
)

keys = st.binary(min_size=1, max_size=8)
OPS = {
    CompareOp.EQUAL: lambda field, x: field == x,
    CompareOp.NOT_EQUAL: lambda field, x: field != x,
    CompareOp.LESS: lambda field, x: field < x,
    CompareOp.GREATER: lambda field, x: field > x,
}


@given(key=keys, op=st.sampled_from(list(CompareOp)), value=st.binary(max_size=8))
def test_value_compares(key: bytes, op: CompareOp, value: bytes) -> None:
    assert OPS[op](txn.value(key), value) == Compare.value(key, op, value)


@given(key=keys, op=st.sampled_from(list(CompareOp)), n=st.integers(0, 2**40))
def test_number_compares(key: bytes, op: CompareOp, n: int) -> None:
    assert OPS[op](txn.version(key), n) == Compare.version(key, op, n)
    assert OPS[op](txn.create_revision(key), n) == Compare.create_revision(key, op, n)
    assert OPS[op](txn.mod_revision(key), n) == Compare.mod_revision(key, op, n)


def test_text_is_utf8() -> None:
    assert (txn.value("ключ") == "значение") == Compare.value(
        "ключ".encode(), CompareOp.EQUAL, "значение".encode()
    )
    assert txn.put("k", "v") == Put(b"k", b"v")
    assert txn.delete("p/", prefix=True) == DeleteRange(b"p/", prefix_end(b"p/"))
    assert txn.get("a", "c", limit=2) == Range(b"a", b"c", limit=2)


def test_the_builder_reads_like_the_transaction() -> None:
    base = TxnBuilder().when(txn.version("lock") == 0)
    built = base.then(txn.put("lock", "me")).otherwise(txn.get("lock")).build()
    assert built == Txn(
        (Compare.version(b"lock", CompareOp.EQUAL, 0),), (Put(b"lock", b"me"),), (Range(b"lock"),)
    )
    assert base.build() == Txn((Compare.version(b"lock", CompareOp.EQUAL, 0),))  # unchanged


def test_bad_pieces_are_refused_when_added() -> None:
    with pytest.raises(InvalidArgument, match="compares with an int"):
        _ = txn.version("k") == "1"
    with pytest.raises(InvalidArgument, match="bytes or str"):
        _ = txn.value("k") == 1
    with pytest.raises(InvalidArgument, match="Compare expected"):
        TxnBuilder().when(txn.put("k", "v"))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="put, delete or get"):
        TxnBuilder().then(txn.version("k") == 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="either end or prefix"):
        txn.get("a", "b", prefix=True)
    with pytest.raises(LimitExceeded):
        TxnBuilder().then(*[txn.put(b"k%d" % i, "") for i in range(MAX_TXN_OPS + 1)])
    with pytest.raises(TypeError):
        hash(txn.value("k"))  # == builds a Compare, so fields cannot be dict keys


async def test_an_unbound_builder_says_how_to_commit() -> None:
    with pytest.raises(InvalidArgument, match="client.txn"):
        await TxnBuilder().commit()
