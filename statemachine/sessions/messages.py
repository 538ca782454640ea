"""Client session commands, results, events and snapshot (tags 200-249).

A client opens a session, then wraps each write in a `SessionRequest` carrying the
session id and a sequence number of its own; the state machine keeps the reply to
each sequence until the client acknowledges it, so a retry is answered from the
cache instead of being applied twice (Raft dissertation, section 6.3).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from statemachine.codec import Message, non_negative, positive, tagged
from statemachine.errors import InvalidArgument


@tagged(200)
@attrs.frozen
class OpenSession(Message):
    """Open a session that lives `ttl_ms` past `now_ms` (the proposer's clock).

    The new session's id is the log index of this command.
    """

    now_ms: int = attrs.field(validator=non_negative)
    ttl_ms: int = attrs.field(validator=positive)


@tagged(201)
@attrs.frozen
class SessionOpened(Message):
    session: int
    deadline_ms: int  # the session expires when an ExpireSessions at or past this applies


@tagged(202)
@attrs.frozen
class KeepAlive(Message):
    """Extend `session` to `ttl_ms` past `now_ms` (never shortens it)."""

    session: int = attrs.field(validator=positive)
    now_ms: int = attrs.field(validator=non_negative)


@tagged(203)
@attrs.frozen
class SessionKept(Message):
    session: int
    deadline_ms: int


@tagged(204)
@attrs.frozen
class CloseSession(Message):
    """End `session` now; its cached replies are dropped."""

    session: int = attrs.field(validator=positive)


@tagged(205)
@attrs.frozen
class SessionClosed(Message):
    session: int


@tagged(206)
@attrs.frozen
class ExpireSessions(Message):
    """End every session whose deadline is at or before `now_ms`.

    Proposed by the leader's services with the time it decided at: the state machine
    never reads a clock.
    """

    now_ms: int = attrs.field(validator=non_negative)


@tagged(207)
@attrs.frozen
class SessionsExpired(Message):
    sessions: tuple[int, ...]  # ascending


def _check_ack(instance: SessionRequest, attribute: attrs.Attribute[Any], ack: int) -> None:
    if not 0 <= ack < instance.seq:
        raise InvalidArgument(
            "SessionRequest.ack", f"{ack} is not in 0..seq-1 ({instance.seq - 1})"
        )


@tagged(208)
@attrs.frozen
class SessionRequest(Message):
    """Apply `command` at most once for (`session`, `seq`).

    `ack` says the client has every reply up to and including that sequence, so the
    state machine may forget them; it must be below `seq`. A repeated `seq` gets the
    stored reply, byte for byte, without applying `command` again.
    """

    session: int = attrs.field(validator=positive)
    seq: int = attrs.field(validator=positive)
    ack: int = attrs.field(validator=_check_ack)
    command: Message


class EndReason(enum.IntEnum):
    CLOSED = 0
    EXPIRED = 1


@tagged(209)
@attrs.frozen
class SessionEnded(Message):
    """Event: a session closed or expired (what it held may now be released)."""

    session: int
    reason: EndReason


@tagged(210)
@attrs.frozen
class GetSession(Message):
    """Query one session's state."""

    session: int = attrs.field(validator=positive)


@tagged(211)
@attrs.frozen
class SessionInfo(Message):
    session: int
    ttl_ms: int
    deadline_ms: int
    floor: int  # replies up to this sequence are forgotten (acknowledged or evicted)
    cached_replies: int
    cached_bytes: int


@tagged(212)
@attrs.frozen
class ListSessions(Message):
    """Query every open session, by id."""


@tagged(213)
@attrs.frozen
class SessionList(Message):
    sessions: tuple[SessionInfo, ...]


@tagged(220)
@attrs.frozen
class CachedReply(Message):
    seq: int
    reply: bytes  # the encoded result, returned as is to a retry


@tagged(221)
@attrs.frozen
class SessionState(Message):
    session: int = attrs.field(validator=positive)
    ttl_ms: int = attrs.field(validator=positive)
    deadline_ms: int = attrs.field(validator=non_negative)
    floor: int = attrs.field(validator=non_negative)
    replies: tuple[CachedReply, ...]  # ascending by seq, all above floor


@tagged(222)
@attrs.frozen
class SessionsSnapshot(Message):
    clock_ms: int = attrs.field(validator=non_negative)
    sessions: tuple[SessionState, ...]  # ascending by id
