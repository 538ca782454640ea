"""Resource groups on real node processes: a real TCP server fails over when its node is
killed with kill -9, fails back as its policy says, moves off a drained node, and moves on
when it cannot start; the node stays up through bad resources."""

from __future__ import annotations

import os
import time
from pathlib import Path

import attrs
import pytest
import trio

from statemachine.groups.messages import (
    DrainNode,
    Failback,
    GroupState,
    ResourceFailed,
    ResumeNode,
)
from tests.groups_live.kit import (
    GROUP_SETTINGS,
    ask,
    create,
    echo_group,
    events,
    free_port,
    online_on,
    until_answer,
    until_group,
    write,
)
from tests.live_kit import live_cluster

pytestmark = pytest.mark.trio


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def until_gone(pid: int) -> None:
    with trio.fail_after(10):
        while not gone(pid):
            await trio.sleep(0.02)


async def test_a_group_fails_over_on_kill_9_and_fails_back_immediately(tmp_path: Path) -> None:
    port = free_port()
    async with live_cluster(tmp_path, settings=GROUP_SETTINGS) as live, live.client() as client:
        spec = echo_group("web", port, preferred_owners=(1, 2, 3), failback=Failback.IMMEDIATE)
        await create(client, spec)
        first = await until_group(client, "web", online_on(1), "online on node 1")
        (node, epoch, pid), _ = await until_answer(port, lambda a: a[0] == 1, "node 1's server")
        assert (node, epoch) == (1, first.epoch)

        await live.kill(1)
        killed = time.monotonic()
        await until_gone(pid)  # the node's watchdog killed its resources at once
        (node, epoch, _), _ = await until_answer(port, lambda a: a[0] == 2, "node 2's server")
        failover_s = time.monotonic() - killed
        assert epoch > first.epoch
        moved = await until_group(client, "web", online_on(2), "online on node 2")
        assert moved.epoch == epoch
        assert failover_s < 10, failover_s  # the bench measures it; here: it happened

        await live.start(1)  # a new incarnation: NodeUp, then failback to node 1
        (node, back, _), _ = await until_answer(port, lambda a: a[0] == 1, "the failback")
        assert back > epoch
        await until_group(client, "web", online_on(1), "back on node 1")


async def test_a_drained_node_s_group_moves_off_and_comes_back_on_resume(tmp_path: Path) -> None:
    port = free_port()
    async with live_cluster(tmp_path, settings=GROUP_SETTINGS) as live, live.client() as client:
        await create(client, echo_group("db", port, preferred_owners=(2, 3, 1)))
        await until_group(client, "db", online_on(2), "online on node 2")
        (_, _, pid), _ = await until_answer(port, lambda a: a[0] == 2, "node 2's server")
        await write(client, DrainNode(2, int(time.time() * 1000)))
        await until_answer(port, lambda a: a[0] == 3, "node 3's server")
        await until_gone(pid)  # stopped on node 2 before it started on node 3
        # (A resume with failback moves groups that are ONLINE: wait for the report.)
        await until_group(client, "db", online_on(3), "online on node 3")
        await write(client, ResumeNode(2, True, int(time.time() * 1000)))
        await until_group(client, "db", online_on(2), "back on node 2")
        await until_answer(port, lambda a: a[0] == 2, "back on node 2")


async def test_a_resource_that_cannot_start_moves_on_after_its_restarts(tmp_path: Path) -> None:
    port = free_port()
    async with live_cluster(tmp_path, settings=GROUP_SETTINGS) as live, live.client() as client:
        spec = echo_group("flaky", port, preferred_owners=(1, 2, 3))
        # On node 1 the command fails at once (exit 3); elsewhere it serves.
        echo = spec.resources[0]
        command = dict(echo.params)["command"]
        wrapped = f"sh -c 'test \"$RAFTCLUSTER_NODE\" = 1 && exit 3; exec {command}'"
        params = tuple(sorted({**dict(echo.params), "command": wrapped}.items()))

        resource = attrs.evolve(echo, params=params, max_restarts=1)
        await create(client, attrs.evolve(spec, resources=(resource,)))
        try:
            await until_answer(port, lambda a: a[0] == 2, "node 2's server")
        except AssertionError:
            for e in await events(client):
                print("EVENT", e)
            raise
        info = await until_group(client, "flaky", online_on(2), "online on node 2")
        failed = [e for e in await events(client) if isinstance(e, ResourceFailed)]
        assert [(e.node, e.restarted) for e in failed] == [(1, True), (1, False)], failed
        assert info.failures and info.failures[0].node == 1


async def test_a_command_that_does_not_exist_is_an_event_and_the_node_stays_up(
    tmp_path: Path,
) -> None:
    async with live_cluster(tmp_path, settings=GROUP_SETTINGS) as live, live.client() as client:
        spec = echo_group("ghost", free_port(), preferred_owners=(1,), possible_owners=(1,))
        resource = spec.resources[0]
        params = tuple(sorted({**dict(resource.params), "command": "/nonexistent/x"}.items()))

        bad = attrs.evolve(resource, params=params)
        await create(client, attrs.evolve(spec, resources=(bad,)))
        info = await until_group(
            client, "ghost", lambda g: g.state == GroupState.FAILED, "failed (no other owner)"
        )
        failed = [e for e in await events(client) if isinstance(e, ResourceFailed)]
        assert failed and "not found" in failed[0].detail, failed
        assert info.owner == 0
        infos = await live.all_answer()
        assert set(infos) == {1, 2, 3}  # every node still up
        assert await ask(free_port()) is None


async def test_a_node_stopped_gracefully_leaves_nothing_running(tmp_path: Path) -> None:
    port = free_port()
    async with live_cluster(tmp_path, settings=GROUP_SETTINGS) as live, live.client() as client:
        await create(client, echo_group("web", port, preferred_owners=(1, 2, 3)))
        await until_group(client, "web", online_on(1), "online on node 1")
        (_, _, pid), _ = await until_answer(port, lambda a: a[0] == 1, "node 1's server")
        assert await live.terminate(1) == 0  # SIGTERM: a graceful stop
        assert gone(pid)  # stopped before the node exited
        await until_answer(port, lambda a: a[0] == 2, "node 2's server")
