"""Resource groups on real node processes: the settings, a group of the echo server, and
waits on what the cluster says and what the resource answers.

The cluster service's times are short here (a lease of 600 ms, heartbeats every 200 ms)
so that a failover takes under two seconds; the loader checks the timing rule.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import trio

from raftcluster.client.runner import CoreRunner
from raftcluster.config.init import free_ports
from statemachine.codec import Message
from statemachine.groups.messages import (
    CreateGroup,
    EventPage,
    Failback,
    GetEvents,
    GroupEvent,
    GroupInfo,
    GroupList,
    GroupSpec,
    GroupState,
    ListGroups,
    ListNodes,
    NodeList,
    NodeState,
    ResourceSpec,
)
from tests.live_kit import WAIT_S

GROUP_SETTINGS: dict[str, int | bool] = {
    # A node stops its groups once two heartbeat intervals pass without a renewed lease:
    # 400 ms here, so that a loaded test machine's stalls do not fence healthy nodes.
    "groups.heartbeat_interval_ms": 200,
    "groups.fence_after_ms": 600,
    "groups.kill_ms": 100,
    "groups.node_down_after_ms": 0,  # the rule's minimum with E = 600 (1 503), rounded: 1 600
    "groups.tick_interval_ms": 200,
    "groups.report_retry_ms": 500,
}
ECHO = Path(__file__).with_name("echo_server.py")


def free_port() -> int:
    return free_ports(1)[0]


def echo_resource(port: int, name: str = "echo", **policy: int) -> ResourceSpec:
    command = f"{sys.executable} {ECHO} {port}"
    return ResourceSpec(
        name,
        "process",
        params=(("command", command), ("health", f"tcp:127.0.0.1:{port}")),
        **{"monitor_interval_ms": 500, "start_timeout_ms": 10_000, "stop_timeout_ms": 2_000,
           **policy},
    )  # fmt: skip


def echo_group(name: str, port: int, **policy: object) -> GroupSpec:
    return GroupSpec(name, resources=(echo_resource(port),), **policy)  # type: ignore[arg-type]


async def ask(port: int, timeout_s: float = 0.5) -> tuple[int, int, int] | None:
    """(node, epoch, pid) from the echo server on `port`, or None if nothing answers."""
    with trio.move_on_after(timeout_s):
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            return None
        async with stream:
            data = b""
            while not data.endswith(b"\n"):
                chunk = await stream.receive_some(256)
                if not chunk:
                    return None
                data += chunk
        node, epoch, pid = data.split()
        return int(node), int(epoch), int(pid)
    return None


async def until_answer(
    port: int, check: Callable[[tuple[int, int, int]], bool], what: str
) -> tuple[tuple[int, int, int], float]:
    """The first answer on `port` that passes `check`, and the seconds it took."""
    started = time.monotonic()
    deadline = started + WAIT_S
    while time.monotonic() < deadline:
        answer = await ask(port)
        if answer is not None and check(answer):
            return answer, time.monotonic() - started
        await trio.sleep(0.01)
    raise AssertionError(f"waited {WAIT_S} s for {what} on port {port}")


async def write(client: CoreRunner, command: Message) -> Message:
    done = await client.write(command, timeout_ms=int(WAIT_S * 1000))
    assert done.ok, done.error
    assert done.result is not None
    return done.result


async def groups(client: CoreRunner) -> dict[str, GroupInfo]:
    done = await client.read(ListGroups(), timeout_ms=int(WAIT_S * 1000))
    assert done.ok and isinstance(done.result, GroupList), done.error
    return {g.spec.name: g for g in done.result.groups}


async def until_group(
    client: CoreRunner, name: str, check: Callable[[GroupInfo], bool], what: str
) -> GroupInfo:
    deadline = time.monotonic() + WAIT_S
    info = None
    while time.monotonic() < deadline:
        info = (await groups(client)).get(name)
        if info is not None and check(info):
            return info
        await trio.sleep(0.05)
    raise AssertionError(f"waited {WAIT_S} s for {name} to be {what}; last {info}")


def online_on(node: int) -> Callable[[GroupInfo], bool]:
    return lambda g: g.state == GroupState.ONLINE and g.owner == node


async def events(client: CoreRunner) -> list[GroupEvent]:
    done = await client.read(GetEvents(1), timeout_ms=int(WAIT_S * 1000))
    assert done.ok and isinstance(done.result, EventPage), done.error
    return list(done.result.events)


async def create(client: CoreRunner, spec: GroupSpec, members: tuple[int, ...] = (1, 2, 3)) -> None:
    """Create `spec` online once every node of `members` joined the service (UP): a group
    created earlier is placed among the nodes that joined by then."""
    deadline = time.monotonic() + WAIT_S
    while True:
        done = await client.read(ListNodes(), timeout_ms=int(WAIT_S * 1000))
        assert done.ok and isinstance(done.result, NodeList), done.error
        up = {n.node for n in done.result.nodes if n.state == NodeState.UP}
        if set(members) <= up:
            break
        assert time.monotonic() < deadline, f"nodes {members} did not all join: {up}"
        await trio.sleep(0.05)
    await write(client, CreateGroup(spec, True, int(time.time() * 1000)))


__all__ = ["Failback", "GroupState"]
