"""The handshake checks member incarnations (docs/security.md): after `member replace`, a
process of the old identity cannot link up; a node the acceptor does not know as a member
yet (it is behind, or joining) is not refused for it. Real transports on real TCP, with
the node's rule (`raftcluster.node.trust.member_refusal`) over a configuration."""

from __future__ import annotations

import logging

import pytest
import trio

from raftcluster.node.trust import member_refusal
from raftcluster.raft.membership import make_conf
from raftcluster.raft.types import ConfState, Member
from raftcluster.transport import RefusalReason, Transport
from tests.transport_kit import make_node, start, until

# Node 1 was replaced: the log records it under incarnation 7 now (its old process: 5).
REPLACED = make_conf(
    voters=(1, 2), members=(Member(1, ("127.0.0.1:1",), 7), Member(2, ("127.0.0.1:2",), 0))
)


def judged_by(transport: Transport, conf: ConfState) -> None:
    transport.set_member_check(lambda node, incarnation: member_refusal(conf, node, incarnation))


def last_error(dialer: Transport, peer: int) -> str:
    links = dialer.stats().peer(peer).links
    return links[0].last_error if links else ""


async def test_an_old_incarnation_is_refused_and_the_current_one_links_up(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "raftcluster.transport")
    acceptor = make_node(2)
    judged_by(acceptor, REPLACED)
    await start(nursery, acceptor)

    old = make_node(1, member_incarnation=5)  # the replaced member's process, still running
    old_running = await start(nursery, old)
    old.set_peer(2, acceptor.listen_addresses)
    acceptor.set_peer(1, old.listen_addresses)  # the lower id dials: node 2 only accepts
    await until(lambda: RefusalReason.STALE_MEMBER.name.lower() in last_error(old, 2))
    assert not old.is_connected(2) and not acceptor.is_connected(1)
    assert acceptor.stats().handshakes_refused >= 1
    assert "came with member incarnation 5" in caplog.text
    assert "records incarnation 7" in caplog.text
    await old_running.stop()

    new = make_node(1, member_incarnation=7)  # the member the log records
    await start(nursery, new)
    new.set_peer(2, acceptor.listen_addresses)
    await until(lambda: new.is_connected(2) and acceptor.is_connected(1))


async def test_a_dialing_node_refuses_an_acceptor_of_an_old_incarnation(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "raftcluster.transport")
    # Node 2 was replaced (incarnation 9 now); its old process still listens.
    conf = make_conf(
        voters=(1, 2), members=(Member(1, ("127.0.0.1:1",), 0), Member(2, ("127.0.0.1:2",), 9))
    )
    old_acceptor = make_node(2, member_incarnation=4)
    await start(nursery, old_acceptor)
    dialer = make_node(1)
    judged_by(dialer, conf)
    await start(nursery, dialer)
    dialer.set_peer(2, old_acceptor.listen_addresses)
    old_acceptor.set_peer(1, dialer.listen_addresses)
    await until(lambda: "stale_member" in last_error(dialer, 2))
    assert not dialer.is_connected(2)
    assert "came with member incarnation 4" in caplog.text  # the dialer logs why


async def test_a_node_the_acceptor_does_not_record_yet_is_not_refused(
    nursery: trio.Nursery,
) -> None:
    """A learner whose addition the acceptor's log does not hold yet (the acceptor is
    behind, or is joining with an empty configuration) links up under any incarnation."""
    for conf in (make_conf(voters=(2, 3)), ConfState()):
        acceptor = make_node(2)
        judged_by(acceptor, conf)
        running = await start(nursery, acceptor)
        learner = make_node(1, member_incarnation=123)
        learner_running = await start(nursery, learner)
        learner.set_peer(2, acceptor.listen_addresses)
        acceptor.set_peer(1, learner.listen_addresses)
        await until(lambda: learner.is_connected(2))  # noqa: B023 - awaited in this turn
        await learner_running.stop()
        await running.stop()
