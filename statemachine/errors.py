"""The one exception hierarchy of the project.

Everything raftcluster raises on purpose derives from `ClusterError`. It lives in
the lowest layer so that `statemachine`, `raftcluster` and `chaos` share it
without importing upwards; `raftcluster` re-exports it and adds runtime errors.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Root of every error raftcluster raises on purpose."""


class DecodeError(ClusterError):
    """Bytes that are not a valid encoding of the expected message.

    `field` names where decoding stopped (``"Put.key"``, ``"Txn.success[3]"``,
    or ``"<frame>"`` when the bytes are not CBOR at all); `reason` says what was wrong.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class LimitExceeded(ClusterError, ValueError):
    """A value is larger than the limit set for it (key size, value size, batch length...).

    Raised when a message is built, so a caller learns of it before anything is sent.
    """

    def __init__(self, field: str, limit: int, actual: int, unit: str = "bytes") -> None:
        super().__init__(f"{field} is {actual} {unit}, over the limit of {limit} {unit}")
        self.field = field
        self.limit = limit
        self.actual = actual
        self.unit = unit


class InvalidArgument(ClusterError, ValueError):
    """A value of the right type that is not acceptable (negative revision, empty key...)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Rejected(ClusterError):
    """The replicated state machine refused a request: a definite outcome.

    Nothing was changed by the refused request. `code` is the stable number of
    the reason (see `statemachine.results.Code`); subclasses exist for the reasons
    callers usually handle.
    """

    code: int = 0

    def __init__(self, message: str, *, code: int | None = None, detail: int = 0) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.detail = detail


class Compacted(Rejected):
    """The revision asked for was compacted away. `compact_revision` is the oldest readable."""

    @property
    def compact_revision(self) -> int:
        return self.detail


class FutureRevision(Rejected):
    """The revision asked for is newer than the store's current revision."""


class SessionError(Rejected):
    """The client session is unknown, expired, or the reply to this sequence is gone."""


class UnknownPart(Rejected):
    """A command or query names a state machine part that is not registered."""
