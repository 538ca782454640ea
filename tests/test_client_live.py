"""The client API against three real node processes on 127.0.0.1.

Three clusters, each used for several checks (starting one costs a few seconds): the
key-value API and the synchronous façade; a watch and a stream of writes across a
kill -9 of the leader; and what a caller sees when every node stops answering. Waits
poll with generous deadlines; nothing depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trio

import raftcluster
from raftcluster import (
    ClientClosed,
    ClientOptions,
    Compacted,
    KvEvent,
    NotLeader,
    OutcomeUnknown,
    Unavailable,
    txn,
)
from raftcluster.node.admin import ClearFaults, SetFaults
from tests.live_kit import WAIT_S, Live, live_cluster

# The nodes were only just started when a test connects: on a loaded machine their
# processes may take more than the client's default 5 s to listen. Patience, not a
# different behaviour: the first node that answers is used as soon as it does.
STARTING_MS = int(WAIT_S * 1000)
STARTING = ClientOptions(connect_timeout_ms=STARTING_MS)

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


async def test_the_key_value_api(tmp_path: Path) -> None:
    async with (
        live_cluster(tmp_path) as live,
        raftcluster.connect(live.cluster, options=STARTING) as client,
    ):
        # put, get, delete
        first = await client.put("app/a", "1")
        kv = await client.get("app/a")
        assert kv is not None and (kv.value, kv.version) == (b"1", 1)
        replaced = await client.put(b"app/a", b"2", prev_kv=True)
        assert replaced.prev_kv is not None and replaced.prev_kv.value == b"1"
        old = await client.get("app/a", revision=first.revision)
        assert old is not None and old.value == b"1"  # a read at a past revision
        assert (await client.delete("app/a")).deleted == 1
        assert await client.get("app/a") is None

        # ranges: prefix, limit, interval, count
        for i in range(10):
            await client.put(f"app/{i:02d}", f"v{i}")
        everything = await client.range("app/", prefix=True)
        assert [kv.key for kv in everything.kvs] == [b"app/%02d" % i for i in range(10)]
        page = await client.range("app/", prefix=True, limit=3)
        assert (len(page.kvs), page.more, page.count) == (3, True, 10)
        middle = await client.range("app/02", "app/05")
        assert [kv.key for kv in middle.kvs] == [b"app/02", b"app/03", b"app/04"]
        counted = await client.range("app/", prefix=True, count_only=True)
        assert (counted.kvs, counted.count) == ((), 10)

        # a transaction, both branches
        claim = client.txn(txn.version("lock") == 0).then(txn.put("lock", "me"))
        won = await claim.otherwise(txn.get("lock")).commit()
        assert won.succeeded and len(won.responses) == 1
        lost = await claim.otherwise(txn.get("lock")).commit()
        assert not lost.succeeded
        (holder,) = lost.responses
        assert isinstance(holder, raftcluster.RangeResult) and holder.kvs[0].value == b"me"

        # compaction: reads and watches below it fail clearly
        now = (await client.put("app/last", "x")).revision
        await client.compact(now)
        with pytest.raises(Compacted) as caught:
            await client.get("app/00", revision=first.revision)
        assert caught.value.compact_revision == now
        with pytest.raises(Compacted, match="watch again from its revision"):
            await client.watch("app/", prefix=True, start_revision=first.revision).__anext__()

        status = await client.status()
        assert status.quorum and status.leader in live.cluster.node_ids
        await _stale_and_linearizable(live, client)
        await trio.to_thread.run_sync(_sync_facade, live)
    with pytest.raises(ClientClosed):
        await client.get("app/a")


async def _stale_and_linearizable(live: Live, client: raftcluster.Client) -> None:
    """A client that knows one follower only: its writes fail with NotLeader naming the
    leader. Once that follower is cut off from the others it still answers stale reads,
    with what it had; linearizable reads through it fail (it cannot confirm anything)."""
    leader = await live.leader()
    cut = next(n for n in live.cluster.node_ids if n != leader)
    await client.put("cut/key", "before")
    await live.converged()
    entry = live.cluster.find(cut)
    assert entry is not None
    async with raftcluster.connect(
        endpoints=[str(entry.addresses[0])],
        secret_file=live.cluster.client_secret_file,
        cluster_id=live.cluster.cluster_id,
    ) as alone:
        with pytest.raises(NotLeader, match="add its address") as caught:
            await alone.put("cut/key", "from a follower", timeout_ms=1_500)
        assert caught.value.leader in live.cluster.node_ids and caught.value.leader != cut
        await _partition(live, cut, blocked=True)
        try:
            await client.put("cut/key", "after")  # the other two are a majority
            kv = await client.get("cut/key")
            assert kv is not None and kv.value == b"after"
            stale = await alone.get("cut/key", consistency="stale")
            assert stale is not None and stale.value == b"before"
            with pytest.raises(Unavailable):
                await alone.get("cut/key", timeout_ms=2_000)
        finally:
            await _partition(live, cut, blocked=False)


async def _partition(live: Live, node: int, *, blocked: bool) -> None:
    others = [n for n in live.cluster.node_ids if n != node]
    for other in others:
        if blocked:
            await live.call(node, SetFaults(peer=other, blocked=True))
            await live.call(other, SetFaults(peer=node, blocked=True))
        else:
            await live.call(node, ClearFaults())
            await live.call(other, ClearFaults())


def _sync_facade(live: Live) -> None:
    """Runs in a worker thread: the blocking client, from threads and from asyncio."""
    with raftcluster.connect_sync(live.cluster.path) as client:

        def writer(w: int) -> list[int]:
            return [client.put(f"sync/{w}/{i}", str(i)).revision for i in range(5)]

        with ThreadPoolExecutor(max_workers=6) as pool:
            revisions = [r for rs in pool.map(writer, range(6)) for r in rs]
        assert len(set(revisions)) == 30  # each write its own revision, none repeated
        assert client.range("sync/", prefix=True).count == 30

        async def from_asyncio() -> list[raftcluster.KeyValue | None]:
            puts = [asyncio.to_thread(client.put, f"aio/{i}", "x") for i in range(5)]
            await asyncio.gather(*puts)
            return await asyncio.gather(
                *[asyncio.to_thread(client.get, f"aio/{i}") for i in range(5)]
            )

        found = asyncio.run(from_asyncio())
        assert all(kv is not None and kv.value == b"x" for kv in found)

        watch = client.watch("sync-watch")
        outcome: list[object] = []

        def follow() -> None:
            try:
                outcome.append(next(watch))
                next(watch)  # blocks until the client closes
            except ClientClosed as e:
                outcome.append(e)

        follower = threading.Thread(target=follow)
        follower.start()
        client.put("sync-watch", "seen")
        deadline = time.monotonic() + WAIT_S
        while not outcome and time.monotonic() < deadline:
            follower.join(0.05)
        assert outcome and isinstance(outcome[0], KvEvent) and outcome[0].kv.value == b"seen"
    follower.join(WAIT_S)
    assert not follower.is_alive() and isinstance(outcome[-1], ClientClosed)
    with pytest.raises(ClientClosed):
        client.get("sync/0/0")


async def test_a_watch_and_a_stream_of_writes_survive_a_leader_kill(tmp_path: Path) -> None:
    options = ClientOptions(
        attempt_timeout_ms=500, request_timeout_ms=30_000, connect_timeout_ms=STARTING_MS
    )
    async with (
        live_cluster(tmp_path) as live,
        raftcluster.connect(live.cluster, options=options) as client,
    ):
        old = await live.leader()
        watch = client.watch("w/", prefix=True)
        start = await watch.start()
        events: list[KvEvent] = []
        acked: dict[bytes, int] = {}
        unknown: set[bytes] = set()
        progress = trio.Event()

        async def follow() -> None:
            async for event in watch:
                events.append(event)

        async def write(w: int, stop: trio.Event) -> None:
            nonlocal progress
            i = 0
            while not stop.is_set():
                key = b"w/%d-%04d" % (w, i)
                try:
                    acked[key] = (await client.put(key, b"x" * 100)).revision
                except OutcomeUnknown:
                    unknown.add(key)
                progress.set()
                progress = trio.Event()
                i += 1

        async def until_acked(count: int) -> None:
            with trio.fail_after(WAIT_S):
                while len(acked) < count:
                    await progress.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            stop = trio.Event()
            async with trio.open_nursery() as writers:
                for w in range(4):
                    writers.start_soon(write, w, stop)
                await until_acked(30)
                assert await live.kill(old) == -signal.SIGKILL
                before = len(acked)
                await live.leader(other_than=old)
                await until_acked(before + 30)
                stop.set()
            final = await client.range("w/", prefix=True)
            with trio.fail_after(WAIT_S):
                while not events or events[-1].kv.mod_revision < final.revision:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    # Exactly once: every write applied once (version 1), each in a revision of its own.
    assert all(kv.version == 1 for kv in final.kvs)
    assert {kv.key for kv in final.kvs} >= set(acked)
    assert {kv.key for kv in final.kvs} <= set(acked) | unknown
    assert client.attempts_in_doubt > 0  # some writes were retried after losing answers
    # The watch saw every one of those revisions once, in order, across the leader change.
    assert [e.kv.mod_revision for e in events] == list(range(start, final.revision + 1))
    assert [e.kv.key for e in events] == [
        kv.key for kv in sorted(final.kvs, key=lambda kv: kv.mod_revision)
    ]


async def test_a_caller_learns_whether_a_write_may_have_been_applied(tmp_path: Path) -> None:
    async with (
        live_cluster(tmp_path) as live,
        raftcluster.connect(live.cluster, options=STARTING) as client,
    ):
        await client.put("k", "0")
        nodes = live.cluster.node_ids
        for node in nodes:  # nodes that take requests and never answer
            live.processes.kill(node, signal.SIGSTOP)
        try:
            with pytest.raises(OutcomeUnknown, match="may have been applied"):
                await client.put("k", "1", timeout_ms=3_000)
            with pytest.raises(Unavailable):  # a read is never in doubt: it changed nothing
                await client.get("k", timeout_ms=1_000)
        finally:
            for node in nodes:
                live.processes.kill(node, signal.SIGCONT)
        with trio.fail_after(WAIT_S):
            while True:  # the nodes come back, with the write applied at most once
                try:
                    kv = await client.get("k")
                    break
                except Unavailable:
                    await trio.sleep(0.1)
        assert kv is not None and kv.value in (b"0", b"1") and kv.version == int(kv.value) + 1
        for node in nodes:
            await live.kill(node)
        with trio.fail_after(WAIT_S):  # until the client has seen every connection close
            while any(r.reachable for r in (await client.status(timeout_ms=500)).nodes):
                await trio.sleep(0.05)
        # Nobody listens any more: no request can have been taken, so the outcome is known.
        # (A request written into a connection that was dying without the client knowing
        # it yet would have been in doubt: hence the wait above.)
        with pytest.raises(Unavailable, match="majority of the nodes"):
            await client.put("k", "2", timeout_ms=2_000)
