"""Errors the Raft core raises to its caller (the shell), all `ClusterError`s.

Each one means the request was not taken: nothing was appended or queued, so the caller
may retry elsewhere (NotLeader) or later (RequestDropped) without risk of a duplicate.
"""

from __future__ import annotations

from statemachine.errors import ClusterError


class RaftError(ClusterError):
    """Root of the Raft core's errors."""


class NotLeader(RaftError):
    """Only the leader takes proposals, membership changes and transfers.

    `leader` is the node this one believes leads (0 when it knows of none): a hint, not a
    promise.
    """

    def __init__(self, node_id: int, leader: int) -> None:
        hint = f"node {leader} may be" if leader else "no leader is known"
        super().__init__(f"node {node_id} is not the leader; {hint}")
        self.node_id = node_id
        self.leader = leader


class RequestDropped(RaftError):
    """The leader refused the request for now (transfer in progress, queue full...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfChangeRejected(RequestDropped):
    """A membership change that is not allowed now or at all (see `reason`)."""
