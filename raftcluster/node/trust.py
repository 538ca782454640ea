"""What a node lets each caller do: client requests only from clients, reads only from a
read-only key, and revoked keys shut out (docs/security.md).

    is_client_request(body)             what a client connection may carry (the transport
                                        closes one that sends anything else, and logs why)
    read_only_refusal(caller, request)  the refusal of a write from a read-only credential
    watch_client_keys(keys, transport)  re-read the key file on a timer; close the client
                                        connections of revoked keys
    member_refusal(conf, id, incarnation)
                                        why a node may not link up under that member
                                        incarnation (the transport's member check)
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
from raftcluster.raft.membership import is_member
from raftcluster.raft.types import ConfState
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


def member_refusal(conf: ConfState, node_id: int, incarnation: int) -> str | None:
    """Why node `node_id` may not link up under member `incarnation`, judged by `conf` (the
    configuration in force on this node: the latest in its log); None when it may.

    The rule:
    - a member of `conf` must come with the incarnation `conf` records for it (0 when it
      records none: a founding member). So once `member replace` (remove, then add with a
      fresh incarnation) has reached this node's log, a process of the old identity that
      still runs is refused at every handshake; and a new process of a member this node
      still knows under its old incarnation (this node is behind) waits until this node
      has the replacement (it redials with backoff; the leader, whose log has it, takes it
      meanwhile).
    - a node that is not a member of `conf` is not judged here: this node may be behind
      (a learner being added that its log does not hold yet), or be joining itself (its
      empty configuration records nobody, not even the leader that must reach it).
      Refusing would stall exactly those joins; the transport's peer set already refuses
      ids it does not know (UNKNOWN_PEER) and drops a member once its removal is applied,
      and the Raft core counts no vote from a non-member.

    Why the latest configuration and not the applied one: it is the one the core and the
    transport follow (a leader replicates to a new learner from the moment it appends
    it), and it is never older than the applied one, so an old identity is refused as
    soon as this node's log holds its replacement, not only once that is applied.
    """
    if not is_member(conf, node_id):
        return None
    recorded = conf.member(node_id)
    expected = recorded.incarnation if recorded is not None else 0
    if incarnation == expected:
        return None
    return (
        f"node {node_id} came with member incarnation {incarnation}, but the configuration "
        f"records incarnation {expected} for it (a replaced member's old process, or this "
        "node has not yet seen the replacement)"
    )
