"""The link-down signal (`Transport.set_link_down_handler`): a peer that closes its last
connection is reported at once, on both the dialing and the accepting side; a silence
(an idle timeout), a connection this side closes, and a link of a bond that still has
another one up are not reported."""

from __future__ import annotations

import trio

from raftcluster.transport import BondMode, Limits, Transport
from tests.transport_kit import (
    LinkProxy,
    bonded_pair,
    fast_limits,
    make_node,
    start,
    until,
    wire,
)

# The idle timeout is far longer than the test waits: a report can only be the close.
SLOW_IDLE = Limits(keepalive_interval_ms=5_000, idle_timeout_ms=20_000)


def recorder(node: Transport) -> list[int]:
    reported: list[int] = []
    node.set_link_down_handler(reported.append)
    return reported


async def test_a_peer_that_stops_is_reported_at_once_by_the_dialer_and_the_acceptor(
    nursery,
) -> None:
    nodes = [make_node(i, limits=SLOW_IDLE) for i in (1, 2, 3)]
    running = {node.node_id: await start(nursery, node) for node in nodes}
    wire(nodes)
    one, two, three = nodes
    await until(lambda: all(n.is_connected(p) for n in nodes for p in n.peer_ids))
    reports = {node.node_id: recorder(node) for node in nodes}
    # Node 1 dials node 2; node 3 accepted node 2's dial: both sides of the signal.
    with trio.fail_after(2):  # a tenth of the idle timeout
        await running[2].stop()
        await until(lambda: reports[1] == [2] and reports[3] == [2])
    await trio.sleep(0.2)
    assert reports == {1: [2], 2: [], 3: [2]}  # once each, and nothing about the others
    assert one.is_connected(3) and three.is_connected(1)


async def test_a_peer_removed_here_is_not_reported(nursery) -> None:
    nodes = [make_node(i, limits=SLOW_IDLE) for i in (1, 2)]
    for node in nodes:
        await start(nursery, node)
    wire(nodes)
    one, two = nodes
    await until(lambda: one.is_connected(2) and two.is_connected(1))
    reports = recorder(one)
    one.remove_peer(2)  # this side closes the link
    await until(lambda: not two.is_connected(1))
    await trio.sleep(0.2)
    assert reports == []


async def test_a_silent_link_times_out_without_a_report(nursery, caplog) -> None:
    one = make_node(1, limits=fast_limits())
    two = make_node(2, limits=fast_limits())
    for node in (one, two):
        await start(nursery, node)
    proxy = LinkProxy(two.listen_addresses[0])
    await nursery.start(proxy.run)
    one.set_peer(2, [proxy.address])
    two.set_peer(1, one.listen_addresses)
    await until(lambda: one.is_connected(2))
    reports = recorder(one)
    proxy.blackhole()  # open, but nothing gets through: the idle timeout (600 ms) ends it
    await until(lambda: not one.is_connected(2), timeout_s=5)
    await trio.sleep(0.1)
    assert reports == []
    assert "node 1: closed node 2 link 0: nothing from node 2" in caplog.text  # idle


async def test_a_bond_is_reported_down_only_when_its_last_link_closes(nursery) -> None:
    one, _, proxies = await bonded_pair(nursery, BondMode.ACTIVE_BACKUP, SLOW_IDLE)
    reports = recorder(one)
    proxies[0].cut()  # the proxy closes both ends: node 1 sees a close on link 0
    await until(lambda: sum(link.connected for link in one.stats().peer(2).links) == 1)
    await trio.sleep(0.1)
    assert reports == []  # link 1 is still up
    proxies[1].cut()
    await until(lambda: reports == [2], timeout_s=2)
