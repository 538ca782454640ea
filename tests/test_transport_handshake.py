"""The handshake, as a protocol: scripts of who sends what, and what each proof is bound to."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from raftcluster.transport import handshake
from raftcluster.transport.errors import AuthenticationFailed, HandshakeFailed, RefusalReason
from raftcluster.transport.framing import FrameParser, FrameSealer
from raftcluster.transport.handshake import Role, Session, proof, transcript
from raftcluster.transport.wire import (
    MAX_HANDSHAKE_FRAME_BYTES,
    PROTOCOL_VERSION,
    Challenge,
    HandshakeMessage,
    Hello,
    PeerKind,
    Proof,
    Refused,
    decode_strict,
)
from statemachine.codec import encode

SECRET = b"s" * 32
OTHER = b"o" * 32
NONCE_D = bytes(32)
NONCE_A = bytes([1]) * 32


def hello(**changes: object) -> Hello:
    fields: dict[str, object] = {
        "version": PROTOCOL_VERSION,
        "cluster_id": "c",
        "kind": PeerKind.NODE,
        "sender_id": 1,
        "expected_id": 2,
        "link": 0,
        "incarnation": 11,
        "nonce": NONCE_D,
    }
    fields.update(changes)
    return Hello(**fields)  # type: ignore[arg-type]


def framing() -> tuple[FrameParser, FrameSealer]:
    return FrameParser(MAX_HANDSHAKE_FRAME_BYTES), FrameSealer()


async def run_dialer(stream: trio.abc.Stream, secret: bytes = SECRET, **changes: object) -> Session:
    parser, sealer = framing()
    return await handshake.dial(
        stream, parser, sealer, secret=secret, hello=hello(**changes), max_frame_bytes=1024
    )


async def run_acceptor(
    stream: trio.abc.Stream, secret: bytes = SECRET, policy=lambda h: None
) -> Session:
    parser, sealer = framing()
    return await handshake.accept(
        stream, parser, sealer, secret=secret, cluster_id="c", node_id=2, incarnation=22,
        nonce=NONCE_A,
        policy=policy, max_frame_bytes=1024,
    )  # fmt: skip


class Script:
    """The far end of a memory stream, speaking handshake messages by hand."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.parser, self.sealer = framing()

    async def send(self, message: HandshakeMessage) -> None:
        await self.stream.send_all(self.sealer.seal(encode(message)))

    async def receive(self) -> HandshakeMessage | None:
        while (body := self.parser.next_frame()) is None:
            data = await self.stream.receive_some(4096)
            if not data:
                return None
            self.parser.feed(data)
        return decode_strict(body, HandshakeMessage)


async def both(dialer, acceptor):
    """Run both sides at once; return (dialer outcome, acceptor outcome), errors included."""
    left, right = trio.testing.memory_stream_pair()
    outcomes: list[object] = [None, None]

    async def side(index, function, stream):
        try:
            outcomes[index] = await function(stream)
        except HandshakeFailed as e:
            outcomes[index] = e
        await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, 0, dialer, left)
        nursery.start_soon(side, 1, acceptor, right)
    return outcomes


async def test_success_agrees_on_identities_and_keys() -> None:
    dialed, accepted = await both(run_dialer, run_acceptor)
    assert isinstance(dialed, Session) and isinstance(accepted, Session)
    assert (dialed.peer_kind, dialed.peer_id, dialed.link) == (PeerKind.NODE, 2, 0)
    assert (accepted.peer_kind, accepted.peer_id, accepted.link) == (PeerKind.NODE, 1, 0)
    assert dialed.send_key == accepted.receive_key != dialed.receive_key == accepted.send_key


async def test_script_of_a_good_handshake_and_the_acceptor_proves_last() -> None:
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_acceptor, right)
        me = Script(left)
        await me.send(hello())
        challenge = await me.receive()
        assert challenge == Challenge(PROTOCOL_VERSION, 2, 22, NONCE_A)
        agreed = transcript(hello(), challenge)
        await me.send(Proof(proof(SECRET, Role.DIALER, agreed)))
        answer = await me.receive()
        assert answer == Proof(proof(SECRET, Role.ACCEPTOR, agreed))


async def test_a_dialer_without_the_secret_gets_no_proof_only_a_refusal() -> None:
    left, right = trio.testing.memory_stream_pair()
    errors: list[HandshakeFailed] = []

    async def acceptor() -> None:
        try:
            await run_acceptor(right)
        except HandshakeFailed as e:
            errors.append(e)
        await trio.aclose_forcefully(right)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(acceptor)
        me = Script(left)
        await me.send(hello())
        challenge = await me.receive()
        assert isinstance(challenge, Challenge)
        await me.send(Proof(proof(OTHER, Role.DIALER, transcript(hello(), challenge))))
        assert await me.receive() == Refused(RefusalReason.BAD_PROOF)
        assert await me.receive() is None  # and then it hangs up
    assert isinstance(errors[0], AuthenticationFailed) and not errors[0].by_peer


async def test_wrong_secret_fails_on_both_sides() -> None:
    dialed, accepted = await both(lambda s: run_dialer(s, OTHER), run_acceptor)
    assert isinstance(dialed, AuthenticationFailed) and dialed.by_peer
    assert isinstance(accepted, AuthenticationFailed) and not accepted.by_peer


