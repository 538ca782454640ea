"""The one exception hierarchy of the project.

Everything raftcluster raises on purpose derives from `ClusterError`. It lives in
the lowest layer so that `statemachine`, `raftcluster` and `chaos` share it
without importing upwards; `raftcluster` re-exports it and adds runtime errors.
"""

from __future__ import annotations

import enum


class Code(enum.IntEnum):
    """Stable numbers for the reasons a request is refused, carried by `Failure` results.

    Numbers never change meaning; user parts may use their own codes from 10000 up.
    """

    REJECTED = 1  # refused for a reason of the part's own (see the message)
    MALFORMED = 2  # the bytes do not decode to a valid command
    INVALID_ARGUMENT = 3  # well formed, but not acceptable (duplicate key in a txn...)
    LIMIT_EXCEEDED = 4  # over a size or count limit
    UNKNOWN_COMMAND = 5  # no registered part handles this command or query
    COMPACTED = 10  # the revision asked for was compacted; detail = compact revision
    FUTURE_REVISION = 11  # the revision asked for is not written yet; detail = current revision
    UNKNOWN_SESSION = 20  # the session is not open (never was, closed, or expired)
    REPLY_DISCARDED = 21  # the reply to this sequence was discarded; detail = the sequence
    TOO_MANY_SESSIONS = 22  # the session table is full
    STALE_EPOCH = 30  # a group report under an epoch that is not the group's current grant


class ClusterError(Exception):
    """Root of every error raftcluster raises on purpose."""


class DecodeError(ClusterError):
    """Bytes that are not a valid encoding of the expected message.

    `field` names where decoding stopped (``"Put.key"``, ``"Txn.success[3]"``,
    or ``"<frame>"`` when the bytes are not CBOR at all); `reason` says what was wrong.
    """

    def __init__(self, field: str, reason: str) -> None:
        _check_field("DecodeError", "field", field, str)
        _check_field("DecodeError", "reason", reason, str)
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownEntry(ClusterError):
    """A committed log entry this replica cannot apply: its command does not decode here,
    or no part here handles it.

    The leader proposes only commands that decode and that a part handles, so a replica
    that cannot apply one runs other parts than the leader did. Answering it with a
    failure would make this replica's state differ from the others' for good; the node
    stops instead. `index` is the entry's log index, `tag` the tag of its command (0 if
    the bytes carry none), `reason` what failed, `parts` this replica's part set
    (`PartSet.describe()`).
    """

    def __init__(self, index: int, tag: int, reason: str, parts: str) -> None:
        super().__init__(
            f"committed entry {index} (tag {tag}) cannot be applied here: {reason}; this "
            f"node runs {parts}. The nodes run different state machine parts: this node "
            "stops rather than diverge (compare [state] parts and the parts' versions on "
            "every node)"
        )
        self.index = index
        self.tag = tag
        self.reason = reason
        self.parts = parts


class LimitExceeded(ClusterError, ValueError):
    """A value is larger than the limit set for it (key size, value size, batch length...).

    Raised when a message is built, so a caller learns of it before anything is sent.
    """

    def __init__(self, field: str, limit: int, actual: int, unit: str = "bytes") -> None:
        _check_field("LimitExceeded", "field", field, str)
        _check_field("LimitExceeded", "limit", limit, int)
        _check_field("LimitExceeded", "actual", actual, int)
        _check_field("LimitExceeded", "unit", unit, str)
        super().__init__(f"{field} is {actual} {unit}, over the limit of {limit} {unit}")
        self.field = field
        self.limit = limit
        self.actual = actual
        self.unit = unit


class InvalidArgument(ClusterError, ValueError):
    """A value of the right type that is not acceptable (negative revision, empty key...)."""

    def __init__(self, field: str, reason: str) -> None:
        _check_field("InvalidArgument", "field", field, str)
        _check_field("InvalidArgument", "reason", reason, str)
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class FieldTypeError(InvalidArgument, TypeError):
    """A value of the wrong type for a field of a message or of an error, refused when the
    message or error is built: `field` names it (``"Put.key"``, ``"Rejected.detail"``),
    `expected` the type it takes, `got` the value given. Raised by a part's `apply`, it
    becomes an INVALID_ARGUMENT failure on every replica alike (it is an `InvalidArgument`).
    """

    def __init__(self, field: str, expected: str, got: str) -> None:
        super().__init__(field, f"expected {expected}, got {got}")
        self.expected = expected
        self.got = got


def _check_field(owner: str, name: str, value: object, kind: type) -> None:
    """`value` must be a `kind` (an int: not a bool, which encodes otherwise)."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return
    raise FieldTypeError(f"{owner}.{name}", kind.__name__, describe_value(value))


def describe_value(value: object) -> str:
    """``str 'text'``: a value's type and its repr, cut short (for FieldTypeError.got)."""
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{type(value).__name__} {shown}"


class Rejected(ClusterError):
    """The replicated state machine refused a request: a definite outcome.

    Nothing was changed by the refused request. `code` is the stable number of
    the reason (`Code`, or a user part's own number from 10000 up); `detail` is a
    number that goes with it (a revision, a sequence). Subclasses exist for the
    reasons callers usually handle.
    """

    code: int = Code.REJECTED

    def __init__(self, message: str, *, code: int | None = None, detail: int = 0) -> None:
        owner = type(self).__name__
        _check_field(owner, "message", message, str)
        if code is not None:
            _check_field(owner, "code", code, int)
        _check_field(owner, "detail", detail, int)
        super().__init__(message)
        if code is not None:
            self.code = code
        self.detail = detail


class BadRequest(Rejected):
    """The request itself is wrong: malformed, an invalid argument, or over a limit."""

    code = Code.INVALID_ARGUMENT


class Compacted(Rejected):
    """The revision asked for was compacted away. `compact_revision` is the oldest readable."""

    code = Code.COMPACTED

    @property
    def compact_revision(self) -> int:
        return self.detail


class FutureRevision(Rejected):
    """The revision asked for is newer than the store's current revision (`detail`)."""

    code = Code.FUTURE_REVISION


class SessionError(Rejected):
    """The client session is unknown or expired, the table is full, or a reply is gone.

    `code` tells which: `UNKNOWN_SESSION` (open a new session), `TOO_MANY_SESSIONS`,
    or `REPLY_DISCARDED` (this retry was not applied; whether the original request
    was applied is no longer known).
    """

    code = Code.UNKNOWN_SESSION


class StaleEpoch(Rejected):
    """A report from a node that does not own the group under that epoch (any more).

    `detail` is the group's current epoch. The groups part answers such a report with a
    `ReportRefused` result (not a `Failure`: the refusal is recorded as an event);
    `ReportRefused.error()` gives this exception for a caller that wants to raise."""

    code = Code.STALE_EPOCH


class UnknownPart(Rejected):
    """A command or query names a state machine part that is not registered."""

    code = Code.UNKNOWN_COMMAND
