"""The session table: which sessions are open, until when, and their cached replies.

Time only enters through commands (`now_ms`, decided by the proposer). The table keeps
`clock_ms`, the largest time it was given, and reads every command's time as at least
that: time never runs backwards here even when a new leader's clock is behind the
old one's, so a session cannot come back to life.
"""

from __future__ import annotations

import attrs

from statemachine.codec import positive
from statemachine.errors import Code, InvalidArgument, SessionError


@attrs.frozen
class SessionLimits:
    """Bounds on the table; every replica must use the same ones."""

    max_sessions: int = attrs.field(default=1024, validator=positive)
    max_replies_per_session: int = attrs.field(default=128, validator=positive)
    max_reply_bytes_per_session: int = attrs.field(default=1 << 20, validator=positive)
    min_ttl_ms: int = attrs.field(default=1_000, validator=positive)
    max_ttl_ms: int = attrs.field(default=3_600_000, validator=positive)


@attrs.define
class Session:
    id: int
    ttl_ms: int
    deadline_ms: int
    floor: int = 0  # every sequence <= floor has no reply any more
    replies: dict[int, bytes] = attrs.Factory(dict)
    reply_bytes: int = 0

    def forget_through(self, seq: int) -> None:
        """Drop the replies up to `seq`; retries of them are refused from now on."""
        if seq <= self.floor:
            return
        for old in [s for s in self.replies if s <= seq]:
            self.reply_bytes -= len(self.replies.pop(old))
        self.floor = seq


class SessionTable:
    def __init__(self, limits: SessionLimits | None = None) -> None:
        self.limits = limits or SessionLimits()
        self.clock_ms = 0
        self.sessions: dict[int, Session] = {}

    def _now(self, now_ms: int) -> int:
        self.clock_ms = max(self.clock_ms, now_ms)
        return self.clock_ms

    def get(self, session: int) -> Session:
        found = self.sessions.get(session)
        if found is None:
            raise SessionError(
                f"session {session} is not open (unknown, closed or expired)",
                code=Code.UNKNOWN_SESSION,
                detail=session,
            )
        return found

    def open(self, session: int, now_ms: int, ttl_ms: int) -> Session:
        limits = self.limits
        if not limits.min_ttl_ms <= ttl_ms <= limits.max_ttl_ms:
            raise InvalidArgument(
                "OpenSession.ttl_ms",
                f"{ttl_ms} is outside {limits.min_ttl_ms}..{limits.max_ttl_ms}",
            )
        if len(self.sessions) >= limits.max_sessions:
            raise SessionError(
                f"the session table is full ({limits.max_sessions} sessions)",
                code=Code.TOO_MANY_SESSIONS,
                detail=limits.max_sessions,
            )
        assert session not in self.sessions, "session ids are log indexes, so unique"
        opened = Session(session, ttl_ms, self._now(now_ms) + ttl_ms)
        self.sessions[session] = opened
        return opened

    def keep_alive(self, session: int, now_ms: int) -> Session:
        found = self.get(session)
        found.deadline_ms = max(found.deadline_ms, self._now(now_ms) + found.ttl_ms)
        return found

    def close(self, session: int) -> None:
        self.get(session)
        del self.sessions[session]

    def expire(self, now_ms: int) -> list[int]:
        now = self._now(now_ms)
        ended = sorted(s.id for s in self.sessions.values() if s.deadline_ms <= now)
        for session in ended:
            del self.sessions[session]
        return ended

    def admit(self, session: int, seq: int, ack: int) -> bytes | None:
        """Check a request; return the stored reply of a retry, or None for a new one.

        Refusals come first and change nothing; an admitted request forgets the
        replies its `ack` releases.
        """
        found = self.sessions.get(session)
        if found is None:
            found = self.get(session)  # (raises: the session is not open)
        floor = found.floor
        if seq <= floor:
            raise SessionError(
                f"session {session}: the reply to sequence {seq} was discarded (acknowledged "
                "or evicted); this retry was not applied",
                code=Code.REPLY_DISCARDED,
                detail=seq,
            )
        if ack > floor:
            found.forget_through(ack)
        return found.replies.get(seq)

    def record(self, session: int, seq: int, reply: bytes) -> None:
        """Keep the reply to a newly applied request, evicting the oldest over the limits."""
        found = self.sessions[session]
        replies = found.replies
        assert seq > found.floor and seq not in replies
        replies[seq] = reply
        found.reply_bytes += len(reply)
        limits = self.limits
        while (
            len(replies) > limits.max_replies_per_session
            or found.reply_bytes > limits.max_reply_bytes_per_session
        ):
            found.forget_through(min(replies))