async def test_an_acceptor_that_cannot_prove_the_secret_is_refused() -> None:
    left, right = trio.testing.memory_stream_pair()
    outcome: list[object] = []

    async def dialer() -> None:
        try:
            outcome.append(await run_dialer(left))
        except HandshakeFailed as e:
            outcome.append(e)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(dialer)
        impostor = Script(right)
        assert isinstance(await impostor.receive(), Hello)
        await impostor.send(Challenge(PROTOCOL_VERSION, 2, 22, NONCE_A))
        assert isinstance(await impostor.receive(), Proof)
        await impostor.send(Proof(bytes(32)))
    assert isinstance(outcome[0], AuthenticationFailed) and not outcome[0].by_peer


async def test_wrong_cluster_and_policy_refusals_reach_the_dialer() -> None:
    dialed, accepted = await both(lambda s: run_dialer(s, cluster_id="elsewhere"), run_acceptor)
    assert isinstance(dialed, HandshakeFailed) and dialed.by_peer
    assert dialed.reason == accepted.reason == RefusalReason.WRONG_CLUSTER

    dialed, _ = await both(
        run_dialer, lambda s: run_acceptor(s, policy=lambda h: RefusalReason.UNKNOWN_PEER)
    )
    assert isinstance(dialed, HandshakeFailed) and dialed.reason == RefusalReason.UNKNOWN_PEER


async def test_the_dialer_refuses_an_unexpected_node() -> None:
    dialed, _ = await both(lambda s: run_dialer(s, expected_id=3), run_acceptor)
    assert isinstance(dialed, HandshakeFailed) and dialed.reason == RefusalReason.WRONG_NODE


async def test_a_recorded_dialer_replayed_to_a_fresh_challenge_fails() -> None:
    old_challenge = Challenge(PROTOCOL_VERSION, 2, 22, bytes([9]) * 32)
    recorded = Proof(proof(SECRET, Role.DIALER, transcript(hello(), old_challenge)))
    left, right = trio.testing.memory_stream_pair()
    errors: list[HandshakeFailed] = []

    async def acceptor() -> None:
        try:
            await run_acceptor(right)  # its nonce is NONCE_A, not the recorded one
        except HandshakeFailed as e:
            errors.append(e)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(acceptor)
        attacker = Script(left)
        await attacker.send(hello())
        assert isinstance(await attacker.receive(), Challenge)
        await attacker.send(recorded)
        assert await attacker.receive() == Refused(RefusalReason.BAD_PROOF)
    assert isinstance(errors[0], AuthenticationFailed)


async def test_out_of_order_and_garbage_handshakes_are_malformed() -> None:
    for first in (Proof(bytes(32)), Challenge(PROTOCOL_VERSION, 1, 22, NONCE_A)):
        left, right = trio.testing.memory_stream_pair()

        async def attacker(stream=left, message=first) -> None:
            await Script(stream).send(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(attacker)
            try:
                await run_acceptor(right)
                raise AssertionError("accepted an out-of-order handshake")
            except HandshakeFailed as e:
                assert e.reason == RefusalReason.MALFORMED


@pytest.mark.parametrize(
    "field",
    [
        "cluster_id", "kind", "sender_id", "link", "nonce", "acceptor", "a_nonce", "d_inc",
        "a_inc", "d_member", "a_member",
    ],
)  # fmt: skip
def test_every_field_is_bound_into_the_proof(field: str) -> None:
    base_hello, base_challenge = hello(), Challenge(PROTOCOL_VERSION, 2, 22, NONCE_A)
    changes = {
        "cluster_id": lambda: (hello(cluster_id="d"), base_challenge),
        "kind": lambda: (hello(kind=PeerKind.CLIENT), base_challenge),
        "sender_id": lambda: (hello(sender_id=3), base_challenge),
        "link": lambda: (hello(link=1), base_challenge),
        "nonce": lambda: (hello(nonce=bytes([7]) * 32), base_challenge),
        "acceptor": lambda: (base_hello, Challenge(PROTOCOL_VERSION, 3, 22, NONCE_A)),
        "a_nonce": lambda: (base_hello, Challenge(PROTOCOL_VERSION, 2, 22, bytes([8]) * 32)),
        "d_inc": lambda: (hello(incarnation=12), base_challenge),
        "a_inc": lambda: (base_hello, Challenge(PROTOCOL_VERSION, 2, 23, NONCE_A)),
        "d_member": lambda: (hello(member_incarnation=5), base_challenge),
        "a_member": lambda: (base_hello, Challenge(PROTOCOL_VERSION, 2, 22, NONCE_A, 5)),
    }
    changed_hello, changed_challenge = changes[field]()
    base = transcript(base_hello, base_challenge)
    changed = transcript(changed_hello, changed_challenge)
    for role in Role:
        assert proof(SECRET, role, base) != proof(SECRET, role, changed)


def test_a_proof_does_not_verify_in_the_other_direction() -> None:
    agreed = transcript(hello(), Challenge(PROTOCOL_VERSION, 2, 22, NONCE_A))
    dialer_proof = Proof(proof(SECRET, Role.DIALER, agreed))
    assert handshake.verify(SECRET, Role.DIALER, agreed, dialer_proof)
    assert not handshake.verify(SECRET, Role.ACCEPTOR, agreed, dialer_proof)
