"""A resource type of one's own, given to a node through the Python API: the node starts,
monitors and stops it under the group's epoch, the same way as the built-in types."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import trio

from raftcluster.client.runner import CoreRunner
from raftcluster.config import client_transport_config, endpoints, init_cluster, node_settings
from raftcluster.node import run
from raftcluster.resources import Kinds, ResourceContext, ResourceFailed, Severity
from statemachine.groups.messages import GroupSpec, GroupState, ResourceSpec, SetGroupOffline
from tests.groups_live.kit import GROUP_SETTINGS, create, until_group, write

pytestmark = pytest.mark.trio


class Lamp:
    """A "resource" that is a flag in memory: on while started."""

    name = "lamp"

    def __init__(self) -> None:
        self.on: dict[str, int] = {}  # key -> epoch
        self.calls: list[tuple[str, str, int]] = []

    def check(self, params: Mapping[str, str]) -> None:
        if params.get("color", "white") not in ("white", "red"):
            raise ResourceFailed(f"no {params['color']} lamp", Severity.CONFIG)

    async def start(self, ctx: ResourceContext) -> None:
        self.calls.append(("start", ctx.key, ctx.epoch))
        assert ctx.env["RAFTCLUSTER_EPOCH"] == str(ctx.epoch)
        self.on[ctx.key] = ctx.epoch

    async def stop(self, ctx: ResourceContext) -> None:
        self.calls.append(("stop", ctx.key, ctx.epoch))
        self.on.pop(ctx.key, None)

    async def monitor(self, ctx: ResourceContext) -> None:
        if ctx.key not in self.on:
            raise ResourceFailed("the lamp is off")


async def test_a_node_runs_a_resource_type_of_its_own(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=1, settings=GROUP_SETTINGS)
    lamp = Lamp()
    with trio.fail_after(60):
        async with (
            run(node_settings(cluster, 1), kinds=Kinds([lamp])),
            CoreRunner.open(endpoints(cluster), client_transport_config(cluster)) as client,
        ):
            resource = ResourceSpec("porch", "lamp", params=(("color", "red"),))
            await create(client, GroupSpec("lights", resources=(resource,)), members=(1,))
            info = await until_group(
                client, "lights", lambda g: g.state == GroupState.ONLINE, "online"
            )
            assert lamp.on == {"lights/porch": info.epoch}
            await write(client, SetGroupOffline("lights", 0))
            await until_group(client, "lights", lambda g: g.state == GroupState.OFFLINE, "off")
            assert lamp.on == {}
            assert lamp.calls == [
                ("start", "lights/porch", info.epoch),
                ("stop", "lights/porch", info.epoch),
            ]
