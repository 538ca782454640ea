"""Leader services: commands the leader proposes on its own, on timers.

The state machine never reads a clock, so anything time-based (session expiry now;
failure detection and placement later) becomes a command that the leader proposes with
the time it decided at. A `LeaderService` says when it next wants to run and, when run,
which commands to propose. The `Replica` runs services only on the leader and only while
that leader has heard from a quorum within an election timeout (a leader cut off from
the others must not decide anything from its clock), and keeps at most one proposal of
each service in flight, so a slow cluster is not flooded with timer commands.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from raftcluster.raft.quorum import majority
from statemachine.codec import Message
from statemachine.sessions.messages import ExpireSessions


class LeaderService(Protocol):
    name: str

    def next_due_ms(self) -> int:
        """The time (the node's clock) at which `run` next has something to propose."""
        ...

    def run(self, now_ms: int) -> Sequence[Message]:
        """Commands to propose now (called at or after `next_due_ms`, on the leader)."""
        ...


class SessionExpiry:
    """Proposes `ExpireSessions(now_ms)` every `interval_ms`."""

    name = "session-expiry"

    def __init__(self, interval_ms: int, now_ms: int = 0) -> None:
        self.interval_ms = interval_ms
        self._due_ms = now_ms + interval_ms

    def next_due_ms(self) -> int:
        return self._due_ms

    def run(self, now_ms: int) -> Sequence[Message]:
        self._due_ms = now_ms + self.interval_ms
        return (ExpireSessions(now_ms),)


class QuorumContact:
    """When this node last heard from each peer, to tell whether a majority is in reach."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self._heard_ms: dict[int, int] = {}

    def heard(self, peer: int, now_ms: int) -> None:
        self._heard_ms[peer] = now_ms

    def has_quorum(self, voters: Collection[int], now_ms: int, within_ms: int) -> bool:
        recent = 0
        for voter in voters:
            heard = self._heard_ms.get(voter)
            if voter == self.node_id or (heard is not None and now_ms - heard < within_ms):
                recent += 1
        return bool(voters) and recent >= majority(len(voters))

    def snapshot(self) -> Mapping[int, int]:
        return dict(self._heard_ms)
