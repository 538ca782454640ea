"""The communications manager: authenticated, multiplexed, bonded links between nodes.

Public surface (everything else in the package is private and may move):

    Transport(config, *, rng, rpc_handler=None, faults=None)
        await nursery.start(transport.serve)   or   async with transport: ...
        transport.send(peer_id, message, *, flow=0) -> bool       raft channel, never blocks
        transport.inbox                                            MemoryReceiveChannel[Incoming]
        transport.set_raft_handler(handler)       handler(peer_id, message), instead of the inbox
        await transport.call(peer_id, request, *, timeout_ms)     rpc channel -> response
        transport.set_rpc_handler(handler)        async handler(caller, request) -> response
        transport.set_rpc_submit(submit)          submit(caller, request, respond) -> taken
        transport.set_after_reading(hook)         hook() after each batch of frames read
        transport.set_link_down_handler(handler)  handler(peer_id): the peer closed its last link
        transport.set_client_requests(accepts)    accepts(body): what a client may ask
        transport.revalidate_clients() -> closed  end clients whose credential was revoked
        transport.set_peer(node_id, addresses) / remove_peer(node_id)
        transport.stats() -> TransportStats;  transport.faults -> FaultLayer
    connect_rpc(address, ClientConfig, *, expected_node_id=0)     async with ... as RpcConnection
        await connection.call(request, *, timeout_ms) -> response
        connection.send_call(request, *, timeout_ms, on_outcome) -> sent (no waiting task)

See docs/transport.md for the guide and docs/security.md for the security model.
"""

from raftcluster.transport.backoff import Backoff
from raftcluster.transport.client import RpcConnection, connect_rpc
from raftcluster.transport.config import (
    Address,
    BondMode,
    ClientConfig,
    Limits,
    TlsConfig,
    TransportConfig,
)
from raftcluster.transport.connection import Caller, RpcHandler, RpcSubmit
from raftcluster.transport.credentials import ClientKey, ClientKeys, StaticClientKeys
from raftcluster.transport.errors import (
    AuthenticationFailed,
    ConnectionLost,
    FrameTooLarge,
    HandshakeFailed,
    IdleTimeout,
    PeerUnreachable,
    ProtocolError,
    RefusalReason,
    RemoteError,
    RpcErrorCode,
    RpcFailed,
    RpcTimeout,
    TransportError,
    TruncatedFrame,
    UnauthenticatedFrame,
    UnknownPeer,
)
from raftcluster.transport.faults import FaultLayer, PeerFaults
from raftcluster.transport.transport import Incoming, Transport
from raftcluster.transport.wire import LinkStats, PeerKind, PeerStats, TransportStats

__all__ = [
    "Address",
    "AuthenticationFailed",
    "Backoff",
    "BondMode",
    "Caller",
    "ClientConfig",
    "ClientKey",
    "ClientKeys",
    "ConnectionLost",
    "FaultLayer",
    "FrameTooLarge",
    "HandshakeFailed",
    "IdleTimeout",
    "Incoming",
    "Limits",
    "LinkStats",
    "PeerFaults",
    "PeerKind",
    "PeerStats",
    "PeerUnreachable",
    "ProtocolError",
    "RefusalReason",
    "RemoteError",
    "RpcConnection",
    "RpcErrorCode",
    "RpcFailed",
    "RpcHandler",
    "RpcSubmit",
    "RpcTimeout",
    "StaticClientKeys",
    "TlsConfig",
    "Transport",
    "TransportConfig",
    "TransportError",
    "TransportStats",
    "TruncatedFrame",
    "UnauthenticatedFrame",
    "UnknownPeer",
    "connect_rpc",
]
