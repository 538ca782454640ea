"""The fault layer on live transports: drops, delays and blocks exactly as told."""

from __future__ import annotations

import random

import pytest
import trio

from raftcluster.transport import (
    Caller,
    FaultLayer,
    PeerFaults,
    RpcTimeout,
    Transport,
)
from statemachine.codec import Message
from tests.transport_kit import (
    Answer,
    Ask,
    Note,
    connected,
    echo_handler,
    node_config,
    receive_notes,
    start,
    start_nodes,
    until,
    wire,
)


async def test_drops_follow_the_seeded_generator(nursery) -> None:
    one = Transport(node_config(1), rng=random.Random(1), faults=FaultLayer(random.Random(42)))
    two = Transport(node_config(2), rng=random.Random(2))
    for node in (one, two):
        await start(nursery, node)
    wire([one, two])
    await until(connected(one, two))
    one.faults.set(2, PeerFaults(drop_probability=0.3))
    queued = [one.send(2, Note(n)) for n in range(300)]
    model = random.Random(42)
    assert queued == [model.random() >= 0.3 for _ in range(300)]
    kept = [n for n, ok in enumerate(queued) if ok]
    got = await receive_notes(two, len(kept))
    assert [g.message.seq for g in got] == kept
    assert one.stats().peer(2).dropped_by_faults == 300 - len(kept)


async def test_delay_holds_messages_back_in_order(nursery, mock_clock) -> None:
    mock_clock.autojump_threshold = 0.02
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    one.faults.set(2, PeerFaults(delay_ms=2500))
    sent_at = trio.current_time()
    for n in range(5):
        one.send(2, Note(n))
    one.faults.set(2, PeerFaults(delay_ms=10))  # a shorter delay must not overtake
    one.send(2, Note(5))
    got = await receive_notes(two, 6, timeout_s=60)
    assert [g.message.seq for g in got] == list(range(6))
    assert trio.current_time() - sent_at >= 2.5  # virtual seconds
    answer_at = trio.current_time()
    one.faults.set(2, PeerFaults(delay_ms=1000))
    assert await one.call(2, Ask("add", 1), timeout_ms=10_000) == Answer(2, 2)
    assert trio.current_time() - answer_at >= 1.0


async def test_block_stops_both_channels_until_cleared(nursery, mock_clock) -> None:
    mock_clock.autojump_threshold = 0.02
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    one.faults.set(2, PeerFaults(blocked=True))
    assert not one.send(2, Note(1))
    with pytest.raises(RpcTimeout):
        await one.call(2, Ask("add", 1), timeout_ms=2000)
    with trio.move_on_after(5):
        await two.inbox.receive()
        raise AssertionError("a blocked message arrived")
    assert one.is_connected(2)  # keepalives are not blocked: the link stays up
    # the other direction is untouched: a partition one way only
    assert two.send(1, Note(2))
    assert (await receive_notes(one, 1))[0].message == Note(2)
    one.faults.clear(2)
    assert one.send(2, Note(3))
    assert (await receive_notes(two, 1))[0].message == Note(3)
    assert one.stats().peer(2).dropped_by_faults == 1


async def test_blocked_responses_mean_the_handler_ran_but_the_caller_times_out(
    nursery, mock_clock
) -> None:
    mock_clock.autojump_threshold = 0.02
    one, two = await start_nodes(nursery, 2)
    ran: list[int] = []
    handle = echo_handler(2)

    async def counting(caller: Caller, request: Message) -> Message:
        ran.append(caller.id)
        return await handle(caller, request)

    two.set_rpc_handler(counting)
    await until(connected(one, two))
    two.faults.set(1, PeerFaults(blocked=True))  # node 2's replies to node 1 vanish
    with pytest.raises(RpcTimeout) as timed_out:
        await one.call(2, Ask("add", 1), timeout_ms=2000)
    assert timed_out.value.may_have_executed and ran == [1]
