"""Errors of the node runtime and the client, above those of the state machine.

Everything derives from `statemachine.errors.ClusterError`; `raftcluster` re-exports them.
A caller of a write sees one of three outcomes: success, a definite rejection (a
`Rejected` subclass from the state machine, or `Unavailable`: the write certainly had no
effect), or `OutcomeUnknown`.
"""

from __future__ import annotations

from statemachine.errors import ClusterError, Compacted, Rejected


class OutcomeUnknown(ClusterError):
    """The request's deadline passed without learning whether it was applied.

    It may have been applied once, or not at all; never twice. Retrying the same write in
    the same session is safe while the session lives (it is answered from the session's
    kept reply if it was applied); reading the state tells which happened.
    """


class Unavailable(ClusterError):
    """The cluster could not serve the request before its deadline (no leader reachable,
    overloaded...). The request certainly had no effect: trying again later is safe."""


class NotLeader(Unavailable):
    """The nodes this client can reach say another node leads, and that node is not
    among the client's endpoints (or did not answer). `leader` is its id: add its address
    to the endpoints (or connect with the cluster file, which lists every node). Nothing
    was applied."""

    def __init__(self, message: str, *, leader: int) -> None:
        super().__init__(message)
        self.leader = leader


class ClientClosed(ClusterError):
    """The client was used after it closed (or while closing). For a write cut short by
    the close, whether it was applied is unknown (see `OutcomeUnknown`)."""


class GroupNotFound(Rejected):
    """The cluster service has no group of that name (`name`)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no group named {name!r} (raftcluster group status lists them)")
        self.name = name


class NodeNotMember(Rejected):
    """The node is not a member of the cluster service (`node`)."""

    def __init__(self, node: int) -> None:
        super().__init__(
            f"node {node} is not a member of the cluster service (raftcluster node status "
            "lists the members)"
        )
        self.node = node


class EventsCompacted(Compacted):
    """The cluster service's events from the revision asked for are no longer kept (the
    part keeps the last `max_events`). `first_revision` is the oldest still available:
    read the current state (`groups.list()`, `nodes.list()`) and follow the events again
    from the revision of that read + 1."""

    @property
    def first_revision(self) -> int:
        return self.detail
