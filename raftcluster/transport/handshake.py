"""Mutual authentication with the cluster secret, and the per-connection keys.

Four messages, each a small untagged frame:

    dialer   -> acceptor   Hello(version, cluster_id, kind, sender_id, expected_id, link,
                                 incarnation_d, nonce_d)
    acceptor -> dialer     Challenge(version, acceptor_id, incarnation_a, nonce_a)
                                                                         or Refused(reason)
    dialer   -> acceptor   Proof(HMAC(secret, "dialer proof" | T))
    acceptor -> dialer     Proof(HMAC(secret, "acceptor proof" | T))    or Refused(BAD_PROOF)
                                                     or Refused(PART_SET, acceptor's marks)

T, the transcript, is the canonical CBOR of both versions, the cluster id, the
dialer's kind and id, the acceptor's id, the link index, both incarnations, both
nonces and the dialer's part marks. So a proof
is bound to this connection (both fresh nonces: a replay fails), to both identities
and the cluster (it cannot be reused elsewhere), and to its direction (the labels
differ: a reflected proof fails). The acceptor proves only after the dialer did, so
nobody without the secret can make a node compute a proof for them. Proofs are
compared in constant time.

Nodes must run the same state machine parts (`statemachine.partset`): the dialer's
Hello carries its part marks, and an acceptor whose own differ refuses with PART_SET
once the dialer has proved the secret (so only a holder of the secret learns the
acceptor's marks). Both sides then say which part differs, in their own terms.

Both sides then derive one key per direction, HMAC(secret, label | T), that tags
every later frame (see `framing`). The caller bounds the whole exchange with the
handshake deadline.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable

import attrs
import trio

from raftcluster.transport.errors import (
    AuthenticationFailed,
    FrameTooLarge,
    HandshakeFailed,
    RefusalReason,
)
from raftcluster.transport.framing import FrameParser, FrameSealer
from raftcluster.transport.wire import (
    PROTOCOL_VERSION,
    Challenge,
    HandshakeMessage,
    Hello,
    PeerKind,
    Proof,
    Refused,
    decode_strict,
)
from statemachine.codec import encode, encode_value
from statemachine.errors import DecodeError
from statemachine.partset import NO_PARTS, PartSet

_DOMAIN = "raftcluster/transport/handshake/v1"
_RECEIVE_CHUNK = 4096


class Role(enum.Enum):
    DIALER = b"dialer proof"
    ACCEPTOR = b"acceptor proof"


@attrs.frozen
class Session:
    """The outcome of a handshake: who is on the other side, and the frame keys."""

    peer_kind: PeerKind
    peer_id: int
    link: int
    peer_incarnation: int
    send_key: bytes = attrs.field(repr=False)
    receive_key: bytes = attrs.field(repr=False)


def transcript(hello: Hello, challenge: Challenge) -> bytes:
    """The bytes both proofs and both keys are bound to (unambiguous: a CBOR array)."""
    return encode_value(
        [
            _DOMAIN,
            hello.version,
            challenge.version,
            hello.cluster_id,
            int(hello.kind),
            hello.sender_id,
            challenge.acceptor_id,
            hello.link,
            hello.incarnation,
            challenge.incarnation,
            hello.nonce,
            challenge.nonce,
            hello.parts,
        ]
    )


def proof(secret: bytes, role: Role, transcript_bytes: bytes) -> bytes:
    return hmac.digest(secret, role.value + b"\0" + transcript_bytes, hashlib.sha256)


def session_keys(secret: bytes, transcript_bytes: bytes) -> tuple[bytes, bytes]:
    """(dialer-to-acceptor key, acceptor-to-dialer key)."""
    forward = hmac.digest(secret, b"key dialer->acceptor\0" + transcript_bytes, hashlib.sha256)
    backward = hmac.digest(secret, b"key acceptor->dialer\0" + transcript_bytes, hashlib.sha256)
    return forward, backward


def verify(secret: bytes, role: Role, transcript_bytes: bytes, candidate: Proof) -> bool:
    return hmac.compare_digest(proof(secret, role, transcript_bytes), candidate.mac)


async def _receive(stream: trio.abc.Stream, parser: FrameParser) -> HandshakeMessage:
    """Read one handshake message. Raises HandshakeFailed(MALFORMED) for anything odd."""
    while True:
        try:
            body = parser.next_frame()
        except FrameTooLarge as e:
            raise HandshakeFailed(RefusalReason.MALFORMED, str(e), by_peer=False) from None
        if body is not None:
            break
        data = await stream.receive_some(_RECEIVE_CHUNK)
        if not data:
            raise HandshakeFailed(
                RefusalReason.MALFORMED, "connection closed during the handshake", by_peer=False
            )
        parser.feed(data)
    try:
        return decode_strict(body, HandshakeMessage)
    except DecodeError as e:
        raise HandshakeFailed(RefusalReason.MALFORMED, str(e), by_peer=False) from None


def _refused_by_peer(message: Refused, who: str) -> HandshakeFailed:
    if message.reason == RefusalReason.BAD_PROOF:
        return AuthenticationFailed(f"{who} did not accept our proof (wrong secret?)", by_peer=True)
    return HandshakeFailed(message.reason, f"{who} refused the connection", by_peer=True)


def _unexpected(message: HandshakeMessage, wanted: str) -> HandshakeFailed:
    return HandshakeFailed(
        RefusalReason.MALFORMED, f"expected {wanted}, got {type(message).__name__}", by_peer=False
    )


async def _send(stream: trio.abc.Stream, sealer: FrameSealer, message: HandshakeMessage) -> None:
    await stream.send_all(sealer.seal(encode(message)))


async def dial(
    stream: trio.abc.Stream,
    parser: FrameParser,
    sealer: FrameSealer,
    *,
    secret: bytes,
    hello: Hello,
    max_frame_bytes: int,
    parts: PartSet = NO_PARTS,
) -> Session:
    """Run the dialer's side. On success `parser` and `sealer` are switched to the keys.
    `parts` is the part set whose marks `hello` carries (to name a difference).

    Raises HandshakeFailed (AuthenticationFailed when a proof fails either way; reason
    PART_SET, saying which part differs, when the acceptor runs other parts).
    Cancellation leaves the stream mid-handshake: the caller must close it.
    """
    await _send(stream, sealer, hello)
    reply = await _receive(stream, parser)
    if isinstance(reply, Refused):
        raise _refused_by_peer(reply, "the acceptor")
    if not isinstance(reply, Challenge):
        raise _unexpected(reply, "Challenge")
    if reply.version != PROTOCOL_VERSION:
        raise HandshakeFailed(
            RefusalReason.VERSION, f"acceptor speaks version {reply.version}", by_peer=False
        )
    if hello.expected_id and reply.acceptor_id != hello.expected_id:
        raise HandshakeFailed(
            RefusalReason.WRONG_NODE,
            f"expected node {hello.expected_id}, reached node {reply.acceptor_id}",
            by_peer=False,
        )
    agreed = transcript(hello, reply)
    await _send(stream, sealer, Proof(proof(secret, Role.DIALER, agreed)))
    answer = await _receive(stream, parser)
    if isinstance(answer, Refused) and answer.reason == RefusalReason.PART_SET:
        here, there = f"node {hello.sender_id}", f"node {reply.acceptor_id}"
        raise HandshakeFailed(
            RefusalReason.PART_SET,
            _parts_differ(parts, answer.parts, here=here, there=there),
            by_peer=True,
        )
    if isinstance(answer, Refused):
        raise _refused_by_peer(answer, f"node {reply.acceptor_id}")
    if not isinstance(answer, Proof):
        raise _unexpected(answer, "Proof")
    if not verify(secret, Role.ACCEPTOR, agreed, answer):
        raise AuthenticationFailed(
            f"node {reply.acceptor_id} did not prove the cluster secret", by_peer=False
        )
    forward, backward = session_keys(secret, agreed)
    sealer.authenticate(forward)
    parser.authenticate(backward, max_frame_bytes)
    return Session(
        PeerKind.NODE, reply.acceptor_id, hello.link, reply.incarnation, forward, backward
    )


async def accept(
    stream: trio.abc.Stream,
    parser: FrameParser,
    sealer: FrameSealer,
    *,
    secret: bytes,
    cluster_id: str,
    node_id: int,
    incarnation: int,
    nonce: bytes,
    policy: Callable[[Hello], RefusalReason | None],
    max_frame_bytes: int,
    parts: PartSet = NO_PARTS,
) -> Session:
    """Run the acceptor's side. `policy` vets the (still unauthenticated) Hello; a node
    whose part marks differ from `parts`' is refused (PART_SET) once it proved the secret.

    On success `parser` and `sealer` are switched to the keys. Raises HandshakeFailed;
    a refusal is first told to the dialer (best effort). Cancellation leaves the
    stream mid-handshake: the caller must close it.
    """
    hello = await _receive(stream, parser)
    if not isinstance(hello, Hello):
        raise _unexpected(hello, "Hello")
    reason = _vet(hello, cluster_id, policy)
    if reason is not None:
        await _send(stream, sealer, Refused(reason))
        raise HandshakeFailed(reason, f"{hello.kind.name.lower()} {hello.sender_id}", by_peer=False)
    challenge = Challenge(PROTOCOL_VERSION, node_id, incarnation, nonce)
    await _send(stream, sealer, challenge)
    candidate = await _receive(stream, parser)
    if not isinstance(candidate, Proof):
        raise _unexpected(candidate, "Proof")
    agreed = transcript(hello, challenge)
    if not verify(secret, Role.DIALER, agreed, candidate):
        await _send(stream, sealer, Refused(RefusalReason.BAD_PROOF))
        raise AuthenticationFailed(
            f"{hello.kind.name.lower()} {hello.sender_id} did not prove the cluster secret",
            by_peer=False,
        )
    if hello.kind is PeerKind.NODE and hello.parts != parts.marks:
        await _send(stream, sealer, Refused(RefusalReason.PART_SET, parts=parts.marks))
        here, there = f"node {node_id}", f"node {hello.sender_id}"
        raise HandshakeFailed(
            RefusalReason.PART_SET,
            _parts_differ(parts, hello.parts, here=here, there=there),
            by_peer=False,
        )
    await _send(stream, sealer, Proof(proof(secret, Role.ACCEPTOR, agreed)))
    forward, backward = session_keys(secret, agreed)
    sealer.authenticate(backward)
    parser.authenticate(forward, max_frame_bytes)
    return Session(hello.kind, hello.sender_id, hello.link, hello.incarnation, backward, forward)


def _parts_differ(parts: PartSet, theirs: bytes, *, here: str, there: str) -> str:
    difference = parts.difference(theirs, here=here, there=there) or "their marks differ"
    return f"{there} runs other state machine parts than {here}: {difference}"


def _vet(
    hello: Hello, cluster_id: str, policy: Callable[[Hello], RefusalReason | None]
) -> RefusalReason | None:
    if hello.version != PROTOCOL_VERSION:
        return RefusalReason.VERSION
    if hello.cluster_id != cluster_id:
        return RefusalReason.WRONG_CLUSTER
    return policy(hello)
