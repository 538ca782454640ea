"""The fencing agent on real nodes: a silent node's groups move only once the agent fenced
it; a failing agent leaves them where they are and is recorded as an event."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from statemachine.groups.messages import GroupState, NodeFenceFailed
from tests.groups_live.kit import (
    GROUP_SETTINGS,
    ask,
    create,
    echo_group,
    events,
    free_port,
    groups,
    online_on,
    until_answer,
    until_group,
)
from tests.live_kit import WAIT_S, live_cluster

pytestmark = pytest.mark.trio
AGENT = Path(__file__).with_name("fence_agent.sh")


async def test_groups_stay_until_the_agent_fences_the_silent_node(tmp_path: Path) -> None:
    fence_dir = tmp_path / "fence"
    fence_dir.mkdir()
    settings = {**GROUP_SETTINGS, "fencing.command": f"sh {AGENT} {fence_dir}"}
    port = free_port()
    cluster_dir = tmp_path / "cluster"
    async with live_cluster(cluster_dir, settings=settings) as live, live.client() as client:
        await create(client, echo_group("web", port, preferred_owners=(1, 2, 3)))
        await until_group(client, "web", online_on(1), "online on node 1")
        await until_answer(port, lambda a: a[0] == 1, "node 1's server")
        await live.kill(1)

        with trio.fail_after(WAIT_S):  # the agent fails: recorded, and nothing moves
            while not [e for e in await events(client) if isinstance(e, NodeFenceFailed)]:
                await trio.sleep(0.05)
        failed = [e for e in await events(client) if isinstance(e, NodeFenceFailed)]
        assert failed[0].node == 1 and "power switch for node 1 unreachable" in failed[0].detail
        web = (await groups(client))["web"]
        assert (web.state, web.owner) == (GroupState.ONLINE, 1)
        assert await ask(port) is None  # (node 1's own watchdog killed its server)
        assert (fence_dir / "calls").read_text().splitlines()[0] == "1 1"

        (fence_dir / "allow").touch()  # the next try fences node 1: web fails over
        await until_answer(port, lambda a: a[0] == 2, "node 2's server")
        await until_group(client, "web", online_on(2), "online on node 2")
        assert len((fence_dir / "calls").read_text().splitlines()) >= 2
