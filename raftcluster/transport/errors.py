"""Errors of the transport, rooted at `statemachine.errors.ClusterError`.

Two families matter to callers:

- `RpcFailed` and its subclasses are what `call()` raises. Each says, through
  `may_have_executed`, whether the remote handler might have run: `PeerUnreachable`
  (the request was never handed to a connection) is a definite "not executed";
  `RpcTimeout` and `ConnectionLost` mean the outcome is unknown, so only an
  idempotent request (or one carrying a client session sequence) may be retried.
- `HandshakeFailed`, `ProtocolError` and `IdleTimeout` end one connection. The
  transport logs them with the reason and keeps serving everyone else; a client
  connecting with `connect_rpc` sees `HandshakeFailed` directly.
"""

from __future__ import annotations

import enum

from statemachine.errors import ClusterError


class RefusalReason(enum.IntEnum):
    """Why a handshake was refused. Sent to the dialer in a `Refused` message."""

    VERSION = 1  # protocol version not supported
    WRONG_CLUSTER = 2  # the dialer names another cluster id
    UNKNOWN_PEER = 3  # the dialer's node id is not a configured peer
    WRONG_NODE = 4  # the dialer expected another node id at this address
    BAD_PROOF = 5  # the proof does not match: wrong secret (or a forgery)
    CLIENTS_NOT_ACCEPTED = 6  # this listener takes node connections only
    WRONG_DIRECTION = 7  # nodes dial peers with higher ids only; this one should be dialed
    BAD_LINK = 8  # link index out of range
    TIMEOUT = 9  # the handshake did not finish before its deadline (local only)
    MALFORMED = 10  # a handshake message was not what the protocol expects (local only)
    BUSY = 11  # too many client connections
    PART_SET = 12  # the nodes run different state machine parts (sent after the dialer's proof)
    UNKNOWN_CREDENTIAL = 13  # a client names a credential this node does not hold (or revoked)
    STALE_MEMBER = 14  # the node's member incarnation is not the one the configuration records
    CERT_MISMATCH = 15  # the TLS certificate does not name the identity the Hello claims


class RpcErrorCode(enum.IntEnum):
    """Why a remote peer answered a request with a failure instead of a response."""

    NO_HANDLER = 1  # the peer serves no RPCs: nothing ran
    OVERLOADED = 2  # too many requests in flight on this connection: nothing ran
    HANDLER_FAILED = 3  # the handler raised or returned a non-message: it may have run
    DEADLINE_EXCEEDED = 4  # the handler did not finish within the request's timeout
    RESPONSE_TOO_LARGE = 5  # the handler's response does not fit in one frame


class TransportError(ClusterError):
    """Root of every error the transport raises."""


class UnknownPeer(TransportError, LookupError):
    """A node id that is not a configured peer of this transport."""

    def __init__(self, peer_id: int) -> None:
        super().__init__(f"node {peer_id} is not a configured peer")
        self.peer_id = peer_id


class HandshakeFailed(TransportError):
    """The connection was not authenticated; it is closed.

    `reason` says why; `by_peer` is True when the remote side refused us (it sent a
    `Refused` message), False when we refused or gave up on the remote side.
    """

    def __init__(self, reason: RefusalReason, detail: str, *, by_peer: bool) -> None:
        who = "refused by peer" if by_peer else "refused"
        super().__init__(f"handshake {who}: {reason.name.lower()}: {detail}")
        self.reason = reason
        self.detail = detail
        self.by_peer = by_peer


class AuthenticationFailed(HandshakeFailed):
    """A proof of the cluster secret did not verify: a wrong secret or a forgery."""

    def __init__(self, detail: str, *, by_peer: bool) -> None:
        super().__init__(RefusalReason.BAD_PROOF, detail, by_peer=by_peer)


class ProtocolError(TransportError):
    """An authenticated peer broke the framing or the message protocol; the connection closes."""


class FrameTooLarge(ProtocolError):
    """A length prefix announced more than the frame size limit (checked before the body)."""

    def __init__(self, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(f"frame of {size_bytes} bytes announced, limit is {limit_bytes} bytes")
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


class UnauthenticatedFrame(ProtocolError):
    """A frame whose MAC does not verify: forged, corrupted, replayed or reordered."""


class TruncatedFrame(ProtocolError):
    """The stream ended in the middle of a frame."""


class IdleTimeout(TransportError):
    """Nothing arrived on a connection for longer than the idle timeout (a dead link)."""


class RpcFailed(TransportError):
    """A `call()` did not produce a response.

    `may_have_executed` is False only when the request certainly did not run remotely.
    """

    may_have_executed: bool = True


class PeerUnreachable(RpcFailed):
    """No connection to the peer within the deadline: the request was never sent."""

    may_have_executed = False


class RpcTimeout(RpcFailed):
    """The request was sent but no answer came before the deadline: outcome unknown."""


class ConnectionLost(RpcFailed):
    """The connection closed after the request was sent and before the answer: outcome unknown."""


class RemoteError(RpcFailed):
    """The peer answered with a failure code instead of a response."""

    def __init__(self, code: RpcErrorCode, reason: str) -> None:
        super().__init__(f"remote {code.name.lower()}: {reason}")
        self.code = code
        self.reason = reason
        self.may_have_executed = code not in (RpcErrorCode.NO_HANDLER, RpcErrorCode.OVERLOADED)
