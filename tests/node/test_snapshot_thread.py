"""The trio driver encodes a snapshot in a worker thread and the next cycle compacts there
(raftcluster/node/snapshotting.py): the log is compacted, the snapshot is synced, and
writes are answered throughout."""

from __future__ import annotations

import trio

from raftcluster.node.protocol import Submit, Written
from statemachine.codec import encode
from statemachine.sessions.messages import OpenSession
from tests.node.trio_cluster import trio_cluster


async def test_the_driver_snapshots_in_a_thread_and_compacts(autojump_clock) -> None:
    async with trio_cluster(snapshot_every_entries=5) as cluster:
        leader = await cluster.start_all()
        for _ in range(12):
            reply = await cluster.request(leader, Submit(encode(OpenSession(0, 60_000))))
            assert isinstance(reply, Written)  # answered while snapshots are encoded
        replica = cluster.drivers[leader].replica
        with trio.fail_after(30):
            while replica.snapshot_index < 10:
                await trio.sleep(0.01)
        assert replica.core.status().first_index == replica.snapshot_index + 1
        assert cluster.storages[leader].synced.snapshot_index == replica.snapshot_index
