"""The admin protocol: what operators and the chaos harness ask a node (tags 2200-2299).

Admin requests travel on the same authenticated RPC channel as client requests (a
caller must hold a client credential; a read-only key may only inspect: GetNodeInfo and
GetFaults), and are answered by the node runtime itself, not by the Raft log.

Requests
    GetNodeInfo()                   who the node is and how it is doing -> NodeInfo
    SetFaults(peer, drop, delay, blocked)
                                    message loss / delay / blocking on this node's outgoing
                                    traffic to `peer` (the transport's fault layer) -> FaultsState
    ClearFaults(peer)               heal `peer`, or every peer when `peer` is 0 -> FaultsState
    GetFaults()                     the faults set now -> FaultsState

The fault requests are refused with `Refused(BAD_REQUEST)` unless the cluster file sets
`cluster.allow_fault_injection` (a holder of the secret could otherwise partition the
cluster at will).
"""

from __future__ import annotations

from typing import Any

import attrs

from raftcluster.node.protocol import NodeStatus
from raftcluster.transport.faults import MAX_FAULT_DELAY_MS
from raftcluster.transport.wire import TransportStats
from statemachine.codec import Message, int_range, max_len, non_negative, positive, tagged
from statemachine.errors import InvalidArgument

MAX_TEXT_CHARS = 256
MAX_PEERS = 64


def _probability(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InvalidArgument(f"{type(instance).__name__}.{attribute.name}", f"{value} not in 0..1")


class AdminRequest(Message):
    """A request the node runtime answers itself."""

    __slots__ = ()


class AdminReply(Message):
    __slots__ = ()


@tagged(2200)
@attrs.frozen
class GetNodeInfo(AdminRequest):
    pass


@tagged(2201)
@attrs.frozen
class SetFaults(AdminRequest):
    peer: int = attrs.field(validator=positive)
    drop_probability: float = attrs.field(default=0.0, validator=_probability)
    delay_ms: int = attrs.field(default=0, validator=int_range(0, MAX_FAULT_DELAY_MS))
    blocked: bool = False


@tagged(2202)
@attrs.frozen
class ClearFaults(AdminRequest):
    peer: int = attrs.field(default=0, validator=non_negative)  # 0: every peer


@tagged(2203)
@attrs.frozen
class GetFaults(AdminRequest):
    pass


@tagged(2250)
@attrs.frozen
class PeerFaultState(Message):
    peer: int
    drop_probability: float
    delay_ms: int
    blocked: bool


@tagged(2251)
@attrs.frozen
class FaultsState(AdminReply):
    faults: tuple[PeerFaultState, ...] = attrs.field(validator=max_len(MAX_PEERS, "peers"))


@tagged(2252)
@attrs.frozen
class NodeInfo(AdminReply):
    """A node's identity and health: its Raft status, its transport's counters, and how
    its Ready cycles went (`syncs` fsyncs for `cycles` cycles: the group commit ratio)."""

    node_id: int
    cluster_id: str = attrs.field(validator=max_len(MAX_TEXT_CHARS, "characters"))
    pid: int
    version: str = attrs.field(validator=max_len(MAX_TEXT_CHARS, "characters"))
    addresses: tuple[str, ...] = attrs.field(validator=max_len(MAX_PEERS, "addresses"))
    data_dir: str = attrs.field(validator=max_len(4096, "characters"))
    uptime_ms: int
    status: NodeStatus
    transport: TransportStats
    cycles: int
    syncs: int
    pending_requests: int
    faults_allowed: bool
