"""The Python API of the cluster service (`client.groups`, `client.nodes`,
`client.events`) and its synchronous twins, against one shared live 3-node cluster
(kit.py); the events' paging and compaction against the state machine itself, in this
process (`ClusterState` answering as a cluster would)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

import raftcluster
from raftcluster import (
    EventsCompacted,
    GroupFileError,
    GroupNotFound,
    GroupSpec,
    InvalidArgument,
    NodeNotMember,
    Rejected,
    ResourceSpec,
)
from raftcluster.client.events import GroupEvents
from raftcluster.client.group_file import GroupEntry, GroupFile
from raftcluster.config import ClusterFile
from statemachine.cluster import ClusterState
from statemachine.codec import Message
from statemachine.groups import GroupsConfig
from statemachine.groups.messages import (
    CreateGroup,
    Failback,
    GroupChanged,
    GroupDefined,
    GroupInfo,
    GroupPlaced,
    GroupState,
    JoinNode,
    NodeChanged,
    NodeState,
)
from statemachine.results import Failure, to_exception
from tests.groups_cli.kit import (
    PATIENT,
    SLEEPER,
    about,
    event_after,
    events_after,
    group_state,
    groups_revision,
    online_on,
    placed,
    settled,
    synchronously,
    until,
)
from tests.live_kit import WAIT_S

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


async def test_groups(cluster: ClusterFile, tmp_path: Path) -> None:
    async with raftcluster.connect(cluster, options=PATIENT) as client:
        groups = client.groups
        done = await groups.create(GroupSpec("p-web", preferred_owners=(3, 1)))
        assert (await groups.get("p-web")).online and done.revision >= 3
        web = await group_state(client, "p-web", GroupState.ONLINE, owner=3)
        assert web.epoch > 0 and (web.decision.node, web.decision.rule) == (3, "start")
        with pytest.raises(Rejected, match="a group named 'p-web' exists"):
            await groups.create(GroupSpec("p-web"))
        with pytest.raises(GroupNotFound, match="no group named 'p-nope'"):
            await groups.get("p-nope")

        # node 1 preferred now, failback immediate: the group moves there at once
        changed = await groups.set(
            "p-web", failback="immediate", preferred_owners=[1, 3], stickiness=5
        )
        spec = (await groups.get("p-web")).spec
        assert (spec.failback, spec.preferred_owners, spec.stickiness) == (
            Failback.IMMEDIATE, (1, 3), 5)  # fmt: skip
        back = await event_after(client, done.revision, placed("p-web", "failback"), "failback")
        assert isinstance(back, GroupPlaced) and back.decision.node == 1
        assert back.revision <= changed.revision  # placed by the UpdateGroup itself
        moved = await group_state(client, "p-web", GroupState.ONLINE, owner=1)
        assert moved.epoch > web.epoch
        with pytest.raises(InvalidArgument, match=r"Groups.set\(sticky=\): unknown field"):
            await groups.set("p-web", sticky=1)
        with pytest.raises(InvalidArgument, match="stickiness"):
            await groups.set("p-web", stickiness=-1)

        await groups.create(GroupSpec("p-db"), online=False)
        sleeper = ResourceSpec("sleeper", "process", (("command", SLEEPER),))
        await groups.add_resource("p-db", sleeper)
        assert [r.name for r in (await groups.get("p-db")).spec.resources] == ["sleeper"]
        with pytest.raises(InvalidArgument, match="no resource named 'nope'"):
            await groups.remove_resource("p-db", "nope")
        with pytest.raises(Rejected, match="'p-web' is ONLINE: its resources change only"):
            await groups.add_resource("p-web", sleeper)
        await groups.remove_resource("p-db", "sleeper")
        assert (await groups.get("p-db")).spec.resources == ()
        await groups.online("p-db")
        assert (await groups.get("p-db")).online
        await group_state(client, "p-db", GroupState.ONLINE)
        await groups.offline("p-db")
        await group_state(client, "p-db", GroupState.OFFLINE)

        decision = await groups.why("p-web")
        assert (decision.node, decision.rule) == (1, "move")  # the failback's move completed
        before = await settled(client)
        placement = await groups.simulate(node_down=1)
        mine = next(d for d in placement.decisions if d.group == "p-web")
        assert (mine.node, mine.rule) == (3, "failover")
        after = await events_after(client, before)  # a query: it wrote nothing
        assert not about(after, "p-web") and not [e for e in after if isinstance(e, NodeChanged)]
        assert (await groups.get("p-web")).owner == 1

        # an operator's move to node 2 happens; failback (immediate) then brings it back
        asked = await groups.move("p-web", 2)
        there = await event_after(client, asked.revision, online_on("p-web", 2), "p-web on 2")
        assert isinstance(there, GroupChanged) and there.epoch > moved.epoch
        await event_after(client, there.revision, online_on("p-web", 1), "p-web back on 1")
        assert "p-web" in {g.spec.name for g in await groups.list()}

        # apply: a parsed file, then the same again (no write); a bad file writes nothing
        file = GroupFile("mem", (GroupEntry(GroupSpec("p-api", priority=5), online=False),))
        first = await groups.apply(file)
        assert (first.created, first.writes) == (("p-api",), 1)
        again = await groups.apply(file)
        assert (again.unchanged, again.writes) == (("p-api",), 0)
        assert again.revision >= first.revision  # (the nodes' own events may move it)
        assert not about(await events_after(client, first.revision), "p-api")
        bad = tmp_path / "bad.toml"
        bad.write_text('[[groups]]\nname = "p-x"\nprority = 1\n')
        with pytest.raises(GroupFileError, match=r"groups\[p-x\]: unknown key 'prority'"):
            await groups.apply(bad)
        await groups.create(GroupSpec("p-gone"), online=False)
        await groups.delete("p-gone")
        with pytest.raises(GroupNotFound):
            await groups.delete("p-gone")


async def test_nodes(cluster: ClusterFile) -> None:
    async with raftcluster.connect(cluster, options=PATIENT) as client:
        nodes = client.nodes
        assert [(n.node, n.state) for n in await nodes.list()] == [
            (1, NodeState.UP), (2, NodeState.UP), (3, NodeState.UP)]  # fmt: skip
        sleeper = ResourceSpec("sleeper", "process", (("command", SLEEPER),))
        await client.groups.create(GroupSpec("n-app", (sleeper,), preferred_owners=(2,)))
        await group_state(client, "n-app", GroupState.ONLINE, owner=2)
        assert "n-app" in {g.spec.name for g in (await nodes.status(2)).groups}

        await nodes.drain(2)  # its groups move off: stopped there, started elsewhere
        assert (await nodes.status(2)).info.state == NodeState.DRAINING
        moved = await until("n-app moved off node 2", lambda: online_elsewhere(client, 2))
        assert "n-app" not in {g.spec.name for g in (await nodes.status(2)).groups}
        assert "n-app" in {g.spec.name for g in (await nodes.status(moved.owner)).groups}

        await nodes.resume(2, failback=False)  # (n-app's own policy: failback never)
        assert (await nodes.status(2)).info.state == NodeState.UP
        await settled(client)
        assert (await client.groups.get("n-app")).owner == moved.owner  # not moved back
        with pytest.raises(NodeNotMember, match="node 7 is not a member"):
            await nodes.drain(7)
        assert client.node_ids == (1, 2, 3)


async def online_elsewhere(client: raftcluster.Client, node: int) -> GroupInfo | None:
    g = await client.groups.get("n-app")
    return g if g.state == GroupState.ONLINE and g.owner not in (0, node) else None


async def test_events_follow_in_order_and_stop_when_cancelled(cluster: ClusterFile) -> None:
    async with raftcluster.connect(cluster, options=PATIENT) as client:
        everything = await client.events().page()
        assert [e.revision for e in everything] == list(range(1, len(everything) + 1))
        assert isinstance(everything[0], NodeChanged)
        last = everything[-1].revision
        seen: list[int] = []
        got_new = trio.Event()

        async def follow() -> None:
            async for event in client.events(last):
                seen.append(event.revision)
                if isinstance(event, GroupDefined) and event.spec.name == "f-new":
                    got_new.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await client.groups.create(GroupSpec("f-new"), online=False)
            with trio.fail_after(WAIT_S):
                await got_new.wait()
            nursery.cancel_scope.cancel()  # stops the follower: nothing is left running
        assert seen == list(range(last, seen[-1] + 1))


def test_the_sync_facade(cluster: ClusterFile) -> None:
    with raftcluster.connect_sync(cluster, options=PATIENT) as client:
        client.groups.create(GroupSpec("y-web", preferred_owners=(1,)), online=False)
        assert client.groups.get("y-web").state == GroupState.OFFLINE
        client.groups.set("y-web", priority=7)
        assert client.groups.get("y-web").spec.priority == 7
        assert client.groups.why("y-web").rule == "offline"
        before = synchronously(cluster, settled)
        assert any(d.group == "y-web" for d in client.groups.simulate(drain=1).decisions)
        assert client.nodes.status(1).info.state == NodeState.UP  # a query: not drained
        assert groups_revision(client) == before  # (settled: nothing else moved it)
        assert [n.node for n in client.nodes.list()] == [1, 2, 3]
        events = client.events(before)
        first = next(iter(events))
        assert first.revision == before and events.next_revision == before + 1
        client.groups.online("y-web")
        following = next(events)
        assert following.revision == before + 1
        assert isinstance(following, GroupPlaced) and following.decision.group == "y-web"


class InProcess:
    """The cluster state answering as a client would (write: apply at the next index;
    read: query; a Failure raised as its typed error): the real state machine, no node."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.index = 0

    async def write(self, command: Message, *, timeout_ms: int | None = None) -> Message:
        self.index += 1
        return self._outcome(self.state.execute(self.index, command).result)

    async def read(
        self, query: Message, *, consistency: str = "linearizable", timeout_ms: int | None = None
    ) -> Message:
        return self._outcome(self.state.read(query))

    @staticmethod
    def _outcome(result: Message) -> Message:
        if isinstance(result, Failure):
            raise to_exception(result)
        return result


async def test_events_page_in_order_and_say_when_compacted() -> None:
    source = InProcess(ClusterState(groups=GroupsConfig(max_events=5)))
    await source.write(JoinNode(1, 0))
    events = GroupEvents(source, 1)
    assert (await events.__anext__()).revision == 1
    for i in range(3):  # each: defined, placed, STARTING
        await source.write(CreateGroup(GroupSpec(f"g{i}"), True, 0))
    assert events.next_revision == 2
    with pytest.raises(EventsCompacted) as caught:
        await events.__anext__()
    assert caught.value.first_revision == 6
    assert "from revision 2 are no longer kept; the oldest available is 6" in str(caught.value)
    late = GroupEvents(source, 6)
    got = [(await late.__anext__()).revision for _ in range(5)]
    assert got == [6, 7, 8, 9, 10]
    with trio.move_on_after(0.3) as waiting:  # caught up: it polls, and yields nothing more
        await late.__anext__()
    assert waiting.cancelled_caught and late.next_revision == 11
    await source.write(CreateGroup(GroupSpec("later"), False, int(time.time())))
    with trio.fail_after(WAIT_S):
        assert (await late.__anext__()).revision == 11
