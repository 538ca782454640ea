"""Hostile input never crashes a node: it closes that connection and serves everyone else."""

from __future__ import annotations

import contextlib
import random
import secrets

import cbor2
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftcluster.transport import (
    Address,
    AuthenticationFailed,
    HandshakeFailed,
    Limits,
    Transport,
    connect_rpc,
)
from raftcluster.transport import RefusalReason as Reason
from raftcluster.transport.framing import FrameParser, FrameSealer
from raftcluster.transport.handshake import dial
from raftcluster.transport.wire import (
    MAX_HANDSHAKE_FRAME_BYTES,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    Challenge,
    HandshakeMessage,
    Hello,
    Keepalive,
    PeerKind,
    Proof,
    RaftFrame,
    Refused,
    RpcRequest,
    decode_strict,
)
from statemachine.codec import encode
from tests.transport_kit import (
    CLIENT_SECRET,
    CLUSTER,
    Answer,
    Ask,
    Note,
    client_config,
    connected,
    fast_limits,
    node_config,
    start_nodes,
    until,
)


def hello(**changes: object) -> Hello:
    fields: dict[str, object] = {
        "version": PROTOCOL_VERSION,
        "cluster_id": CLUSTER,
        "kind": PeerKind.NODE,
        "sender_id": 1,
        "expected_id": 2,
        "link": 0,
        "incarnation": 5,
        "nonce": secrets.token_bytes(NONCE_BYTES),
    }
    fields.update(changes)
    return Hello(**fields)  # type: ignore[arg-type]


def plain(message: HandshakeMessage) -> bytes:
    return FrameSealer().seal(encode(message))


async def attack(address: Address, payload: bytes, *, half_close: bool = True) -> bytes:
    """Send raw bytes, then read until the node hangs up; return what it said."""
    stream = await trio.open_tcp_stream(address.host, address.port)
    received = b""
    with trio.fail_after(10):
        try:
            await stream.send_all(payload)
            if half_close:
                await stream.send_eof()
            while data := await stream.receive_some(65536):
                received += data
        except trio.BrokenResourceError:
            pass  # reset: the node closed with our bytes unread, which is a hang-up too
    await trio.aclose_forcefully(stream)
    return received


def replies(received: bytes) -> list[HandshakeMessage]:
    parser = FrameParser(MAX_HANDSHAKE_FRAME_BYTES)
    parser.feed(received)
    out = []
    while (body := parser.next_frame()) is not None:
        out.append(decode_strict(body, HandshakeMessage))
    return out


async def still_serving(one: Transport, two: Transport) -> None:
    """Both nodes answer clients and each other on a link that never dropped, and the
    first raft message in each inbox is the one the other node sent now."""
    for node, other in ((one, two), (two, one)):
        async with connect_rpc(node.listen_addresses[0], client_config()) as client:
            assert await client.call(Ask("add", 1), timeout_ms=5000) == Answer(2, node.node_id)
        assert await other.call(node.node_id, Ask("add", 2), timeout_ms=5000) == Answer(
            3, node.node_id
        )
        assert other.send(node.node_id, Note(99))
        got = await node.inbox.receive()
        assert (got.peer_id, got.message) == (other.node_id, Note(99))
        assert node.stats().peer(other.node_id).reconnects == 0


garbage = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=300).map(lambda b: len(b).to_bytes(4, "big") + b),  # framed garbage
    st.builds(lambda n, b: n.to_bytes(4, "big") + b, st.integers(0, 2**32 - 1), st.binary()),
    st.recursive(  # well-framed, valid CBOR, wrong content
        st.integers() | st.binary(max_size=40) | st.text(max_size=10) | st.none(),
        lambda inner: st.lists(inner, max_size=8),
        max_leaves=12,
    ).map(lambda v: FrameSealer().seal(cbor2.dumps(v))),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(garbage, min_size=1, max_size=4))
