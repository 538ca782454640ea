"""The cluster service's heartbeats (tags 370-371): how a node keeps its lease and how the
leader's node manager knows who is alive.

Every cluster-service member sends `NodeHeartbeat` to every peer (and to itself when it
leads) each `heartbeat_interval_ms`. Only a leader that has quorum contact answers, with
`NodeHeartbeatAck` echoing `sent_ms`: the node's lease then runs to `sent_ms +
fence_after_ms` on its own clock (`LeaseKeeper`). These messages travel between nodes
and never enter the log.
"""

from __future__ import annotations

import attrs

from statemachine.codec import Message, int_range, non_negative, tagged

_node = int_range(1, 2**31 - 1)


@tagged(370)
@attrs.frozen
class NodeHeartbeat(Message):
    """`node` (in its `incarnation`: its start count) is alive at `sent_ms`, its clock."""

    node: int = attrs.field(validator=_node)
    incarnation: int = attrs.field(validator=non_negative)
    sent_ms: int = attrs.field(validator=non_negative)


@tagged(371)
@attrs.frozen
class NodeHeartbeatAck(Message):
    """The leader of `term`, with quorum contact, heard `node`'s heartbeat of `sent_ms`,
    having applied the log up to `applied_index`.

    The lease it grants takes effect only once the node's own state has applied that far
    (`LeaseKeeper.applied`): the leader acks only a node its state has UP at its
    incarnation, so by then the node has also applied any `NodeDown` of itself and the
    grants that moved its groups away. Without it, a node back from a partition with a
    lagging log would restart groups under epochs that already moved elsewhere."""

    node: int = attrs.field(validator=_node)
    term: int = attrs.field(validator=non_negative)
    sent_ms: int = attrs.field(validator=non_negative)
    applied_index: int = attrs.field(default=0, validator=non_negative)
