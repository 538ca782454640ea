"""Membership changes on real node processes, under a write load.

A 3-node cluster grows to 5 (two `member add --voter`, each new node started with the
file `--write-config` wrote and `node run --join`), loses one member (`remove`), and gets
back one whose data directory was wiped: started with the old cluster file, it refuses to
start and says how to bring it back; after `member replace` it joins afresh. At the end
every acknowledged write is on every member, once, and the writers saw no other outcome
than success or an unknown outcome.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from raftcluster import MembershipRefused, connect
from raftcluster.cli.processes import NodeProcesses
from raftcluster.client.api import Client
from raftcluster.client.core import ClientConfig
from raftcluster.client.runner import CoreRunner
from raftcluster.config import ClusterFile, client_transport_config, endpoints, load_cluster
from raftcluster.config.init import free_ports
from raftcluster.node.protocol import Consistency, GetStatus, NodeStatus, Query, QueryResult
from raftcluster.transport import Address, connect_rpc
from statemachine.codec import Message, decode, encode
from statemachine.kv import Range
from tests.live_kit import Live, Ran, live_cluster
from tests.test_live_cluster import Writers, kv_pairs

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

WAIT_S = 60.0


async def cli(*args: str) -> Ran:
    done = await trio.run_process(
        [sys.executable, "-m", "raftcluster", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


async def node_status(cluster: ClusterFile, node: int) -> NodeStatus | None:
    entry = cluster.find(node)
    assert entry is not None
    config = client_transport_config(cluster)
    try:
        with trio.fail_after(3):
            async with connect_rpc(entry.addresses[0], config, expected_node_id=node) as rpc:
                reply = await rpc.call(GetStatus(), timeout_ms=2_000)
    except (OSError, trio.TooSlowError, Exception):  # noqa: BLE001 - down or starting: ask again
        return None
    return reply if isinstance(reply, NodeStatus) else None


async def until_members(
    cluster: ClusterFile, voters: tuple[int, ...], *, settled: bool = False
) -> None:
    """Wait until every one of `voters` reports exactly these voters and no learner; if
    `settled` (no more writes), also the same applied index, equal to its commit index."""
    with trio.move_on_after(WAIT_S):
        while True:
            seen = [await node_status(cluster, n) for n in voters]
            if all(s is not None and s.voters == voters and not s.learners for s in seen):
                applied = {s.applied_index for s in seen if s is not None}
                commits = {s.commit_index for s in seen if s is not None}
                if not settled or (len(applied) == 1 and applied == commits):
                    return
            await trio.sleep(0.1)
    raise AssertionError(f"waited {WAIT_S} s for voters {voters} to converge: {seen}")


async def keys_on(cluster: ClusterFile, node: int, prefix: bytes) -> dict[bytes, tuple[bytes, int]]:
    entry = cluster.find(node)
    assert entry is not None
    config = client_transport_config(cluster)
    async with connect_rpc(entry.addresses[0], config, expected_node_id=node) as rpc:
        query = Query(encode(Range.prefix(prefix)), Consistency.STALE)
        reply = await rpc.call(query, timeout_ms=10_000)
    assert isinstance(reply, QueryResult), reply
    return kv_pairs(decode(reply.result, Message))


async def join(directory: Path, node: int) -> tuple[ClusterFile, NodeProcesses]:
    """Start `node` with the cluster file in `directory`, joining."""
    cluster = load_cluster(directory)
    processes = NodeProcesses(cluster, extra_args=("--join",))
    await processes.start(node)
    return cluster, processes


# About 20 s on an idle machine (CLI processes, five nodes). It is the one end-to-end
# test of every membership procedure docs/operations.md describes, so it runs by default.
async def test_grow_shrink_and_replace_a_wiped_member_under_load(tmp_path: Path) -> None:
    root = tmp_path / "cluster"
    port4, port5 = free_ports(2)
    address = {4: f"127.0.0.1:{port4}", 5: f"127.0.0.1:{port5}"}
    joined: list[NodeProcesses] = []
    async with live_cluster(root) as live:
        where = dict(endpoints(live.cluster))
        where.update({n: (Address.parse(a),) for n, a in address.items()})
        core = ClientConfig(nodes=tuple(sorted(where)))
        writers = Writers(live, b"member/", 2)
        stop = trio.Event()
        transport = client_transport_config(live.cluster)
        try:
            async with CoreRunner.open(where, transport, core) as client, trio.open_nursery() as n:
                n.start_soon(writers.run, client, stop)
                await writers.wait_acked(20)
                final = await grow_shrink_replace(live, root, tmp_path, address, joined, writers)
                await writers.wait_acked(len(writers.acked) + 20)  # it still serves
                stop.set()
            await until_members(final, (1, 3, 4, 5), settled=True)
            copies = {n: await keys_on(final, n, b"member/") for n in (1, 3, 4, 5)}
        finally:
            for processes in joined:
                await processes.stop_all(timeout_s=10)
                await processes.close()
        first = copies[1]
        assert all(copy == first for copy in copies.values()), "the members disagree"
        for key, value in writers.acked.items():
            assert first.get(key) == (value, 1), key  # present, applied once
        assert set(first) <= set(writers.acked) | writers.unknown
        assert not writers.other, writers.other


async def grow_shrink_replace(
    live: Live,
    root: Path,
    tmp_path: Path,
    address: dict[int, str],
    joined: list[NodeProcesses],
    writers: Writers,
) -> ClusterFile:
    for node in (4, 5):  # grow: 3 -> 5 voters
        config = tmp_path / f"new-{node}"
        ran = await cli("member", "add", str(node), "--address", address[node], "--voter",
                        "--write-config", str(config), "--cluster", str(root),
                        "--json")  # fmt: skip
        assert ran.code == 0, ran
        assert ran.json()["learners"] == [node] and ran.json()["incarnation"] > 0
        cluster, processes = await join(config, node)
        joined.append(processes)
        voters = tuple(sorted((1, 2, 3, *range(4, node + 1))))
        await until_members(cluster, voters)
        await writers.wait_acked(len(writers.acked) + 5)

    # Bad input changes nothing and says why.
    taken = await cli("member", "add", "6", "--address", address[4], "--cluster", str(root))
    assert taken.code == 1 and f"{address[4]} is node 4's already" in taken.err, taken
    again = await cli("member", "add", "5", "--address", "127.0.0.1:1", "--cluster", str(root))
    assert again.code == 1 and "node 5 is already a voter" in again.err, again
    promote = await cli("member", "promote", "3", "--cluster", str(root))
    assert promote.code == 1 and "already a voter" in promote.err, promote

    removed = await cli("member", "remove", "2", "--cluster", str(root), "--json")  # shrink
    assert removed.code == 0 and removed.json()["voters"] == [1, 3, 4, 5], removed
    await live.terminate(2)

    # Node 3's machine loses its disk.
    await live.kill(3)
    entry = live.cluster.find(3)
    assert entry is not None
    shutil.rmtree(entry.data_dir)
    refused = await trio.run_process(
        [sys.executable, "-m", "raftcluster", "node", "run", "--config", str(root), "--id", "3"],
        stdout=subprocess.DEVNULL, capture_stderr=True, check=False,
    )  # fmt: skip
    said = refused.stderr.decode()
    assert refused.returncode == 1, said
    assert "node 3 refuses to start" in said and "member replace 3" in said, said
    assert "--join" in said and "backup" in said, said
    await writers.wait_acked(len(writers.acked) + 5)  # the cluster keeps serving

    config = tmp_path / "new-3"
    ran = await cli("member", "replace", "3", "--write-config", str(config),
                    "--cluster", str(root), "--json")  # fmt: skip
    assert ran.code == 0, ran
    final, processes = await join(config, 3)
    joined.append(processes)
    await until_members(final, (1, 3, 4, 5))
    listed = await cli("member", "list", "--cluster", str(config), "--json")
    members = {m["id"]: m for m in listed.json()["members"]}
    assert (
        sorted(members) == [1, 3, 4, 5] and members[3]["incarnation"] == ran.json()["incarnation"]
    )
    assert members[4]["addresses"] == [address[4]] and members[1]["incarnation"] == 0
    return final


async def test_a_wiped_member_started_with_the_old_file_refuses_and_the_cluster_serves(
    tmp_path: Path,
) -> None:
    async with live_cluster(tmp_path) as live, live.client() as client:
        writers = Writers(live, b"wiped/", 1)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writers.run, client, stop)
            await writers.wait_acked(10)
            await live.kill(3)
            entry = live.cluster.find(3)
            assert entry is not None
            shutil.rmtree(entry.data_dir)
            await live.start(3)
            code = await live.processes.wait(3)
            said = "\n".join(live.processes.tail(3, 20))
            assert code == 1, said
            assert "node 3 refuses to start" in said and "member replace 3" in said, said
            assert "--join" in said and "backup" in said, said
            assert not (entry.data_dir / "wal").exists()  # it wrote no log of its own
            await writers.wait_acked(len(writers.acked) + 10)  # two of three serve on
            stop.set()
        assert not writers.other, writers.other


async def test_membership_steps_that_break_a_rule_change_nothing_and_say_why(
    tmp_path: Path,
) -> None:
    async with live_cluster(tmp_path, nodes=1) as live:
        await live.leader()
        async with connect(live.cluster) as client:
            await check_refusals(client, live, tmp_path)


async def check_refusals(client: Client, live: Live, tmp_path: Path) -> None:
    members = client.membership
    view = await members.list()
    (only,) = view.members
    assert (view.leader, only.node_id, only.role, only.incarnation) == (1, 1, "voter", 0)
    entry = live.cluster.find(1)
    assert entry is not None and only.addresses == (str(entry.addresses[0]),)
    with pytest.raises(MembershipRefused, match="is node 1's already"):
        await members.add(2, [str(entry.addresses[0])])
    with pytest.raises(MembershipRefused, match="node 2 is not a learner"):
        await members.promote(2)
    with pytest.raises(MembershipRefused, match="the last voter cannot be removed"):
        await members.remove(1)
    added = await members.add(2, ["127.0.0.1:9"], incarnation=77)  # never started
    assert added.learners == (2,) and added.incarnation == 77
    with pytest.raises(MembershipRefused, match="node 2 is already a learner"):
        await members.add(2, ["127.0.0.1:10"])
    with pytest.raises(MembershipRefused, match="learner 2 holds up to 0"):
        await members.promote(2)
    with pytest.raises(MembershipRefused, match="node 2 is not a voter"):
        await members.transfer_leadership(2)
    with pytest.raises(MembershipRefused, match="node 1 is the only voter"):
        await members.transfer_leadership()
    assert await members.transfer_leadership(1) == 1  # to itself: nothing to do
    learner = (await members.list()).member(2)
    assert learner is not None and (learner.role, learner.caught_up) == ("learner", False)
    assert learner.addresses == ("127.0.0.1:9",) and learner.incarnation == 77
    removed = await members.remove(2)
    assert (removed.voters, removed.learners) == ((1,), ())
    listed = await cli("member", "list", "--cluster", str(tmp_path), "--json")
    assert listed.code == 0, listed
    assert [m["id"] for m in listed.json()["members"]] == [1]
