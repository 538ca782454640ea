"""Channel bonding: several links per peer; losing one keeps messages flowing."""

from __future__ import annotations

import random

import trio
from hypothesis import given
from hypothesis import strategies as st

from raftcluster.transport import BondMode, Limits, Transport
from raftcluster.transport.transport import _Peer
from raftcluster.transport.wire import RaftFrame
from tests.transport_kit import (
    Answer,
    Ask,
    Note,
    bonded_pair,
    both_links_up,
    until,
)


class Stream:
    """A steady flow of numbered raft messages from `source` to `sink`, and what arrived."""

    def __init__(self, source: Transport, sink: Transport, flows: int = 1) -> None:
        self.source, self.sink, self.flows = source, sink, flows
        self.sent = 0
        self.received: list[int] = []
        self.flow_of: dict[int, int] = {}

    async def produce(self, interval_s: float = 0.002) -> None:
        while True:
            seq = self.sent
            flow = seq % self.flows
            self.flow_of[seq] = flow
            self.source.send(self.sink.node_id, Note(seq, "x" * 2000), flow=flow)
            self.sent += 1
            await trio.sleep(interval_s)

    async def consume(self) -> None:
        async for incoming in self.sink.inbox:
            if incoming.peer_id == self.source.node_id:
                self.received.append(incoming.message.seq)

    async def more(self, count: int) -> None:
        """Wait until `count` more messages have arrived."""
        target = len(self.received) + count
        await until(lambda: len(self.received) >= target)


def in_order_per_flow(stream: Stream) -> bool:
    last: dict[int, int] = {}
    for seq in stream.received:
        flow = stream.flow_of[seq]
        if seq <= last.get(flow, -1):
            return False
        last[flow] = seq
    return True


async def test_active_backup_fails_over_and_back_without_the_sender_noticing(nursery) -> None:
    one, two, proxies = await bonded_pair(nursery)
    forward, backward = Stream(one, two), Stream(two, one)
    for stream in (forward, backward):
        nursery.start_soon(stream.produce)
        nursery.start_soon(stream.consume)
    await forward.more(20)
    await backward.more(20)
    assert one.stats().peer(2).link_in_use == 0 and two.stats().peer(1).link_in_use == 0

    proxies[0].cut()  # the primary link goes down
    await until(lambda: one.stats().peer(2).link_in_use == 1)
    await forward.more(100)
    await backward.more(100)
    assert two.stats().peer(1).link_in_use == 1
    assert await one.call(2, Ask("add", 1), timeout_ms=5000) == Answer(2, 2)
    assert await two.call(1, Ask("add", 1), timeout_ms=5000) == Answer(2, 1)

    proxies[0].restore()  # it comes back: traffic returns to the primary
    await until(lambda: one.stats().peer(2).link_in_use == 0)
    await until(lambda: two.stats().peer(1).link_in_use == 0)
    await forward.more(50)
    await backward.more(50)
    for stream in (forward, backward):
        assert in_order_per_flow(stream)
        # Only what was inside the failed link when it died may be lost.
        assert len(stream.received) >= stream.sent - 50
    assert one.stats().peer(2).links[0].connections_opened == 2


async def test_a_silent_link_is_detected_by_the_idle_timeout(nursery, caplog) -> None:
    one, two, proxies = await bonded_pair(nursery)
    forward = Stream(one, two)
    nursery.start_soon(forward.produce)
    nursery.start_soon(forward.consume)
    await forward.more(20)
    proxies[0].blackhole()  # no reset, no FIN: bytes just stop arriving
    await until(lambda: one.stats().peer(2).link_in_use == 1)
    await forward.more(100)
    assert "closed node 2 link 0: nothing from node 2 link 0" in caplog.text
    assert one.stats().connections_failed >= 1
    assert in_order_per_flow(forward)


async def test_balance_by_flow_spreads_flows_keeps_each_in_order_and_survives_a_cut(
    nursery,
) -> None:
    one, two, proxies = await bonded_pair(nursery, BondMode.BALANCE_FLOW)
    forward = Stream(one, two, flows=4)
    nursery.start_soon(forward.produce)
    nursery.start_soon(forward.consume)
    await forward.more(200)
    bytes_out = [link.bytes_out for link in one.stats().peer(2).links]
    assert min(bytes_out) > 100_000  # both links carry flows (keepalives alone are tiny)
    assert in_order_per_flow(forward)
    answers = [await one.call(2, Ask("add", n), timeout_ms=5000) for n in range(10)]
    assert answers == [Answer(n + 1, 2) for n in range(10)]

    proxies[1].cut()
    await until(lambda: not one.stats().peer(2).links[1].connected)
    await forward.more(200)
    assert in_order_per_flow(forward)
    assert len(forward.received) >= forward.sent - 50


async def test_flapping_links_never_reorder_or_duplicate_a_flow(nursery) -> None:
    one, two, proxies = await bonded_pair(nursery, BondMode.BALANCE_FLOW)
    forward = Stream(one, two, flows=4)
    nursery.start_soon(forward.produce, 0.001)
    nursery.start_soon(forward.consume)
    await forward.more(50)
    flaps = random.Random(7)
    for _ in range(8):
        proxy = proxies[flaps.randrange(2)]
        proxy.cut()
        await trio.sleep(flaps.uniform(0.02, 0.15))
        proxy.restore()
        await trio.sleep(flaps.uniform(0.02, 0.15))
    await until(lambda: both_links_up(one, 2))
    await forward.more(100)
    assert len(set(forward.received)) == len(forward.received)
    assert in_order_per_flow(forward)
    recent = forward.received[-100:]
    assert {forward.flow_of[seq] for seq in recent} == {0, 1, 2, 3}


class _FakeSession:
    def __init__(self, incarnation: int) -> None:
        self.peer_incarnation = incarnation


class _FakeConnection:
    def __init__(self, incarnation: int) -> None:
        self.session = _FakeSession(incarnation)


@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 30)),  # inc, flow, seq
        max_size=60,
    )
)
def test_the_receiver_delivers_each_flow_in_increasing_order_of_the_current_incarnation(
    frames: list[tuple[int, int, int]],
) -> None:
    peer = _Peer(2, (), Limits())
    peer.rx_incarnation = 1
    delivered: dict[int, list[int]] = {}
    for incarnation, flow, seq in frames:
        frame = RaftFrame(flow, seq, Note(seq))
        if peer.accept_raft(_FakeConnection(incarnation), frame):  # type: ignore[arg-type]
            assert incarnation == 1
            delivered.setdefault(flow, []).append(seq)
    for seqs in delivered.values():
        assert seqs == sorted(set(seqs))
    # and in-order frames of the current incarnation are all delivered
    expected = {}
    for incarnation, flow, seq in frames:
        if incarnation == 1 and seq > expected.get(flow, [-1])[-1]:
            expected.setdefault(flow, []).append(seq)
    assert delivered == expected
