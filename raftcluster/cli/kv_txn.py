"""The two ways `raftcluster kv txn` reads a transaction: lines of text, or JSON.

Text, one condition or op per line, words split as a shell does (quotes, backslashes);
blank lines and `#` comments are ignored:

    if version lock == 0          # if FIELD KEY OP OPERAND; FIELD: value, version, create, mod
    if value mode != off          # OP: == != < >; value compares text, the others numbers
    then put lock me              # then/else put KEY VALUE
    then del --prefix jobs/       #           del KEY [END] | del --prefix KEY
    then get mode                 #           get KEY [END] | get --prefix KEY [--limit N]
    else get lock

JSON, the same pieces:

    {"if":   [{"field": "version", "key": "lock", "op": "==", "operand": 0}],
     "then": [{"op": "put", "key": "lock", "value": "me"}],
     "else": [{"op": "get", "key": "lock"},
              {"op": "del", "key": "jobs/", "prefix": true},
              {"op": "get", "key": "a", "end": "c", "limit": 10}]}

Keys and values are text (UTF-8; a line break cannot be typed in the text syntax: use
JSON or `--hex` for such values). Under `--hex` or `--base64` they are given in that
encoding instead; in JSON any key or value may also be written {"hex": "..."} or
{"base64": "..."}. Errors name the line (text) or the item (JSON).
"""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Callable
from typing import Any

from raftcluster.cli.target import UsageError
from raftcluster.client.values import range_end
from statemachine.errors import ClusterError
from statemachine.kv.commands import (
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    Put,
    Range,
    Txn,
    TxnOp,
)

Decode = Callable[[str], bytes]  # a key or value as typed -> bytes

FIELDS = {
    "value": CompareTarget.VALUE,
    "version": CompareTarget.VERSION,
    "create": CompareTarget.CREATE,
    "mod": CompareTarget.MOD,
}
OPERATORS = {
    "==": CompareOp.EQUAL,
    "!=": CompareOp.NOT_EQUAL,
    "<": CompareOp.LESS,
    ">": CompareOp.GREATER,
}
BRANCHES = ("if", "then", "else")


class TxnSyntaxError(UsageError):
    """A transaction the command cannot read; the message says where and why."""


# -- text ------------------------------------------------------------------------------


def parse_text(text: str, decode: Decode) -> Txn:
    """The transaction in `text` (see the module docstring)."""
    parts: dict[str, list[Any]] = {branch: [] for branch in BRANCHES}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as e:
            raise TxnSyntaxError(f"line {number}: {e}") from None
        if not words:
            continue
        branch, rest = words[0], words[1:]
        try:
            if branch == "if":
                parts["if"].append(_compare_words(rest, decode))
            elif branch in ("then", "else"):
                parts[branch].append(_op_words(rest, decode))
            else:
                raise TxnSyntaxError(f"starts with {branch!r}: each line is if, then or else")
        except ClusterError as e:
            raise TxnSyntaxError(f"line {number}: {e}") from None
    return _build(parts)


def _compare_words(words: list[str], decode: Decode) -> Compare:
    if len(words) != 4:
        raise TxnSyntaxError("a condition is: if FIELD KEY OP OPERAND (e.g. if version k == 0)")
    field, key, op, operand = words
    return _compare(field, decode(key), op, operand, decode)


def _op_words(words: list[str], decode: Decode) -> TxnOp:
    if not words:
        raise TxnSyntaxError("an op is put, del or get")
    name, args = words[0], words[1:]
    if name == "put":
        if len(args) != 2:
            raise TxnSyntaxError("put takes KEY VALUE")
        return Put(decode(args[0]), decode(args[1]))
    prefix = "--prefix" in args
    args = [a for a in args if a != "--prefix"]
    limit = 0
    if name == "get" and "--limit" in args:
        at = args.index("--limit")
        if at + 1 >= len(args):
            raise TxnSyntaxError("--limit needs a number")
        limit = _number(args[at + 1], "--limit")
        del args[at : at + 2]
    if name not in ("del", "get") or not 1 <= len(args) <= 2:
        raise TxnSyntaxError(f"{name!r}: an op is put KEY VALUE, del KEY [END], get KEY [END]")
    key = decode(args[0])
    end = range_end(key, decode(args[1]) if len(args) == 2 else None, prefix)
    if name == "del":
        return DeleteRange(key, end)
    return Range(key, end, limit=limit)


# -- JSON ------------------------------------------------------------------------------


def parse_json(document: object, decode: Decode) -> Txn:
    """The transaction in a parsed JSON `document` (see the module docstring)."""
    if not isinstance(document, dict):
        raise TxnSyntaxError("a JSON transaction is an object with if, then and else lists")
    unknown = set(document) - set(BRANCHES)
    if unknown:
        raise TxnSyntaxError(f"unknown keys {sorted(unknown)}: use if, then and else")
    parts: dict[str, list[Any]] = {}
    for branch in BRANCHES:
        items = document.get(branch, [])
        if not isinstance(items, list):
            raise TxnSyntaxError(f"{branch!r} must be a list")
        parts[branch] = []
        for i, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise TxnSyntaxError("each item is an object")
                one = _json_compare if branch == "if" else _json_op
                parts[branch].append(one(item, decode))
            except ClusterError as e:
                raise TxnSyntaxError(f"{branch}[{i}]: {e}") from None
    return _build(parts)


