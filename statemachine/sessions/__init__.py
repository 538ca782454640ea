"""Client sessions: at-most-once application of retried requests (Raft dissertation 6.3)."""

from statemachine.sessions.messages import (
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
    SessionRequest,
    SessionsExpired,
)
from statemachine.sessions.part import SessionsPart
from statemachine.sessions.table import SessionLimits

__all__ = [
    "CloseSession",
    "EndReason",
    "ExpireSessions",
    "GetSession",
    "KeepAlive",
    "ListSessions",
    "OpenSession",
    "SessionClosed",
    "SessionEnded",
    "SessionInfo",
    "SessionKept",
    "SessionLimits",
    "SessionList",
    "SessionOpened",
    "SessionRequest",
    "SessionsExpired",
    "SessionsPart",
]
