"""The routing core of bonding, driven without sockets by a Hypothesis state machine.

Links come up and go down (connections attached and closed, as the runtime does),
raft messages are sent on several flows, and link writers drain their queues in
any interleaving. Whatever happens, each flow's frames are written in the order they
were sent, none twice, and every queued message is either written or counted lost.
"""

from __future__ import annotations

import itertools
import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from raftcluster.transport import BondMode, Transport
from raftcluster.transport.config import Address, Limits
from raftcluster.transport.connection import Connection
from raftcluster.transport.framing import FrameParser, FrameSealer
from raftcluster.transport.handshake import Session
from raftcluster.transport.wire import Frame, PeerKind, RaftFrame, decode_strict
from tests.transport_kit import Note, node_config

LINKS = 3
FLOWS = 3


class Routing(RuleBasedStateMachine):
    @initialize(mode=st.sampled_from(list(BondMode)), queue_frames=st.integers(2, 12))
    def start(self, mode: BondMode, queue_frames: int) -> None:
        config = node_config(
            1,
            bond_mode=mode,
            limits=Limits(raft_queue_frames=queue_frames),
            peers={2: tuple(Address("127.0.0.1", 9000 + i) for i in range(LINKS))},
        )
        self.mode = mode
        self.transport = Transport(config, rng=random.Random(0))
        self.peer = self.transport._peers[2]
        self.incarnations = itertools.count(1)
        self.incarnation = next(self.incarnations)
        self.sent = 0
        self.queued: set[int] = set()  # message numbers send() accepted
        self.written: list[tuple[int, int, int]] = []  # (flow, seq, number) in write order

    def connection(self, link: int) -> Connection | None:
        held = self.peer.links.get(link)
        return held.connection if held is not None else None

    @rule(link=st.integers(0, LINKS - 1))
    def link_up(self, link: int) -> None:
        """A link (re)connects, replacing whatever connection it had."""
        session = Session(PeerKind.NODE, 2, link, self.incarnation, b"k" * 32, b"k" * 32)
        held = self.peer.link(link, f"link {link}")
        connection = self.transport._connection(
            None, FrameParser(64), FrameSealer(), session, self.peer, f"link {link}",  # type: ignore[arg-type]
            held.counters,
        )  # fmt: skip
        self.transport._attach(self.peer, held, connection)

    @rule(link=st.integers(0, LINKS - 1))
    def link_down(self, link: int) -> None:
        connection = self.connection(link)
        if connection is not None:
            connection.close()

    @rule()
    def peer_restarts(self) -> None:
        """A new incarnation reconnects on link 0; the old links must go."""
        self.incarnation = next(self.incarnations)
        self.link_up(0)

    @rule(flow=st.integers(0, FLOWS - 1))
    def send(self, flow: int) -> None:
        number = self.sent
        self.sent += 1
        if self.transport.send(2, Note(number), flow=flow):
            self.queued.add(number)

    @rule(link=st.integers(0, LINKS - 1), limit=st.integers(1, 5))
    def writer_drains(self, link: int, limit: int) -> None:
        connection = self.connection(link)
        if connection is None:
            return
        bodies, _ = connection.outbox.take_ready(0.0, 1)  # one frame at a time...
        for _ in range(limit - 1):  # ...up to `limit` of them
            more, _ = connection.outbox.take_ready(0.0, 1)
            bodies += more
        for body in bodies:
            frame = decode_strict(body, Frame)
            assert isinstance(frame, RaftFrame)
            self.written.append((frame.flow, frame.seq, frame.message.seq))

    @invariant()
    def queues_live_only_on_open_links_and_match_the_budget(self) -> None:
        if not hasattr(self, "peer"):
            return
        queued = 0
        for held in self.peer.links.values():
            if held.connection is not None:
                assert held.connection.open
                queued += len(held.connection.outbox.raft)
        assert queued == self.peer.budget.frames <= self.peer.budget.max_frames

    @invariant()
    def each_flow_waits_in_the_one_queue_it_maps_to(self) -> None:
        """Where a flow's frames wait is where its next send goes, so nothing can overtake."""
        if not hasattr(self, "peer"):
            return
        for held in self.peer.links.values():
            if held.connection is None:
                continue
            for item in held.connection.outbox.raft:
                assert self.peer.pick(item.flow, self.mode) is held.connection

    @invariant()
    def each_flow_is_written_in_order_once(self) -> None:
        if not hasattr(self, "peer"):
            return
        numbers = [number for _, _, number in self.written]
        assert len(numbers) == len(set(numbers))
        assert set(numbers) <= self.queued
        for flow in range(FLOWS):
            seqs = [seq for f, seq, _ in self.written if f == flow]
            assert seqs == sorted(seqs)

    @precondition(lambda self: hasattr(self, "peer"))
    @invariant()
    def every_queued_message_is_written_waiting_or_counted_lost(self) -> None:
        waiting = self.peer.budget.frames
        assert len(self.written) + waiting + self.peer.lost_on_close == len(self.queued)


Routing.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_routing = Routing.TestCase


def test_a_flow_moved_by_another_links_close_keeps_its_order() -> None:
    """Found by the machine above: with three links, flow 1 waits on link 1; link 0
    closes, so flow 1 now maps to link 2 and the next send goes there; then link 1
    closes and its waiting frame must not land behind the newer one."""
    state = Routing()
    state.start(mode=BondMode.BALANCE_FLOW, queue_frames=4)
    for link in range(LINKS):
        state.link_up(link)
    state.send(flow=1)
    state.link_down(link=0)
    state.each_flow_waits_in_the_one_queue_it_maps_to()
    state.send(flow=1)
    state.link_down(link=1)
    state.writer_drains(link=2, limit=2)
    assert [seq for flow, seq, _ in state.written if flow == 1] == [0, 1]
    state.each_flow_is_written_in_order_once()
    state.every_queued_message_is_written_waiting_or_counted_lost()
    state.teardown()
