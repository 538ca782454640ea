"""Transports on 127.0.0.1: the raft and RPC channels, clients, errors, reconnection."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

import raftcluster.transport.transport as transport_module
from raftcluster.transport import (
    Address,
    Backoff,
    ConnectionLost,
    HandshakeFailed,
    Limits,
    PeerFaults,
    PeerUnreachable,
    RefusalReason,
    RemoteError,
    RpcErrorCode,
    RpcTimeout,
    Transport,
    TransportError,
    UnknownPeer,
    connect_rpc,
)
from statemachine.errors import LimitExceeded
from tests.transport_kit import (
    Answer,
    Ask,
    Note,
    client_config,
    connected,
    fast_limits,
    make_node,
    node_config,
    receive_notes,
    start,
    start_nodes,
    until,
)


async def test_two_nodes_exchange_raft_messages_in_order_both_ways(nursery) -> None:
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    for seq in range(50):
        assert one.send(2, Note(seq))
        assert two.send(1, Note(1000 + seq))
    at_two = await receive_notes(two, 50)
    at_one = await receive_notes(one, 50)
    assert [(i.peer_id, i.message.seq) for i in at_two] == [(1, s) for s in range(50)]
    assert [(i.peer_id, i.message.seq) for i in at_one] == [(2, 1000 + s) for s in range(50)]
    stats = one.stats().peer(2)
    assert (stats.raft_sent, stats.raft_received, stats.dropped) == (50, 50, 0)
    assert stats.connected and stats.link_in_use == 0 and stats.frames_out >= 50


async def test_three_nodes_every_pair_talks_raft_and_rpc(nursery) -> None:
    nodes = await start_nodes(nursery, 3)
    await until(connected(*nodes))
    for node in nodes:
        for peer in node.peer_ids:
            node.send(peer, Note(node.node_id * 10 + peer))
            answer = await node.call(peer, Ask("add", node.node_id), timeout_ms=5000)
            assert answer == Answer(node.node_id + 1, peer)
    for node in nodes:
        got = await receive_notes(node, 2)
        assert sorted(i.message.seq for i in got) == sorted(
            p * 10 + node.node_id for p in node.peer_ids
        )


async def test_large_messages_up_to_the_frame_limit(nursery) -> None:
    limits = fast_limits(max_frame_bytes=2_000_000)
    one, two = await start_nodes(nursery, 2, limits=limits)
    await until(connected(one, two))
    big = Note(1, "x" * 1_900_000)
    assert one.send(2, big)
    assert (await receive_notes(two, 1))[0].message == big
    with pytest.raises(LimitExceeded):
        one.send(2, Note(2, "x" * 2_000_000))
    with pytest.raises(LimitExceeded):
        await one.call(2, Note(3, "y" * 2_000_000), timeout_ms=1000)
    assert one.stats().peer(2).raft_sent == 1  # the refused ones were never queued


async def test_clients_call_nodes_with_the_secret(nursery) -> None:
    (one,) = await start_nodes(nursery, 1)
    async with connect_rpc(one.listen_addresses[0], client_config()) as client:
        assert client.node_id == 1
        assert await client.call(Ask("add", 41), timeout_ms=5000) == Answer(42, 1)
        await until(lambda: one.stats().clients_connected == 1)
    await until(lambda: one.stats().clients_connected == 0)


async def test_remote_errors_are_typed(nursery) -> None:
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    with pytest.raises(RemoteError) as failed:
        await one.call(2, Ask("fail"), timeout_ms=5000)
    assert failed.value.code == RpcErrorCode.HANDLER_FAILED and failed.value.may_have_executed
    assert "handler asked to fail" in failed.value.reason
    with pytest.raises(RemoteError) as bad:
        await one.call(2, Ask("not-a-message"), timeout_ms=5000)
    assert bad.value.code == RpcErrorCode.HANDLER_FAILED
    two.set_rpc_handler(None)
    with pytest.raises(RemoteError) as none:
        await one.call(2, Ask("add"), timeout_ms=5000)
    assert none.value.code == RpcErrorCode.NO_HANDLER and not none.value.may_have_executed
    # the connection survived all of it
    assert one.stats().peer(2).reconnects == 0 and one.is_connected(2)


async def test_concurrent_requests_beyond_the_cap_are_refused(nursery) -> None:
    one, two = await start_nodes(nursery, 2, limits=Limits(max_concurrent_requests=2))
    await until(connected(one, two))
    outcomes: list[object] = []

    async def call() -> None:
        try:
            outcomes.append(await one.call(2, Ask("sleep", 300), timeout_ms=10_000))
        except RemoteError as e:
            outcomes.append(e.code)

    async with trio.open_nursery() as calls:
        for _ in range(5):
            calls.start_soon(call)
    assert outcomes.count(RpcErrorCode.OVERLOADED) == 3
    assert outcomes.count(Answer(301, 2)) == 2


async def test_timeout_unreachable_and_connection_lost(nursery, mock_clock) -> None:
    mock_clock.autojump_threshold = 0.02
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    # sent but never answered: timeout, outcome unknown
    one.faults.set(2, PeerFaults(blocked=True))
    with pytest.raises(RpcTimeout) as timed_out:
        await one.call(2, Ask("add", 1), timeout_ms=3000)
    assert timed_out.value.may_have_executed
    one.faults.clear()
    # a handler slower than the timeout: the caller gives up (or the callee reports it)
    with pytest.raises((RpcTimeout, RemoteError)) as slow:
        await one.call(2, Ask("sleep", 60_000), timeout_ms=1000)
    assert slow.value.may_have_executed
    # a peer with no address that answers: never sent
    one.set_peer(3, [Address("127.0.0.1", 1)])
    with pytest.raises(PeerUnreachable) as unreachable:
        await one.call(3, Ask("add", 1), timeout_ms=2000)
    assert not unreachable.value.may_have_executed
    with pytest.raises(UnknownPeer):
        await one.call(4, Ask("add", 1), timeout_ms=2000)
    with pytest.raises(UnknownPeer):
        one.send(4, Note(1))


async def test_calls_in_flight_see_connection_lost_when_the_peer_stops(nursery) -> None:
    one = make_node(1, limits=fast_limits())
    two = make_node(2, limits=fast_limits())
    await start(nursery, one)
    two_running = await start(nursery, two)
    one.set_peer(2, two.listen_addresses)
    two.set_peer(1, one.listen_addresses)
    await until(connected(one, two))

    async def stop_soon() -> None:
        await trio.sleep(0.2)
        two_running.scope.cancel()

    nursery.start_soon(stop_soon)
    with pytest.raises(ConnectionLost) as lost:
        await one.call(2, Ask("sleep", 30_000), timeout_ms=20_000)
    assert lost.value.may_have_executed
    assert not one.send(2, Note(1))  # no link: dropped and counted
    assert one.stats().peer(2).dropped_no_link == 1


async def test_reconnection_after_the_peer_restarts(nursery) -> None:
    backoff = Backoff(initial_ms=20, max_ms=200)
    one = make_node(1, limits=fast_limits(), backoff=backoff)
    two = make_node(2, limits=fast_limits(), backoff=backoff)
    await start(nursery, one)
    two_running = await start(nursery, two)
    port = two.listen_addresses[0]
    one.set_peer(2, [port])
    two.set_peer(1, one.listen_addresses)
    await until(connected(one, two))
    await two_running.stop()
    await until(lambda: not one.is_connected(2))
    await until(lambda: one.stats().peer(2).links[0].dial_failures >= 2)

    again = make_node(2, listen=(port,), limits=fast_limits())
    await start(nursery, again)
    again.set_peer(1, one.listen_addresses)
    await until(connected(one, again))
    assert one.send(2, Note(7))
    assert (await receive_notes(again, 1))[0].message == Note(7)
    assert await one.call(2, Ask("add", 1), timeout_ms=5000) == Answer(2, 2)
    assert one.stats().peer(2).reconnects == 1


async def test_backoff_schedule_with_a_mock_clock(nursery, mock_clock, monkeypatch) -> None:
    mock_clock.autojump_threshold = 0.02
    backoff = Backoff(initial_ms=100, max_ms=3000, multiplier=2.0, jitter=0.5)
    attempts: list[float] = []
    real_dial = transport_module.open_and_dial

    enough = trio.Event()

    async def recording_dial(*args, **kwargs):
        attempts.append(trio.current_time())
        if len(attempts) >= 12:
            enough.set()
        return await real_dial(*args, **kwargs)

    monkeypatch.setattr(transport_module, "open_and_dial", recording_dial)
    closed = trio.socket.socket()  # bound, never listening: connections are refused
    await closed.bind(("127.0.0.1", 0))
    one = Transport(node_config(1, backoff=backoff), rng=random.Random(5))
    await start(nursery, one)
    one.set_peer(2, [Address("127.0.0.1", closed.getsockname()[1])])
    with trio.fail_after(3600):  # virtual seconds; an event, since polling a mock clock crawls
        await enough.wait()
    model = random.Random(5)
    model.getrandbits(64)  # the transport seeds its fault layer first
    expected = [backoff.delay_ms(n, model) / 1000 for n in range(11)]
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert gaps[:11] == pytest.approx(expected, abs=1e-6)
    assert max(gaps) <= backoff.max_ms / 1000 + 1e-6
    assert one.stats().peer(2).links[0].dial_failures >= 11
    closed.close()


async def test_a_full_peer_queue_drops_and_counts(nursery) -> None:
    one, two = await start_nodes(nursery, 2, limits=Limits(raft_queue_frames=4))
    await until(connected(one, two))
    one.faults.set(2, PeerFaults(delay_ms=60_000))  # hold everything in the queue
    sent = [one.send(2, Note(n)) for n in range(10)]
    assert sent == [True] * 4 + [False] * 6
    assert one.stats().peer(2).dropped_queue_full == 6


async def test_a_full_inbox_drops_and_counts(nursery) -> None:
    one, two = await start_nodes(nursery, 2, limits=Limits(inbox_frames=3))
    await until(connected(one, two))
    assert all(two.send(1, Note(n)) for n in range(10))
    await until(lambda: one.stats().peer(2).raft_received == 10)
    assert one.stats().inbox_dropped == 7
    assert [i.message.seq for i in await receive_notes(one, 3)] == [0, 1, 2]


async def test_membership_changes(nursery) -> None:
    one, two, three = await start_nodes(nursery, 3)
    await until(connected(one, two, three))
    one.remove_peer(3)
    three.remove_peer(1)
    assert one.peer_ids == {2}
    with pytest.raises(UnknownPeer):
        one.send(3, Note(1))
    one.set_peer(3, three.listen_addresses)
    three.set_peer(1, one.listen_addresses)
    await until(connected(one, three))
    assert await one.call(3, Ask("add", 2), timeout_ms=5000) == Answer(3, 3)


async def test_lifecycle_errors(nursery) -> None:
    (one,) = await start_nodes(nursery, 1)
    with pytest.raises(TransportError, match="serves once"):
        await one.serve()
    taken = one.listen_addresses[0]
    with pytest.raises(TransportError, match="cannot listen"):
        await nursery.start(Transport(node_config(2, listen=(taken,)), rng=random.Random()).serve)


async def test_async_with_runs_and_lets_errors_through_unwrapped() -> None:
    transport = Transport(node_config(1), rng=random.Random(0))
    with pytest.raises(KeyError):
        async with transport:
            assert transport.listen_addresses[0].port != 0
            raise KeyError("from the block")
    inbox = transport.inbox
    with pytest.raises(trio.EndOfChannel):
        inbox.receive_nowait()


async def test_a_restarted_peer_starts_its_sequence_over_and_is_heard(nursery) -> None:
    one = make_node(1, limits=fast_limits())
    one_running = await start(nursery, one)
    two = make_node(2, limits=fast_limits())
    await start(nursery, two)
    one.set_peer(2, two.listen_addresses)
    two.set_peer(1, one.listen_addresses)
    await until(connected(one, two))
    for seq in range(10):
        one.send(2, Note(seq))
    assert [i.message.seq for i in await receive_notes(two, 10)] == list(range(10))

    await one_running.stop()  # node 1 restarts: a new incarnation, sequence numbers from 0
    again = make_node(1, limits=fast_limits(), listen=one.listen_addresses)
    await start(nursery, again)
    again.set_peer(2, two.listen_addresses)
    await until(connected(again))
    for seq in range(3):
        again.send(2, Note(100 + seq))
    assert [i.message.seq for i in await receive_notes(two, 3)] == [100, 101, 102]
    assert two.stats().peer(1).discarded_out_of_order == 0


async def test_a_client_can_insist_on_a_node_id(nursery) -> None:
    (one,) = await start_nodes(nursery, 1)
    with pytest.raises(HandshakeFailed) as refused:
        async with connect_rpc(one.listen_addresses[0], client_config(), expected_node_id=2):
            pass
    assert refused.value.reason == RefusalReason.WRONG_NODE and refused.value.by_peer
    async with connect_rpc(one.listen_addresses[0], client_config(), expected_node_id=1) as c:
        assert c.node_id == 1
