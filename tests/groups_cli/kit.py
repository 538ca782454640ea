"""One real 3-node cluster per test module, and the command line run against it.

`cluster_up(directory)` writes a cluster file (the live tests' fast Raft timings, and
patient cluster service times: see `GROUP_SETTINGS`), runs `raftcluster up DIR` as a child
process (it starts every node with `raftcluster node run`) and waits until every node
joined the cluster service by itself (the leader's node manager joins every voter it
hears from) and is UP; leaving the block stops `up` with SIGINT (it stops its nodes) and
waits for it. A module-scoped fixture built on it lets every test of a module share one
cluster: each test uses group names of its own. `cli(cluster, ...)` runs a command line in
this process (its output captured), `cli_process` as `python -m raftcluster ...`.

The nodes really run the groups, so the groups revision moves by itself (reports, a
group coming ONLINE, a failback). A test that checks that a command changed nothing
first waits for a settled cluster (`settled`: every member UP, every group in the state
it is wanted in, the revision still for `QUIET_S`), then checks that no event the
command would have caused appeared after it (`events_after`, `about`).
"""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import trio

import raftcluster
from raftcluster import ClientOptions, SyncClient
from raftcluster.cli import main
from raftcluster.config import ClusterFile, init_cluster
from statemachine.groups.messages import (
    GroupChanged,
    GroupDefined,
    GroupEvent,
    GroupInfo,
    GroupList,
    GroupPlaced,
    GroupState,
    ListGroups,
    NodeState,
    ResourceFailed,
    StaleReportRefused,
)
from tests.live_kit import SETTINGS, WAIT_S, Ran

T = TypeVar("T")
PATIENT = ClientOptions(
    connect_timeout_ms=int(WAIT_S * 1000), request_timeout_ms=int(WAIT_S * 1000)
)
# The cluster service's times: these tests are about what the commands say and change,
# not about failover speed, so a node is declared down only after 3 s of silence (the
# timing rule's minimum with these times and an election timeout of 600 ms: 2,906 ms).
# A loaded machine (two clusters under -n 2) then does not fail nodes over by itself.
GROUP_SETTINGS: dict[str, int | bool] = {
    "groups.heartbeat_interval_ms": 200,
    "groups.fence_after_ms": 2_000,
    "groups.node_down_after_ms": 3_000,
}
QUIET_S = 1.0  # a settled cluster: the revision did not move for this long
SLEEPER = "sleep 1000"  # a real, cheap resource command (it outlives any test module)


def cli(cluster: ClusterFile, *args: str) -> Ran:
    """`raftcluster ARGS --cluster DIR` in this process (`raftcluster.cli.main`: the command
    line's own code, over real TCP, without a new interpreter's start-up for each call)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--cluster", str(cluster.path)])
    return Ran(code, out.getvalue(), err.getvalue())


def cli_process(cluster: ClusterFile, *args: str, timeout_s: float = WAIT_S) -> Ran:
    """`python -m raftcluster ARGS --cluster DIR` as a child process."""
    command = [sys.executable, "-m", "raftcluster", *args, "--cluster", str(cluster.path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    return Ran(done.returncode, done.stdout, done.stderr)


def groups_revision(client: SyncClient) -> int:
    listing = client.read(ListGroups())
    assert isinstance(listing, GroupList)
    return listing.revision


async def revision(client: raftcluster.Client) -> int:
    """The groups revision now."""
    listing = await client.read(ListGroups())
    assert isinstance(listing, GroupList)
    return listing.revision


# -- waits (async, for a `raftcluster.Client`; `synchronously` runs one from plain code) --


async def until(what: str, check: Callable[[], Awaitable[T | None]]) -> T:
    """Poll `check()` until it returns something other than None (or False); return it.
    Fails after WAIT_S, naming `what`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = await check()
        if found is not None and found is not False:
            return found
        await trio.sleep(0.05)
    raise AssertionError(f"waited {WAIT_S} s for {what}")


