"""`raftcluster kv txn` input: the text syntax and the JSON form build the transaction
they say, round-trip, and refuse bad input with the line or item at fault."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftcluster.cli.kv_txn import TxnSyntaxError, decode_as, format_text, parse_json, parse_text
from statemachine.kv import (
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    Put,
    Range,
    Txn,
    prefix_end,
)


def text(t: str) -> bytes:
    return decode_as("text", t)


def hexed(t: str) -> bytes:
    return decode_as("hex", t)


def test_the_documented_example() -> None:
    source = """
        # take the lock if nobody holds it
        if version lock == 0
        if value mode != off          # a comment after a condition
        then put lock me
        then del --prefix jobs/
        then get mode
        else get lock
        else get "a key" "z" --limit 10
    """
    assert parse_text(source, text) == Txn(
        (
            Compare.version(b"lock", CompareOp.EQUAL, 0),
            Compare.value(b"mode", CompareOp.NOT_EQUAL, b"off"),
        ),
        (Put(b"lock", b"me"), DeleteRange(b"jobs/", prefix_end(b"jobs/")), Range(b"mode")),
        (Range(b"lock"), Range(b"a key", b"z", limit=10)),
    )


def test_the_json_form_says_the_same() -> None:
    document = json.loads(
        """{"if":   [{"field": "version", "key": "lock", "op": "==", "operand": 0},
                     {"field": "value", "key": {"hex": "6d6f6465"}, "op": "!=", "operand": "off"}],
            "then": [{"op": "put", "key": "lock", "value": "me"},
                     {"op": "del", "key": "jobs/", "prefix": true}],
            "else": [{"op": "get", "key": "a", "end": "c", "limit": 10}]}"""
    )
    assert parse_json(document, text) == Txn(
        (
            Compare.version(b"lock", CompareOp.EQUAL, 0),
            Compare.value(b"mode", CompareOp.NOT_EQUAL, b"off"),
        ),
        (Put(b"lock", b"me"), DeleteRange(b"jobs/", prefix_end(b"jobs/"))),
        (Range(b"a", b"c", limit=10),),
    )


def transactions(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[Txn]:
    key = data.filter(bool)
    compare = st.one_of(
        st.builds(Compare.value, key, st.sampled_from(list(CompareOp)), data),
        st.builds(
            Compare,
            key,
            st.sampled_from([CompareTarget.VERSION, CompareTarget.CREATE, CompareTarget.MOD]),
            st.sampled_from(list(CompareOp)),
            st.integers(0, 10**12),
        ),
    )
    op = st.one_of(
        st.builds(Put, key, data),
        st.builds(DeleteRange, key, data),
        st.builds(lambda k, e, n: Range(k, e, limit=n), key, data, st.integers(0, 99)),
    )
    return st.builds(
        Txn,
        st.lists(compare, max_size=4).map(tuple),
        st.lists(op, max_size=4).map(tuple),
        st.lists(op, max_size=4).map(tuple),
    )


# Line breaks cannot appear in the text syntax as typed (use --hex or JSON for them).
typed = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=6).map(
    lambda t: t.encode()
)


@given(transactions(st.binary(max_size=6)))
def test_text_round_trips_in_hex(txn: Txn) -> None:
    assert parse_text(format_text(txn, bytes.hex), hexed) == txn


@given(transactions(typed))
def test_text_round_trips_as_utf8(txn: Txn) -> None:
    assert parse_text(format_text(txn, bytes.decode), text) == txn


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("then put k", "line 1: put takes KEY VALUE"),
        ("\nif version k = 0", "line 2: operator '='"),
        ("if size k == 0", "field 'size'"),
        ("if version k == x", "version: 'x' is not a number"),
        ("when version k == 0", "each line is if, then or else"),
        ('then put "k v', "line 1: No closing quotation"),
        ("then get k --limit", "--limit needs a number"),
        ("then frob k", "'frob'"),
    ],
)
def test_bad_text_names_the_line(source: str, message: str) -> None:
    with pytest.raises(TxnSyntaxError, match=message.replace("(", r"\(")):
        parse_text(source, text)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "an object with if, then and else"),
        ({"when": []}, "unknown keys"),
        ({"then": [{"op": "put", "key": "k"}]}, r"then\[0\]"),
        ({"if": [{"field": "version", "key": "k", "op": "==", "operand": "x"}]}, "not a number"),
        ({"else": [{"op": "get", "key": "k", "limit": "1"}]}, r"else\[0\]: limit"),
        ({"then": [{"op": "put", "key": {"hex": "zz"}, "value": "v"}]}, "not hex"),
    ],
)
def test_bad_json_names_the_item(document: object, message: str) -> None:
    with pytest.raises(TxnSyntaxError, match=message):
        parse_json(document, text)
