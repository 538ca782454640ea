"""A small builder for transactions: compares that read like conditions, and ops.

    from raftcluster import txn

    result = await (
        client.txn()
        .when(txn.version("lock") == 0, txn.value("mode") != "off")
        .then(txn.put("lock", "me"), txn.get("mode"))
        .otherwise(txn.get("lock"))
        .commit()
    )
    result.succeeded, result.responses

`value(key)`, `version(key)`, `create_revision(key)` and `mod_revision(key)` name one
key's field; comparing it with `==`, `!=`, `<` or `>` gives a `Compare`. `put`, `delete`
and `get` give the ops (`Put`, `DeleteRange`, `Range`). Keys and values are bytes or str
(UTF-8). A missing key has version and revisions 0, and every value compare on it is
false (docs/configdb.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from raftcluster.client.values import Data, range_end, to_bytes
from statemachine.errors import InvalidArgument, LimitExceeded
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
from statemachine.kv.limits import MAX_TXN_OPS
from statemachine.kv.results import TxnResult


@attrs.frozen(eq=False)
class Field:
    """One field of one key, to compare: `version("k") == 0` is a `Compare`."""

    key: bytes
    target: CompareTarget

    def _compare(self, op: CompareOp, operand: object) -> Compare:
        if self.target == CompareTarget.VALUE:
            if not isinstance(operand, bytes | str):
                raise InvalidArgument("Compare.operand", "a value compares with bytes or str")
            return Compare(self.key, self.target, op, to_bytes(operand, "value"))
        if type(operand) is not int:
            raise InvalidArgument("Compare.operand", f"{self.target.name} compares with an int")
        return Compare(self.key, self.target, op, operand)

    def __eq__(self, operand: object) -> Compare:  # type: ignore[override]
        return self._compare(CompareOp.EQUAL, operand)

    def __ne__(self, operand: object) -> Compare:  # type: ignore[override]
        return self._compare(CompareOp.NOT_EQUAL, operand)

    def __lt__(self, operand: object) -> Compare:
        return self._compare(CompareOp.LESS, operand)

    def __gt__(self, operand: object) -> Compare:
        return self._compare(CompareOp.GREATER, operand)

    __hash__ = None  # type: ignore[assignment]  # == builds a Compare, so no hashing


def value(key: Data) -> Field:
    return Field(to_bytes(key, "key"), CompareTarget.VALUE)


def version(key: Data) -> Field:
    return Field(to_bytes(key, "key"), CompareTarget.VERSION)


def create_revision(key: Data) -> Field:
    return Field(to_bytes(key, "key"), CompareTarget.CREATE)


def mod_revision(key: Data) -> Field:
    return Field(to_bytes(key, "key"), CompareTarget.MOD)


def put(key: Data, value: Data, *, prev_kv: bool = False) -> Put:
    return Put(to_bytes(key, "key"), to_bytes(value, "value"), prev_kv)


def delete(
    key: Data, end: Data | None = None, *, prefix: bool = False, prev_kv: bool = False
) -> DeleteRange:
    """Delete `key`, the keys of [key, end), or every key starting with `key` (`prefix`)."""
    raw = to_bytes(key, "key")
    return DeleteRange(raw, range_end(raw, end, prefix), prev_kv)


def get(
    key: Data,
    end: Data | None = None,
    *,
    prefix: bool = False,
    limit: int = 0,
    revision: int = 0,
    keys_only: bool = False,
    count_only: bool = False,
) -> Range:
    """Read `key`, the keys of [key, end), or every key starting with `key` (`prefix`)."""
    raw = to_bytes(key, "key")
    return Range(raw, range_end(raw, end, prefix), revision, limit, count_only, keys_only)


def _check_compares(items: tuple[object, ...]) -> tuple[Compare, ...]:
    for item in items:
        if not isinstance(item, Compare):
            raise InvalidArgument("when", f"a Compare expected, not {type(item).__name__}")
    return items  # type: ignore[return-value]  # checked above


def _check_ops(items: tuple[object, ...], where: str) -> tuple[TxnOp, ...]:
    for item in items:
        if not isinstance(item, TxnOp):
            raise InvalidArgument(where, f"a put, delete or get expected, not {item!r}")
    return items  # type: ignore[return-value]  # checked above


@attrs.frozen
class TxnBuilder:
    """An immutable transaction under construction; `commit` sends it (`Client.txn`).

    `when`, `then` and `otherwise` each return a new builder with the items added, so a
    builder can be kept and extended. Limits (128 of each) are checked as items are added.
    """

    _commit: Callable[[Txn, int | None], Awaitable[TxnResult]] | None = None
    compares: tuple[Compare, ...] = ()
    success: tuple[TxnOp, ...] = ()
    failure: tuple[TxnOp, ...] = ()

    def when(self, *compares: Compare) -> TxnBuilder:
        """Add conditions; the `then` ops run if all hold (no condition: always)."""
        added = self.compares + _check_compares(compares)
        _check_size(added, "compares")
        return attrs.evolve(self, compares=added)

    def then(self, *ops: TxnOp) -> TxnBuilder:
        """Add ops to run when every condition holds."""
        added = self.success + _check_ops(ops, "then")
        _check_size(added, "then ops")
        return attrs.evolve(self, success=added)

    def otherwise(self, *ops: TxnOp) -> TxnBuilder:
        """Add ops to run when some condition does not hold."""
        added = self.failure + _check_ops(ops, "otherwise")
        _check_size(added, "otherwise ops")
        return attrs.evolve(self, failure=added)

    def build(self) -> Txn:
        return Txn(self.compares, self.success, self.failure)

    async def commit(self, *, timeout_ms: int | None = None) -> TxnResult:
        """Apply the transaction through the client's session (see `Client.commit` for
        the outcomes). Cancellation: it may still be applied, once; the outcome is unknown."""
        if self._commit is None:
            raise InvalidArgument("TxnBuilder", "not bound to a client: use client.txn()")
        return await self._commit(self.build(), timeout_ms)


def _check_size(items: tuple[object, ...], what: str) -> None:
    if len(items) > MAX_TXN_OPS:
        raise LimitExceeded(what, MAX_TXN_OPS, len(items), "items")
