"""The `Failure` result, and the mapping between failures and typed exceptions.

Inside the state machine a refusal is an exception (a `ClusterError`) raised before
anything changes; at the boundary of `ClusterState` it becomes a `Failure` result, which
is what travels through the log and the wire. A client turns it back into the typed
exception with `to_exception` (or `expect`), so a caller catches `Compacted`,
`SessionError`... and never inspects codes by hand.
"""

from __future__ import annotations

from typing import TypeVar

import attrs

from statemachine.codec import INT_MAX, Message, int_range, max_len, tagged
from statemachine.errors import (
    BadRequest,
    ClusterError,
    Code,
    Compacted,
    DecodeError,
    FutureRevision,
    InvalidArgument,
    LimitExceeded,
    Rejected,
    SessionError,
    StaleEpoch,
    UnknownPart,
)

MAX_MESSAGE_CHARS = 1024

R = TypeVar("R", bound=Message)


@tagged(1)
@attrs.frozen
class Failure(Message):
    """A definite refusal: the command changed nothing. `code` is a `Code` (or a user code)."""

    code: int = attrs.field(validator=int_range(1, 2**31 - 1))
    message: str = attrs.field(validator=max_len(MAX_MESSAGE_CHARS, "characters"))
    detail: int = attrs.field(default=0, validator=int_range(0, INT_MAX))

    @classmethod
    def of(cls, code: int, message: str, detail: int = 0) -> Failure:
        """A failure built from anything a part raised: the message is cut to the limit, a
        code or detail out of range becomes REJECTED or 0, so reporting never fails."""
        if not 1 <= code < 2**31:
            code = Code.REJECTED
        if not 0 <= detail <= INT_MAX:
            detail = 0
        return cls(code, message[:MAX_MESSAGE_CHARS], detail)


_exceptions: dict[int, type[Rejected]] = {
    Code.MALFORMED: BadRequest,
    Code.INVALID_ARGUMENT: BadRequest,
    Code.LIMIT_EXCEEDED: BadRequest,
    Code.UNKNOWN_COMMAND: UnknownPart,
    Code.COMPACTED: Compacted,
    Code.FUTURE_REVISION: FutureRevision,
    Code.UNKNOWN_SESSION: SessionError,
    Code.REPLY_DISCARDED: SessionError,
    Code.TOO_MANY_SESSIONS: SessionError,
    Code.STALE_EPOCH: StaleEpoch,
}


def failure_of(error: ClusterError) -> Failure:
    """The result that reports `error` (raised by a part before it changed anything)."""
    if isinstance(error, Rejected):
        return Failure.of(error.code, str(error), error.detail)
    if isinstance(error, DecodeError):
        return Failure.of(Code.MALFORMED, str(error))
    if isinstance(error, LimitExceeded):
        return Failure.of(Code.LIMIT_EXCEEDED, str(error), error.limit)
    if isinstance(error, InvalidArgument):
        return Failure.of(Code.INVALID_ARGUMENT, str(error))
    return Failure.of(Code.REJECTED, str(error))


def to_exception(failure: Failure) -> Rejected:
    """The typed exception a client raises for `failure`; `failure_of` maps it back."""
    kind = _exceptions.get(failure.code, Rejected)
    return kind(failure.message, code=failure.code, detail=failure.detail)


def expect(result: Message, kind: type[R]) -> R:
    """`result` as a `kind`, or raise the typed exception its `Failure` stands for."""
    if isinstance(result, Failure):
        raise to_exception(result)
    if not isinstance(result, kind):
        raise DecodeError("<result>", f"expected {kind.__name__}, got {type(result).__name__}")
    return result


__all__ = ["Code", "Failure", "expect", "failure_of", "to_exception"]
