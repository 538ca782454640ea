"""OCF resource agents as groups' resources on real nodes: our counter agent runs (with the
group's epoch in its environment); agents that print garbage or hang past their timeout
are failures recorded as events, and every node stays up; Debian's Dummy runs where the
resource-agents package is installed."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from statemachine.groups.messages import GroupSpec, GroupState, ResourceFailed, ResourceSpec
from tests.groups_live.kit import GROUP_SETTINGS, create, events, online_on, until_group
from tests.live_kit import live_cluster

pytestmark = pytest.mark.trio
COUNTER = Path(__file__).parents[1] / "resources" / "agents" / "counter"
DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")


def ocf_group(name: str, node: int, **params: str) -> GroupSpec:
    resource = ResourceSpec(
        "agent", "ocf", params=tuple(sorted(params.items())), start_timeout_ms=10_000,
        monitor_interval_ms=500, max_restarts=0,
    )  # fmt: skip
    return GroupSpec(name, resources=(resource,), preferred_owners=(node,), possible_owners=(node,))


async def test_ocf_agents_run_fail_and_hang_without_harm(tmp_path: Path) -> None:
    async with live_cluster(tmp_path / "c", settings=GROUP_SETTINGS) as live, live.client() as c:
        ok_state = tmp_path / "ok.state"
        await create(c, ocf_group("counter", 2, agent=str(COUNTER), state=str(ok_state)))
        garbage = ocf_group("garbage", 1, agent=str(COUNTER), mode="garbage", state=str(tmp_path))
        await create(c, garbage)
        hang = ocf_group("hang", 3, agent=str(COUNTER), mode="hang", state=str(tmp_path / "h"))
        quick = attrs.evolve(hang.resources[0], start_timeout_ms=1_000)
        await create(c, attrs.evolve(hang, resources=(quick,)))
        info = await until_group(c, "counter", online_on(2), "online on node 2")
        env = ok_state.read_text()
        assert f"RAFTCLUSTER_EPOCH={info.epoch}\n" in env and "RAFTCLUSTER_NODE=2\n" in env
        assert "OCF_RESOURCE_INSTANCE=counter:agent\n" in env

        for name in ("garbage", "hang"):
            await until_group(c, name, lambda g: g.state == GroupState.FAILED, "failed")
        failed = {e.group: e for e in await events(c) if isinstance(e, ResourceFailed)}
        assert failed["garbage"].detail.isprintable() and "exit 1" in failed["garbage"].detail
        assert "timed out" in failed["hang"].detail, failed["hang"]
        assert set(await live.all_answer()) == {1, 2, 3}  # every node still up


async def test_debian_dummy_agent_runs_as_a_group(tmp_path: Path) -> None:
    if not DUMMY.exists():
        pytest.skip(f"{DUMMY} is missing: apt-get install resource-agents (.ci/run does it)")
    async with live_cluster(tmp_path / "c", settings=GROUP_SETTINGS) as live, live.client() as c:
        del live
        state = tmp_path / "dummy.state"
        await create(c, ocf_group("dummy", 1, agent="ocf:heartbeat:Dummy", state=str(state)))
        await until_group(c, "dummy", online_on(1), "online on node 1")
        assert state.exists()