async def all_members_up(client: raftcluster.Client) -> None:
    """Until every node of the cluster file is a member of the cluster service, UP."""

    async def check() -> bool:
        nodes = await client.nodes.list()
        return [(n.node, n.state) for n in nodes] == [(n, NodeState.UP) for n in
                                                      client.node_ids]  # fmt: skip

    await until("every node to be a member, UP", check)


async def group_state(
    client: raftcluster.Client, name: str, state: GroupState, owner: int | None = None
) -> GroupInfo:
    """Until group `name` is in `state` (on `owner`, if given); its info then."""

    async def check() -> GroupInfo | None:
        g = await client.groups.get(name)
        return g if g.state == state and owner in (None, g.owner) else None

    where = f" on node {owner}" if owner is not None else ""
    return await until(f"group {name} {state.name}{where}", check)


async def settled(client: raftcluster.Client) -> int:
    """Until the cluster is settled: every node a member and UP, every group ONLINE if it
    is wanted online and OFFLINE if not, no move under way, and the groups revision still
    for QUIET_S while that holds (no report or placement left to come). The revision."""
    wanted = [(n, NodeState.UP) for n in client.node_ids]

    async def revision_if_settled() -> int | None:
        listing = await client.read(ListGroups())
        assert isinstance(listing, GroupList)
        nodes = await client.nodes.list()
        still = all(
            g.state == (GroupState.ONLINE if g.online else GroupState.OFFLINE) and not g.moving_to
            for g in listing.groups
        )
        members_up = [(n.node, n.state) for n in nodes] == wanted
        return listing.revision if still and members_up else None

    async def check() -> int | None:
        first = await revision_if_settled()
        if first is None:
            return None
        await trio.sleep(QUIET_S)
        return first if await revision_if_settled() == first else None

    return await until("a settled cluster", check)


async def events_after(client: raftcluster.Client, revision: int) -> list[GroupEvent]:
    """Every event after `revision`, up to now."""
    events = client.events(revision + 1)
    found: list[GroupEvent] = []
    while page := await events.page():
        found.extend(page)
    return found


async def event_after(
    client: raftcluster.Client, revision: int, wanted: Callable[[GroupEvent], bool], what: str
) -> GroupEvent:
    """The first event after `revision` that passes `wanted` (waiting for it)."""
    with trio.move_on_after(WAIT_S):
        async for event in client.events(revision + 1):
            if wanted(event):
                return event
    raise AssertionError(f"waited {WAIT_S} s for an event after revision {revision}: {what}")


def placed(group: str, rule: str) -> Callable[[GroupEvent], bool]:
    """An event filter: `group` placed by `rule`."""
    return lambda e: isinstance(e, GroupPlaced) and (e.decision.group, e.decision.rule) == (
        group, rule)  # fmt: skip


def online_on(group: str, node: int) -> Callable[[GroupEvent], bool]:
    """An event filter: `group` ONLINE on `node`."""
    return lambda e: isinstance(e, GroupChanged) and (e.group, e.state, e.owner) == (
        group, GroupState.ONLINE, node)  # fmt: skip


def about(events: list[GroupEvent], *groups: str) -> list[GroupEvent]:
    """The events among `events` that concern any of `groups`."""

    def group_of(e: GroupEvent) -> str | None:
        if isinstance(e, GroupDefined):
            return e.spec.name
        if isinstance(e, GroupPlaced):
            return e.decision.group
        if isinstance(e, GroupChanged | ResourceFailed | StaleReportRefused):
            return e.group
        return None

    return [e for e in events if group_of(e) in groups]


def synchronously(cluster: ClusterFile, wait: Callable[[raftcluster.Client], Awaitable[T]]) -> T:
    """`wait(client)` with a client of its own, from code that does not run trio."""

    async def run() -> T:
        async with raftcluster.connect(cluster, options=PATIENT) as client:
            return await wait(client)

    return trio.run(run)


@contextlib.contextmanager
def cluster_up(directory: Path) -> Iterator[ClusterFile]:
    cluster = init_cluster(directory, nodes=3, settings={**SETTINGS, **GROUP_SETTINGS})
    log_path = directory / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "raftcluster", "up", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        synchronously(cluster, all_members_up)
        yield cluster
    except BaseException:
        print(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
