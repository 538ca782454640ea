"""Frames queued inside a hold (`raftcluster.transport.corking`) are written when it
closes, by the code that closes it, in order; what the socket does not take at once is
finished by the connection's writer. Real transports on 127.0.0.1."""

from __future__ import annotations

import trio
import trio.testing

from raftcluster.transport import Transport, corking
from tests.transport_kit import Note, connected, receive_notes, start_nodes, until


def frames_out(transport: Transport, peer: int) -> int:
    return sum(link.frames_out for link in transport.stats().peer(peer).links)


async def test_frames_queued_in_a_hold_are_written_as_it_closes(nursery) -> None:
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    await trio.testing.wait_all_tasks_blocked()  # every writer waits, with nothing to send
    before = frames_out(one, 2)
    with corking.held():
        with corking.held():  # holds nest: only the outermost writes
            for seq in range(5):
                assert one.send(2, Note(seq))
        inside = frames_out(one, 2)
    closed = frames_out(one, 2)  # no checkpoint since: written by the hold's close itself
    assert (inside, closed) == (before, before + 5)
    got = await receive_notes(two, 5)
    assert [incoming.message for incoming in got] == [Note(seq) for seq in range(5)]


async def test_what_the_socket_does_not_take_the_writer_sends_in_order(nursery) -> None:
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    await trio.testing.wait_all_tasks_blocked()
    big, text = "y" * 7_000_000, "x" * 200_000
    with corking.held():  # a frame larger than a socket buffer takes at once, then more
        assert one.send(2, Note(0, big))
        for seq in range(1, 40):
            assert one.send(2, Note(seq, text))
    for seq in range(40, 45):  # queued behind what is left over, outside any hold
        assert one.send(2, Note(seq))
    got = await receive_notes(two, 45, timeout_s=30)
    assert [incoming.message.seq for incoming in got] == list(range(45))
    assert got[0].message.text == big
    assert all(incoming.message.text == text for incoming in got[1:40])
    assert one.is_connected(2) and two.is_connected(1)
