"""Messages on the wire: the handshake, the frames of each channel, and the stats.

Tags 2000-2099 of the "transport, RPC and client protocol" range belong here
(2000-2009 handshake, 2010-2029 frames, 2030-2039 reserved for the stream
channel, 2050-2059 stats, 2099 the transport benchmark's payload); the client
protocol takes 2100 and up.

Decoding goes through `decode_strict`: CBOR semantic tags (shared references,
regular expressions, MIME, dates, bignums...) are refused before the codec sees
the value, because our canonical encoding never produces them and some of them
let a small input build a cyclic or exponentially shared value.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import attrs

from raftcluster.transport.errors import RefusalReason, RpcErrorCode
from statemachine.codec import (
    MAX_CBOR_DEPTH,
    Message,
    decode,
    int_range,
    max_len,
    non_negative,
    parse,
    tagged,
)
from statemachine.errors import InvalidArgument
from statemachine.partset import MARK_BYTES, MAX_MARKS_BYTES

# 2: the Hello and the Challenge carry the member incarnation (and, since version 1 was
# first used, the part marks and the client credential): a node of version 1 and one of
# version 2 refuse each other with the VERSION reason.
PROTOCOL_VERSION = 2
NONCE_BYTES = 32
PROOF_BYTES = 32
# A handshake message is small: scalars, and a node's part marks (16 bytes per part, at
# most MAX_MARKS_BYTES); anything longer is refused.
MAX_HANDSHAKE_FRAME_BYTES = 256 + MAX_MARKS_BYTES
MAX_REASON_CHARS = 512
MAX_DEPTH = MAX_CBOR_DEPTH

M = TypeVar("M", bound=Message)


class PeerKind(enum.IntEnum):
    NODE = 1
    CLIENT = 2


def exact_len(length: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: bytes) -> None:
        if len(value) != length:
            raise InvalidArgument(
                f"{type(instance).__name__}.{attribute.name}",
                f"{len(value)} bytes, expected {length}",
            )

    return check


MAX_FLOWS = 64  # raft flows per peer: 0..63
_ID = int_range(1, 2**63 - 1)
_LINK = int_range(0, 7)
_INCARNATION = int_range(0, 2**63 - 1)


def _part_marks(instance: Any, attribute: attrs.Attribute[Any], value: bytes) -> None:
    if len(value) > MAX_MARKS_BYTES or len(value) % MARK_BYTES:
        raise InvalidArgument(
            f"{type(instance).__name__}.{attribute.name}",
            f"{len(value)} bytes: part marks are {MARK_BYTES} bytes a part, at most "
            f"{MAX_MARKS_BYTES}",
        )


# -- handshake (decoded before authentication: scalars only, small) ----------------------


class HandshakeMessage(Message):
    __slots__ = ()


@tagged(2000)
@attrs.frozen
class Hello(HandshakeMessage):
    """Dialer -> acceptor: who I am, whom I expect, which link, my nonce (a client: and
    which credential it proves).

    `incarnation` is drawn afresh each time a transport starts, so the receiver of
    raft frames can tell a restarted peer (whose sequence numbers start over) apart.
    `parts` is a node's part-set marks (`statemachine.partset`; empty from a client):
    two nodes connect only if theirs are equal. `member_incarnation` is a node's
    identity in the log (`raftcluster.raft.types.Member.incarnation`: 0 for a founding
    member); the acceptor refuses it when its configuration records another (STALE_MEMBER).
    """

    version: int = attrs.field(validator=non_negative)
    cluster_id: str = attrs.field(validator=max_len(64, "characters"))
    kind: PeerKind
    sender_id: int = attrs.field(validator=_ID)
    expected_id: int = attrs.field(validator=int_range(0, 2**63 - 1))  # 0: any node
    link: int = attrs.field(validator=_LINK)
    incarnation: int = attrs.field(validator=_INCARNATION)
    nonce: bytes = attrs.field(validator=exact_len(NONCE_BYTES))
    parts: bytes = attrs.field(default=b"", validator=_part_marks)
    # A client's credential: "" the client secret, else the name of a client key
    # (raftcluster.transport.credentials). A node's Hello leaves it "".
    credential: str = attrs.field(default="", validator=max_len(48, "characters"))
    member_incarnation: int = attrs.field(default=0, validator=_INCARNATION)


@tagged(2001)
@attrs.frozen
class Challenge(HandshakeMessage):
    """Acceptor -> dialer: my node id, my (transport) incarnation and my nonce, and my
    member incarnation (which a dialing node checks as the acceptor checks the Hello's)."""

    version: int = attrs.field(validator=non_negative)
    acceptor_id: int = attrs.field(validator=_ID)
    incarnation: int = attrs.field(validator=_INCARNATION)
    nonce: bytes = attrs.field(validator=exact_len(NONCE_BYTES))
    member_incarnation: int = attrs.field(default=0, validator=_INCARNATION)


@tagged(2002)
@attrs.frozen
class Proof(HandshakeMessage):
    """HMAC-SHA256 of the transcript under the cluster secret, labelled by direction."""

    mac: bytes = attrs.field(validator=exact_len(PROOF_BYTES))


@tagged(2003)
@attrs.frozen
class Refused(HandshakeMessage):
    """Acceptor -> dialer, then close: the handshake is refused for this reason.

    A `PART_SET` refusal (sent only once the dialer proved the secret) carries the
    acceptor's part marks, so that the dialer can say which part differs."""

    reason: RefusalReason
    parts: bytes = attrs.field(default=b"", validator=_part_marks)


# -- frames (decoded only after the frame's MAC verified) --------------------------------


class Frame(Message):
    """One unit on an authenticated connection; its class says which channel it is on."""

    __slots__ = ()


@tagged(2010)
@attrs.frozen
class Keepalive(Frame):
    """Sent after a quiet interval so the other side can tell a live link from a dead one."""


@tagged(2011)
@attrs.frozen
class RaftFrame(Frame):
    """Raft channel: one fire-and-forget message, numbered within its flow.

    The receiver delivers a flow's messages only in increasing `seq` order and
    discards any that arrive after a later one (overtaken during a link change), so
    each flow is a FIFO channel that may lose messages but never reorders them.
    """

    flow: int = attrs.field(validator=int_range(0, MAX_FLOWS - 1))
    seq: int = attrs.field(validator=non_negative)
    message: Message


@tagged(2012)
@attrs.frozen
class RpcRequest(Frame):
    """RPC channel: a request. `timeout_ms` is relative, so clocks need not agree."""

    call_id: int = attrs.field(validator=_ID)
    timeout_ms: int = attrs.field(validator=int_range(1, 24 * 3600 * 1000))
    body: Message


@tagged(2013)
@attrs.frozen
class RpcResponse(Frame):
    call_id: int = attrs.field(validator=_ID)
    body: Message


@tagged(2014)
@attrs.frozen
class RpcFailure(Frame):
    call_id: int = attrs.field(validator=_ID)
    code: RpcErrorCode
    reason: str = attrs.field(validator=max_len(MAX_REASON_CHARS, "characters"))


# -- stats (so `status` can carry them over RPC) -----------------------------------------


@tagged(2050)
@attrs.frozen
class LinkStats(Message):
    index: int
    address: str  # dialer: the configured address; acceptor: where the peer dialed from
    connected: bool
    bytes_in: int
    bytes_out: int
    frames_in: int
    frames_out: int
    connections_opened: int
    dial_failures: int
    last_error: str


@tagged(2051)
@attrs.frozen
class PeerStats(Message):
    node_id: int
    connected: bool
    link_in_use: int  # index of the link carrying the raft channel, -1 when none
    links: tuple[LinkStats, ...]
    raft_sent: int  # raft messages accepted by send()
    raft_received: int
    dropped_queue_full: int
    dropped_no_link: int
    dropped_by_faults: int
    lost_on_close: int  # queued raft messages discarded when no live link remained
    discarded_out_of_order: int  # received but overtaken, or from a previous incarnation

    @property
    def bytes_in(self) -> int:
        return sum(link.bytes_in for link in self.links)

    @property
    def bytes_out(self) -> int:
        return sum(link.bytes_out for link in self.links)

    @property
    def frames_in(self) -> int:
        return sum(link.frames_in for link in self.links)

    @property
    def frames_out(self) -> int:
        return sum(link.frames_out for link in self.links)

    @property
    def dropped(self) -> int:
        return (
            self.dropped_queue_full
            + self.dropped_no_link
            + self.dropped_by_faults
            + self.lost_on_close
        )

    @property
    def reconnects(self) -> int:
        return sum(max(0, link.connections_opened - 1) for link in self.links)


@tagged(2052)
@attrs.frozen
class TransportStats(Message):
    node_id: int
    listen: tuple[str, ...]
    peers: tuple[PeerStats, ...]
    clients_connected: int
    handshakes_refused: int
    connections_failed: int  # closed for a protocol error, an idle or write timeout
    inbox_dropped: int

    def peer(self, node_id: int) -> PeerStats:
        for stats in self.peers:
            if stats.node_id == node_id:
                return stats
        raise KeyError(node_id)


# -- strict decoding ----------------------------------------------------------------------

# The codec's own `parse` and `decode` refuse every CBOR tag, indefinite lengths and deep
# nesting; the transport keeps these names for its callers.
parse_cbor = parse
decode_strict = decode
