"""What a node lets each caller do: client requests only from clients, reads only from a
read-only key, and revoked keys shut out (docs/security.md).

    is_client_request(body)             what a client connection may carry (the transport
                                        closes one that sends anything else, and logs why)
    read_only_refusal(caller, request)  the refusal of a write from a read-only credential
    watch_client_keys(keys, transport)  re-read the key file on a timer; close the client
                                        connections of revoked keys
"""

from __future__ import annotations

import trio

from raftcluster.config.client_keys import ClientKeyFile
from raftcluster.node.admin import AdminRequest, GetFaults, GetNodeInfo
from raftcluster.node.protocol import (
    ClientRequest,
    GetStatus,
    Query,
    RefuseCode,
    Refused,
    WaitChanges,
)
from raftcluster.transport import Caller, PeerKind, Transport
from statemachine.codec import Message

# How often a node looks at the key file for revocations (a handshake always looks).
# A revoked key's open connections last at most this long.
KEYS_POLL_MS = 1000

# What a read-only credential may ask: reads and inspection, nothing that changes state
# (an allow-list, so that a request type added later is a write until listed here).
READ_ONLY_REQUESTS: tuple[type[Message], ...] = (
    Query,
    GetStatus,
    WaitChanges,
    GetNodeInfo,
    GetFaults,
)


def is_client_request(body: Message) -> bool:
    """Whether a client may send `body` (the client protocol and the admin requests)."""
    return isinstance(body, ClientRequest | AdminRequest)


def read_only_refusal(caller: Caller, request: Message) -> Refused | None:
    """BAD_REQUEST (definite: nothing was done) for a write from a read-only credential."""
    if caller.kind is not PeerKind.CLIENT or not caller.read_only:
        return None
    if isinstance(request, READ_ONLY_REQUESTS):
        return None
    what = type(request).__name__
    return Refused.of(
        RefuseCode.BAD_REQUEST,
        f"client key {caller.credential!r} is read-only: {what} is not allowed",
    )


async def watch_client_keys(keys: ClientKeyFile, transport: Transport) -> None:
    """Every `KEYS_POLL_MS`, re-read the key file if it changed and close the client
    connections whose key was revoked or changed. Runs until cancelled (cancellation:
    nothing to undo)."""
    seen = keys.generation
    while True:
        await trio.sleep(KEYS_POLL_MS / 1000)
        keys.refresh()
        if keys.generation != seen:  # changed, here or in a handshake that re-read the file
            seen = keys.generation
            transport.revalidate_clients()
