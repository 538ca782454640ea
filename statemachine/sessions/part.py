"""Client sessions as a part of the cluster state (named `sessions`).

The part handles opening, keeping alive, closing and expiring sessions. The
`SessionRequest` envelope is handled by `ClusterState`, which asks this part's table
to admit the request and to record its reply around applying the inner command in
whichever part owns it.
"""

from __future__ import annotations

from statemachine.codec import Message
from statemachine.errors import DecodeError
from statemachine.part import ApplyContext, PartSpec, expect_snapshot
from statemachine.sessions.messages import (
    CachedReply,
    CloseSession,
    EndReason,
    ExpireSessions,
    GetSession,
    KeepAlive,
    ListSessions,
    OpenSession,
    SessionClosed,
    SessionEnded,
    SessionInfo,
    SessionKept,
    SessionList,
    SessionOpened,
    SessionsExpired,
    SessionsSnapshot,
    SessionState,
)
from statemachine.sessions.table import Session, SessionLimits, SessionTable

NAME = "sessions"
COMMANDS: tuple[type[Message], ...] = (OpenSession, KeepAlive, CloseSession, ExpireSessions)
QUERIES: tuple[type[Message], ...] = (GetSession, ListSessions)


def _info(session: Session) -> SessionInfo:
    return SessionInfo(
        session.id,
        session.ttl_ms,
        session.deadline_ms,
        session.floor,
        len(session.replies),
        session.reply_bytes,
    )


class SessionsPart:
    def __init__(self, limits: SessionLimits | None = None) -> None:
        self.limits = limits or SessionLimits()
        self.table = SessionTable(self.limits)

    def apply(self, command: Message, context: ApplyContext) -> Message:
        table = self.table
        if isinstance(command, OpenSession):
            opened = table.open(context.index, command.now_ms, command.ttl_ms)
            return SessionOpened(opened.id, opened.deadline_ms)
        if isinstance(command, KeepAlive):
            kept = table.keep_alive(command.session, command.now_ms)
            return SessionKept(kept.id, kept.deadline_ms)
        if isinstance(command, CloseSession):
            table.close(command.session)
            context.emit(SessionEnded(command.session, EndReason.CLOSED))
            return SessionClosed(command.session)
        assert isinstance(command, ExpireSessions), f"not a session command: {command!r}"
        ended = table.expire(command.now_ms)
        for session in ended:
            context.emit(SessionEnded(session, EndReason.EXPIRED))
        return SessionsExpired(tuple(ended))

    def query(self, query: Message) -> Message:
        if isinstance(query, GetSession):
            return _info(self.table.get(query.session))
        assert isinstance(query, ListSessions), f"not a session query: {query!r}"
        return SessionList(
            tuple(_info(self.table.sessions[s]) for s in sorted(self.table.sessions))
        )

    def snapshot(self) -> Message:
        table = self.table
        return SessionsSnapshot(
            table.clock_ms,
            tuple(_state(table.sessions[s]) for s in sorted(table.sessions)),
        )

    def restore(self, snapshot: Message) -> None:
        state = expect_snapshot(snapshot, SessionsSnapshot, NAME)
        table = SessionTable(self.limits)
        table.clock_ms = state.clock_ms
        previous = 0
        for i, saved in enumerate(state.sessions):
            if saved.session <= previous:
                raise DecodeError(f"SessionsSnapshot.sessions[{i}]", "ids are not ascending")
            previous = saved.session
            table.sessions[saved.session] = _session(saved, f"SessionsSnapshot.sessions[{i}]")
        self.table = table


def _state(session: Session) -> SessionState:
    replies = tuple(CachedReply(seq, session.replies[seq]) for seq in sorted(session.replies))
    return SessionState(session.id, session.ttl_ms, session.deadline_ms, session.floor, replies)


def _session(saved: SessionState, path: str) -> Session:
    session = Session(saved.session, saved.ttl_ms, saved.deadline_ms, saved.floor)
    previous = saved.floor
    for cached in saved.replies:
        if cached.seq <= previous:
            raise DecodeError(path, "replies are not ascending above the floor")
        previous = cached.seq
        session.replies[cached.seq] = cached.reply
        session.reply_bytes += len(cached.reply)
    return session


def spec(limits: SessionLimits | None = None) -> PartSpec:
    return PartSpec(NAME, lambda: SessionsPart(limits), COMMANDS, QUERIES)
