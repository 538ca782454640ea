"""Mutual authentication (nodes: the cluster secret; clients: a client credential),
and the per-connection keys.

Four messages, each a small untagged frame:

    dialer   -> acceptor   Hello(version, cluster_id, kind, sender_id, expected_id, link,
                                 incarnation_d, nonce_d, parts, credential, member_d)
    acceptor -> dialer     Challenge(version, acceptor_id, incarnation_a, nonce_a, member_a)
                                                                         or Refused(reason)
    dialer   -> acceptor   Proof(HMAC(secret, "dialer proof" | T))  or Refused(CERT_MISMATCH)
    acceptor -> dialer     Proof(HMAC(secret, "acceptor proof" | T))    or Refused(BAD_PROOF)
                                                     or Refused(PART_SET, acceptor's marks)
                                                     or Refused(STALE_MEMBER)

T, the transcript, is the canonical CBOR of both versions, the cluster id, the
dialer's kind and id, the acceptor's id, the link index, both incarnations, both
nonces, the dialer's part marks, the client's credential name and both member
incarnations. The secret is the
cluster secret between nodes, and the credential the Hello names for a client (its
client secret or a named client key), so a client credential never opens a node link.
So a proof
is bound to this connection (both fresh nonces: a replay fails), to both identities
and the cluster (it cannot be reused elsewhere), and to its direction (the labels
differ: a reflected proof fails). The acceptor proves only after the dialer did, so
nobody without the secret can make a node compute a proof for them. Proofs are
compared in constant time.

Nodes must run the same state machine parts (`statemachine.partset`): the dialer's
Hello carries its part marks, and an acceptor whose own differ refuses with PART_SET
once the dialer has proved the secret (so only a holder of the secret learns the
acceptor's marks). Both sides then say which part differs, in their own terms.

Member incarnations: a node's Hello (and the Challenge) carries the incarnation under
which the log records it (`raftcluster.raft.types.Member`). Once the dialer proved the
secret, the acceptor asks its `member_check(id, incarnation)` (the node's rule:
`raftcluster.node.trust.member_refusal`) and refuses with STALE_MEMBER, so a process of a
replaced member cannot link up under its old identity (PART_SET is checked first: a
lasting mismatch is the more useful news). A dialing node checks the acceptor's the same
way once the acceptor has answered its proof, and closes the connection (the acceptor
then sees its link close; the dialer logs why).

TLS identities (`certnames`): when the connection runs over TLS with names checked, the
caller passes the name of the certificate the peer presented (`peer_name`). The acceptor
refuses (CERT_MISMATCH, before any proof) a node whose certificate names another node id
or a client, and a client whose certificate does not fit its credential; a client
connection gets the rights of the key its certificate names (UNKNOWN_CREDENTIAL when that
key is revoked). The dialer refuses (Refused(CERT_MISMATCH) in place of its proof) an
acceptor whose certificate is not that of the node its Challenge names.

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

from raftcluster.transport import certnames
from raftcluster.transport.credentials import ClientKey
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

# `member_check(node_id, member_incarnation)`: why that node may not link up (None: it may).
MemberCheck = Callable[[int, int], "str | None"]


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
    # A client's side as its acceptor saw it: the credential it proved (None for a node).
    client_key: ClientKey | None = attrs.field(default=None, repr=False)


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
            hello.credential,
            hello.member_incarnation,
            challenge.member_incarnation,
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
    peer_name: str | None = None,
    member_check: MemberCheck | None = None,
) -> Session:
    """Run the dialer's side. On success `parser` and `sealer` are switched to the keys.
    `parts` is the part set whose marks `hello` carries (to name a difference).
    `peer_name` is the acceptor's TLS certificate name (None: names are not checked);
    `member_check` vets the acceptor's member incarnation (None: not checked).

    Raises HandshakeFailed (AuthenticationFailed when a proof fails either way; reason
    PART_SET, saying which part differs, when the acceptor runs other parts;
    CERT_MISMATCH when the acceptor's certificate is not its node's; STALE_MEMBER when
    `member_check` refuses the acceptor).
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
    if peer_name is not None:
        mismatch = certnames.node_refusal(peer_name, reply.acceptor_id)
        if mismatch is not None:  # told to the acceptor in place of our proof: it logs why
            await _send(stream, sealer, Refused(RefusalReason.CERT_MISMATCH))
            raise HandshakeFailed(RefusalReason.CERT_MISMATCH, mismatch, by_peer=False)
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
    # After the acceptor's answer, so that a node running other parts hears PART_SET (a
    # lasting mismatch) first, as the acceptor's own checks order them.
    stale = (
        None if member_check is None else member_check(reply.acceptor_id, reply.member_incarnation)
    )
    if stale is not None:
        raise HandshakeFailed(RefusalReason.STALE_MEMBER, stale, by_peer=False)
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
    client_keys: Callable[[str], ClientKey | None] = lambda name: None,
    member_incarnation: int = 0,
    peer_name: str | None = None,
    member_check: MemberCheck | None = None,
) -> Session:
    """Run the acceptor's side. `policy` vets the (still unauthenticated) Hello; a node
    whose part marks differ from `parts`' is refused (PART_SET) once it proved the secret,
    and so is one `member_check` refuses (STALE_MEMBER). `member_incarnation` is this
    node's own, told in the Challenge.

    A node dialer proves `secret` (the cluster secret); a client dialer proves the
    credential its Hello names, which `client_keys(name)` looks up (None: refused,
    UNKNOWN_CREDENTIAL). The cluster secret never authenticates a client. With
    `peer_name` (the dialer's TLS certificate name; None: not checked) the certificate
    must name the identity the Hello claims (CERT_MISMATCH), and a client gets the rights
    of the key its certificate names (`certnames`).

    On success `parser` and `sealer` are switched to the keys. Raises HandshakeFailed;
    a refusal is first told to the dialer (best effort). Cancellation leaves the
    stream mid-handshake: the caller must close it.
    """
    hello = await _receive(stream, parser)
    if not isinstance(hello, Hello):
        raise _unexpected(hello, "Hello")
    reason = _vet(hello, cluster_id, policy)
    detail = _dialer(hello)
    if reason is None and peer_name is not None:
        mismatch = _certificate_refusal(peer_name, hello)
        if mismatch is not None:
            reason, detail = RefusalReason.CERT_MISMATCH, f"{detail}: {mismatch}"
    client_key = None
    if reason is None and hello.kind is PeerKind.CLIENT:
        client_key = client_keys(hello.credential)
        if client_key is None:
            reason = RefusalReason.UNKNOWN_CREDENTIAL
        else:
            secret = client_key.secret
            if peer_name is not None:
                client_key = _certified_rights(peer_name, client_key, client_keys)
                if client_key is None:
                    reason = RefusalReason.UNKNOWN_CREDENTIAL
                    why = (
                        f"the client key its certificate {peer_name!r} names is unknown or revoked"
                    )
                    detail = f"{detail}: {why}"
    if reason is not None:
        await _send(stream, sealer, Refused(reason))
        raise HandshakeFailed(reason, detail, by_peer=False)
    challenge = Challenge(PROTOCOL_VERSION, node_id, incarnation, nonce, member_incarnation)
    await _send(stream, sealer, challenge)
    candidate = await _receive(stream, parser)
    if isinstance(candidate, Refused) and hello.kind is PeerKind.NODE:
        refuser = f"node {hello.sender_id}"
        raise HandshakeFailed(candidate.reason, f"{refuser} refused this node", by_peer=True)
    if not isinstance(candidate, Proof):
        raise _unexpected(candidate, "Proof")
    agreed = transcript(hello, challenge)
    if not verify(secret, Role.DIALER, agreed, candidate):
        await _send(stream, sealer, Refused(RefusalReason.BAD_PROOF))
        what = "the cluster secret" if client_key is None else client_key.label
        raise AuthenticationFailed(f"{_dialer(hello)} did not prove {what}", by_peer=False)
    if hello.kind is PeerKind.NODE and hello.parts != parts.marks:
        await _send(stream, sealer, Refused(RefusalReason.PART_SET, parts=parts.marks))
        here, there = f"node {node_id}", f"node {hello.sender_id}"
        raise HandshakeFailed(
            RefusalReason.PART_SET,
            _parts_differ(parts, hello.parts, here=here, there=there),
            by_peer=False,
        )
    if hello.kind is PeerKind.NODE and member_check is not None:
        stale = member_check(hello.sender_id, hello.member_incarnation)
        if stale is not None:
            await _send(stream, sealer, Refused(RefusalReason.STALE_MEMBER))
            raise HandshakeFailed(RefusalReason.STALE_MEMBER, stale, by_peer=False)
    await _send(stream, sealer, Proof(proof(secret, Role.ACCEPTOR, agreed)))
    forward, backward = session_keys(secret, agreed)
    sealer.authenticate(backward)
    parser.authenticate(forward, max_frame_bytes)
    return Session(
        hello.kind, hello.sender_id, hello.link, hello.incarnation, backward, forward, client_key
    )


def _dialer(hello: Hello) -> str:
    if hello.kind is PeerKind.NODE:
        return f"node {hello.sender_id}"
    credential = f"key {hello.credential!r}" if hello.credential else "the client secret"
    return f"client {hello.sender_id} (with {credential})"


def _certificate_refusal(name: str, hello: Hello) -> str | None:
    if hello.kind is PeerKind.NODE:
        return certnames.node_refusal(name, hello.sender_id)
    return certnames.client_refusal(name, hello.credential)


def _certified_rights(
    name: str, proved: ClientKey, client_keys: Callable[[str], ClientKey | None]
) -> ClientKey | None:
    """The credential whose rights a client with certificate `name` gets, having proved
    `proved` (None: the key its certificate names is unknown or revoked)."""
    wanted = certnames.rights_name(name, proved.name)
    return proved if wanted == proved.name else client_keys(wanted)


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
