"""Exactly-once of session requests, seen from the appliers.

A client's write travels as `SessionRequest(session, seq, command)` and may be proposed
more than once (a retry after a timeout or a change of leader), so the log may hold it at
several indexes; the session table must execute the command at the first and answer the
others from the reply it kept. Every replica's state machine is a `ClusterState` built
with an observer from `ExactlyOnce.observer(node)` (its public `ApplyObserver` hook),
which is told each time a session request's command is really executed (not answered
from the table). Across every replica and every incarnation, a (session, seq) must be
executed at one log index only: a replica replaying its log after a restart executes it
again at that same index, which is fine; at a second index it is a double application,
and a `SafetyViolation` ("exactly-once").
"""

from __future__ import annotations

from collections.abc import Callable

from chaos.sim.invariants import SafetyViolation
from statemachine.cluster import ApplyObserver
from statemachine.sessions.messages import SessionRequest

INVARIANT = "exactly-once"


class ExactlyOnce:
    """Where each (session, seq) was executed; fails on a second index."""

    def __init__(self, fail: Callable[[str, str, tuple[int, ...]], SafetyViolation]) -> None:
        self._fail = fail
        self.executed: dict[tuple[int, int], tuple[int, int]] = {}  # -> (index, first node)
        self.executions = 0  # commands executed in a session (replays included)

    def observer(self, node: int) -> ApplyObserver:
        """The observer for `node`'s state machine (`ClusterState(observer=...)`)."""
        return _NodeObserver(self, node)

    def on_executed(self, node: int, session: int, seq: int, index: int) -> None:
        self.executions += 1
        first = self.executed.setdefault((session, seq), (index, node))
        if first[0] != index:
            raise self._fail(
                INVARIANT,
                f"node {node} executed session {session}'s request {seq} at index {index}; "
                f"node {first[1]} executed it at index {first[0]}",
                (node, first[1]),
            )


class _NodeObserver:
    __slots__ = ("_check", "_node")

    def __init__(self, check: ExactlyOnce, node: int) -> None:
        self._check, self._node = check, node

    def executed(self, index: int, request: SessionRequest) -> None:
        self._check.on_executed(self._node, request.session, request.seq, index)