def _json_compare(item: dict[str, Any], decode: Decode) -> Compare:
    _only(item, {"field", "key", "op", "operand"})
    operand = item.get("operand")
    if isinstance(operand, int) and not isinstance(operand, bool):
        operand = str(operand)
    elif not isinstance(operand, str | dict):
        raise TxnSyntaxError("operand: a number, or a value")
    field, op = item.get("field"), item.get("op")
    if not isinstance(field, str) or not isinstance(op, str):
        raise TxnSyntaxError("field and op are strings")
    return _compare(field, _json_bytes(item.get("key"), decode), op, operand, decode)


def _json_op(item: dict[str, Any], decode: Decode) -> TxnOp:
    _only(item, {"op", "key", "value", "end", "prefix", "limit"})
    name = item.get("op")
    key = _json_bytes(item.get("key"), decode)
    if name == "put":
        return Put(key, _json_bytes(item.get("value"), decode))
    end_given = item.get("end")
    end = None if end_given is None else _json_bytes(end_given, decode)
    end = range_end(key, end, bool(item.get("prefix", False)))
    if name == "del":
        return DeleteRange(key, end)
    if name == "get":
        limit = item.get("limit", 0)
        if type(limit) is not int:
            raise TxnSyntaxError("limit: a number")
        return Range(key, end, limit=limit)
    raise TxnSyntaxError(f"op {name!r}: put, del or get")


def _json_bytes(value: object, decode: Decode) -> bytes:
    if isinstance(value, str):
        return decode(value)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, text),) = value.items()
        if kind in ("hex", "base64") and isinstance(text, str):
            return decode_as(kind, text)
    raise TxnSyntaxError(f'{value!r}: a key or value is a string, or {{"hex": ...}}')


def _only(item: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(item) - allowed
    if unknown:
        raise TxnSyntaxError(f"unknown fields {sorted(unknown)}")


# -- shared --------------------------------------------------------------------------


def _compare(
    field: str, key: bytes, op: str, operand: str | dict[str, Any], decode: Decode
) -> Compare:
    target = FIELDS.get(field)
    if target is None:
        raise TxnSyntaxError(f"field {field!r}: one of {', '.join(FIELDS)}")
    operator = OPERATORS.get(op)
    if operator is None:
        raise TxnSyntaxError(f"operator {op!r}: one of {' '.join(OPERATORS)}")
    if target == CompareTarget.VALUE:
        raw = _json_bytes(operand, decode) if isinstance(operand, dict) else decode(operand)
        return Compare(key, target, operator, raw)
    if isinstance(operand, dict):
        raise TxnSyntaxError(f"{field} compares with a number")
    return Compare(key, target, operator, _number(operand, field))


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise TxnSyntaxError(f"{what}: {text!r} is not a number")
    return int(text)


def _build(parts: dict[str, list[Any]]) -> Txn:
    return Txn(tuple(parts["if"]), tuple(parts["then"]), tuple(parts["else"]))


def decode_as(encoding: str, text: str) -> bytes:
    """`text` in `encoding` ("text", "hex" or "base64") as bytes; TxnSyntaxError if bad."""
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as e:
        raise TxnSyntaxError(f"{text!r} is not {encoding}: {e}") from None
    return text.encode("utf-8", "surrogateescape")


def format_text(txn: Txn, encode: Callable[[bytes], str]) -> str:
    """`txn` in the text syntax (`parse_text(format_text(t, e), d) == t` when `d`
    undoes `e`). For showing a transaction, and for the round-trip test."""
    lines = []
    field_names = {v: k for k, v in FIELDS.items()}
    op_names = {v: k for k, v in OPERATORS.items()}
    for c in txn.compares:
        operand = encode(c.operand) if isinstance(c.operand, bytes) else str(c.operand)
        words = [field_names[c.target], encode(c.key), op_names[c.op], operand]
        lines.append("if " + shlex.join(words))
    for branch, ops in (("then", txn.success), ("else", txn.failure)):
        for op in ops:
            lines.append(f"{branch} " + shlex.join(_op_text(op, encode)))
    return "\n".join(lines) + "\n"


def _op_text(op: TxnOp, encode: Callable[[bytes], str]) -> list[str]:
    if isinstance(op, Put):
        return ["put", encode(op.key), encode(op.value)]
    assert isinstance(op, DeleteRange | Range)
    words = ["del" if isinstance(op, DeleteRange) else "get", encode(op.key)]
    if op.range_end:
        words.append(encode(op.range_end))
    if isinstance(op, Range) and op.limit:
        words += ["--limit", str(op.limit)]
    return words