async def test_random_bytes_never_crash_the_listener(payloads: list[bytes]) -> None:
    async with trio.open_nursery() as nursery:
        one, two = await start_nodes(nursery, 2)
        await until(connected(one, two))
        for payload in payloads:
            said = await attack(two.listen_addresses[0], payload)
            assert all(isinstance(m, Refused) for m in replies(said))
        await still_serving(one, two)
        assert two.stats().handshakes_refused == len(payloads)
        nursery.cancel_scope.cancel()


# name: (bytes sent, half-close after sending, what node 2 answers before hanging up)
CASES = {
    "oversized length prefix": (b"\xff\xff\xff\xff", False, []),
    "handshake frame over 256 bytes": ((257).to_bytes(4, "big"), False, []),
    "truncated hello": (plain(hello())[:20], True, []),
    "not cbor": (FrameSealer().seal(b"\xff\xfe\xfd"), True, []),
    "a frame before authentication": (
        FrameSealer().seal(encode(RaftFrame(0, 0, Note(1)))), True, [],
    ),
    "a proof before the hello": (plain(Proof(bytes(32))), True, []),
    "hello then silence": (plain(hello()), True, [Challenge]),
    "wrong cluster": (plain(hello(cluster_id="other")), True, [Refused(Reason.WRONG_CLUSTER)]),
    "unknown node": (plain(hello(sender_id=7)), True, [Refused(Reason.UNKNOWN_PEER)]),
    "expects another node": (plain(hello(expected_id=5)), True, [Refused(Reason.WRONG_NODE)]),
    "higher id dials": (plain(hello(sender_id=3)), True, [Refused(Reason.WRONG_DIRECTION)]),
    "bad version": (plain(hello(version=9)), True, [Refused(Reason.VERSION)]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
async def test_each_malformed_handshake_is_refused_and_logged(nursery, caplog, case: str) -> None:
    payload, half_close, expected = CASES[case]
    one, two, _ = await start_nodes(nursery, 3)  # node 3 exists, so "higher id dials" is known
    await until(connected(one, two))
    said = await attack(two.listen_addresses[0], payload, half_close=half_close)
    assert [m if isinstance(m, Refused) else type(m) for m in replies(said)] == expected
    assert two.stats().handshakes_refused == 1
    assert "refused a connection" in caplog.text
    await still_serving(one, two)


@pytest.mark.parametrize("kind", [PeerKind.NODE, PeerKind.CLIENT])
async def test_a_proof_made_with_another_secret_is_refused(nursery, kind: PeerKind) -> None:
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    stream = await trio.open_tcp_stream("127.0.0.1", two.listen_addresses[0].port)
    parser, sealer = FrameParser(MAX_HANDSHAKE_FRAME_BYTES), FrameSealer()
    forged = hello(kind=kind, sender_id=1 if kind is PeerKind.NODE else 9)
    with pytest.raises(AuthenticationFailed) as failed:
        await dial(stream, parser, sealer, secret=b"w" * 32, hello=forged, max_frame_bytes=1024)
    assert failed.value.by_peer
    await until(lambda: two.stats().handshakes_refused == 1)
    await still_serving(one, two)


async def authenticated_client(address: Address) -> tuple[trio.SocketStream, FrameSealer]:
    stream = await trio.open_tcp_stream(address.host, address.port)
    sealer = FrameSealer()
    client_hello = hello(kind=PeerKind.CLIENT, sender_id=77, expected_id=0)
    await dial(
        stream, FrameParser(MAX_HANDSHAKE_FRAME_BYTES), sealer, secret=CLIENT_SECRET,
        hello=client_hello, max_frame_bytes=1 << 20,
    )  # fmt: skip
    return stream, sealer


def tampered(sealer: FrameSealer) -> bytes:
    wire = bytearray(sealer.seal(encode(Keepalive())))
    wire[-1] ^= 1
    return bytes(wire)


POST_AUTH = {
    "bad MAC": tampered,
    "malformed body": lambda sealer: sealer.seal(b"\x83\x01"),
    "wrong message type": lambda sealer: sealer.seal(encode(Note(1))),
    "raft frame from a client": lambda sealer: sealer.seal(encode(RaftFrame(0, 0, Note(1)))),
    "oversized length": lambda sealer: (9 << 20).to_bytes(4, "big"),
    "truncated": lambda sealer: sealer.seal(encode(RpcRequest(1, 100, Ask("add"))))[:-3],
}


@pytest.mark.parametrize("case", list(POST_AUTH))
async def test_after_authentication_bad_frames_close_the_connection(nursery, case: str) -> None:
    one, two = await start_nodes(nursery, 2, limits=Limits(max_frame_bytes=1 << 20))
    await until(connected(one, two))
    stream, sealer = await authenticated_client(one.listen_addresses[0])
    await until(lambda: one.stats().clients_connected == 1)
    with trio.fail_after(10):
        try:
            await stream.send_all(POST_AUTH[case](sealer))
            if case == "truncated":
                await stream.send_eof()
            while await stream.receive_some(65536):
                pass  # keepalives, until the node hangs up
        except trio.BrokenResourceError:
            pass
    await until(lambda: one.stats().clients_connected == 0)
    assert one.stats().connections_failed == 1
    with pytest.raises(trio.WouldBlock):
        one.inbox.receive_nowait()  # nothing from the client reached the raft inbox
    await still_serving(one, two)


async def test_slow_loris_handshakes_time_out_and_are_capped(nursery, mock_clock) -> None:
    mock_clock.autojump_threshold = 0.02
    limits = fast_limits(max_pending_handshakes=4, handshake_timeout_ms=3000)
    one, two = await start_nodes(nursery, 2, limits=limits)
    await until(connected(one, two))
    address = one.listen_addresses[0]
    payload = plain(hello())
    started = trio.current_time()  # every handshake deadline runs from after this
    slow = [await trio.open_tcp_stream(address.host, address.port) for _ in range(5)]
    # The fifth is over the cap and is closed at once, handshake or not.
    with trio.fail_after(1), contextlib.suppress(trio.BrokenResourceError):
        assert await slow[4].receive_some(100) == b""
    closed_at: list[float] = []

    async def dribble(stream: trio.SocketStream) -> None:
        try:
            for byte in payload:  # one byte a second: never finishes within 3 s
                await stream.send_all(bytes([byte]))
                await trio.sleep(1)
        except trio.BrokenResourceError:
            closed_at.append(trio.current_time())

    async with trio.open_nursery() as dribblers:
        for stream in slow[:4]:
            dribblers.start_soon(dribble, stream)
    assert len(closed_at) == 4
    assert all(at - started >= 3.0 for at in closed_at)
    assert one.stats().handshakes_refused == 5
    await still_serving(one, two)


async def test_a_node_with_the_wrong_secret_or_cluster_is_refused_and_the_rest_go_on(
    nursery,
) -> None:
    one, two, three = await start_nodes(nursery, 3)
    await until(connected(one, two, three))
    # node 4 has the wrong secret, node 5 the wrong cluster id; both are configured peers
    four = Transport(node_config(4, secret=b"x" * 32), rng=random.Random(4))
    five = Transport(node_config(5, cluster_id="another"), rng=random.Random(5))
    for intruder in (four, five):
        await nursery.start(intruder.serve)
        for node in (one, two, three):
            node.set_peer(intruder.node_id, intruder.listen_addresses)
            intruder.set_peer(node.node_id, node.listen_addresses)
    await until(lambda: one.stats().peer(4).links[0].dial_failures >= 2)
    await until(lambda: one.stats().peer(5).links[0].dial_failures >= 2)
    assert "wrong secret" in one.stats().peer(4).links[0].last_error
    assert "wrong_cluster" in one.stats().peer(5).links[0].last_error
    assert not one.is_connected(4) and not four.is_connected(1)
    for seq in range(20):
        one.send(3, Note(seq))
    got = [await three.inbox.receive() for _ in range(20)]
    assert [g.message.seq for g in got] == list(range(20))
    assert await three.call(1, Ask("add", 5), timeout_ms=5000) == Answer(6, 1)
    assert one.stats().peer(3).reconnects == 0
    with pytest.raises(HandshakeFailed):
        async with connect_rpc(one.listen_addresses[0], client_config(cluster_id="another")) as _:
            pass
