"""Three real node processes on 127.0.0.1: reads and writes, kill -9 of the leader, a
partition, a full restart, hostile peers and frames.

Writes go through `CoreRunner` (the client core's sessions and same-request retries),
so exactly-once is what the client library will get. Every wait polls the cluster with
a generous deadline; nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftcluster.client.core import Completion
from raftcluster.errors import OutcomeUnknown
from raftcluster.node.admin import ClearFaults, SetFaults
from raftcluster.node.protocol import Consistency, Query, RefuseCode, Refused, Submit
from raftcluster.transport import (
    Address,
    AuthenticationFailed,
    ClientConfig,
    Transport,
    TransportConfig,
    connect_rpc,
)
from statemachine.kv import Put, PutResult, Range, RangeResult
from tests.live_kit import Live, live_cluster

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def kv_pairs(result: object) -> dict[bytes, tuple[bytes, int]]:
    assert isinstance(result, RangeResult), result
    return {kv.key: (kv.value, kv.version) for kv in result.kvs}


async def prefix_on(live: Live, node: int, prefix: bytes) -> dict[bytes, tuple[bytes, int]]:
    _, result = await live.query(node, Range.prefix(prefix), stale=True)
    return kv_pairs(result)


class Writers:
    """`count` writers, each putting its own keys one after another; records outcomes."""

    def __init__(self, live: Live, prefix: bytes, count: int) -> None:
        self.live = live
        self.prefix = prefix
        self.count = count
        self.acked: dict[bytes, bytes] = {}
        self.unknown: set[bytes] = set()
        self.other: list[Completion] = []
        self.progress = trio.Event()

    async def run(self, client: object, stop: trio.Event) -> None:
        async with trio.open_nursery() as nursery:
            for w in range(self.count):
                nursery.start_soon(self._writer, client, w, stop)

    async def _writer(self, client: object, w: int, stop: trio.Event) -> None:
        i = 0
        while not stop.is_set():
            key = self.prefix + b"%02d-%04d" % (w, i)
            value = b"value %d of writer %d" % (i, w)
            done = await client.write(Put(key, value), timeout_ms=30_000)  # type: ignore[attr-defined]
            if done.ok:
                assert isinstance(done.result, PutResult)
                self.acked[key] = value
            elif isinstance(done.error, OutcomeUnknown):
                self.unknown.add(key)
            else:
                self.other.append(done)
            self.progress.set()
            self.progress = trio.Event()
            i += 1

    async def wait_acked(self, total: int) -> None:
        with trio.fail_after(60):
            while len(self.acked) < total:
                await self.progress.wait()


async def check_everywhere(live: Live, writers: Writers) -> None:
    """Every acknowledged write is on every node, each applied exactly once."""
    await live.converged()
    seen = {node: await prefix_on(live, node, writers.prefix) for node in live.cluster.node_ids}
    first = seen[live.cluster.node_ids[0]]
    assert all(copy == first for copy in seen.values()), "the nodes disagree"
    for key, value in writers.acked.items():
        assert first.get(key) == (value, 1), key  # present, applied once (version 1)
    # Nothing else: only keys that were written, acknowledged or in doubt, each once.
    assert set(first) <= set(writers.acked) | writers.unknown
    assert all(version == 1 for _, version in first.values())
    assert not writers.other, writers.other


async def test_writes_and_linearizable_reads_from_every_node(tmp_path: Path) -> None:
    async with live_cluster(tmp_path) as live, live.client() as client:
        leader = await live.leader()
        for i in range(15):
            key, value = b"lin/%02d" % i, b"v%d" % i
            done = await client.write(Put(key, value))
            assert done.ok, done
            # Linearizable: every node, asked right after the acknowledgement, sees it
            # (followers through a ReadIndex from the leader).
            for node in live.cluster.node_ids:
                _, result = await live.query(node, Range(key), stale=False)
                assert kv_pairs(result) == {key: (value, 1)}, (node, leader)
        read = await client.read(Range.prefix(b"lin/"))
        assert read.ok and len(kv_pairs(read.result)) == 15


async def test_kill_9_of_the_leader_during_writes_loses_no_acknowledged_write(
    tmp_path: Path,
) -> None:
    async with live_cluster(tmp_path) as live, live.client(attempt_timeout_ms=500) as client:
        old = await live.leader()
        writers = Writers(live, b"kill/", count=8)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writers.run, client, stop)
            await writers.wait_acked(40)
            assert await live.kill(old) == -signal.SIGKILL
            before = len(writers.acked)
            new = await live.leader(other_than=old)
            await writers.wait_acked(before + 40)  # the stream goes on under the new leader
            stop.set()
        assert new != old
        # The writes in flight at the kill lost their answers and were sent again (same
        # session and sequence) to the new leader; those already applied must not apply
        # twice (check_everywhere: every key at version 1).
        assert client.attempts_in_doubt > 0
        await live.start(old)  # recovers from its data directory and catches up
        await check_everywhere(live, writers)


async def test_a_client_retrying_through_a_partition_applies_each_write_once(
    tmp_path: Path,
) -> None:
    async with live_cluster(tmp_path) as live, live.client(attempt_timeout_ms=500) as client:
        old = await live.leader()
        others = [n for n in live.cluster.node_ids if n != old]
        writers = Writers(live, b"cut/", count=4)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writers.run, client, stop)
            await writers.wait_acked(20)
            for node in others:  # cut the leader off, both ways
                await live.call(old, SetFaults(node, blocked=True))
                await live.call(node, SetFaults(old, blocked=True))
            before = len(writers.acked)
            await live.leader(other_than=old)
            await writers.wait_acked(before + 20)
            assert client.attempts_in_doubt > 0  # attempts on the old leader timed out
            for node in live.cluster.node_ids:
                await live.call(node, ClearFaults())
            await writers.wait_acked(before + 30)
            stop.set()
        await check_everywhere(live, writers)


async def test_a_full_restart_keeps_the_data_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    async with live_cluster(tmp_path) as live:
        async with live.client() as client:
            for i in range(10):
                assert (await client.write(Put(b"keep/%d" % i, b"x%d" % i))).ok
        applied = await live.converged()
        codes = {node: await live.terminate(node) for node in live.cluster.node_ids}
        assert codes == {node: 0 for node in live.cluster.node_ids}
        for node in live.cluster.node_ids:
            log = "\n".join(live.processes.tail(node, 20))
            assert "SIGTERM: stopping" in log and "stopped (applied" in log
            await live.start(node)
        await live.leader()
        assert await live.converged() >= applied
        async with live.client() as client:
            read = await client.read(Range.prefix(b"keep/"))
        assert kv_pairs(read.result) == {b"keep/%d" % i: (b"x%d" % i, 1) for i in range(10)}


async def test_a_peer_or_client_with_a_wrong_secret_is_refused_and_the_cluster_goes_on(
    tmp_path: Path,
) -> None:
    async with live_cluster(tmp_path) as live:
        await live.leader()
        nodes = {n.id: n.addresses for n in live.cluster.nodes}
        infos = await live.all_answer()
        refused_before = {n: i.transport.handshakes_refused for n, i in infos.items()}
        # An impostor claiming to be node 1 (which dials 2 and 3), without the secret.
        impostor = Transport(
            TransportConfig(
                cluster_id=live.cluster.cluster_id,
                node_id=1,
                secret=b"not the secret, not at all",
                listen=(Address("127.0.0.1", 0),),
                peers={2: nodes[2], 3: nodes[3]},
            ),
            rng=random.Random(7),
        )
        async with impostor, live.client() as client:

            def refused(infos: dict) -> bool:  # type: ignore[type-arg]
                return all(
                    n in infos and infos[n].transport.handshakes_refused > refused_before[n]
                    for n in (2, 3)
                )

            await live.until("nodes 2 and 3 to refuse the impostor", refused)
            assert not impostor.is_connected(2) and not impostor.is_connected(3)
            for i in range(5):
                assert (await client.write(Put(b"safe/%d" % i, b"ok"))).ok
        stranger = ClientConfig(cluster_id=live.cluster.cluster_id, client_id=99, secret=b"x" * 32)
        with pytest.raises(AuthenticationFailed):
            async with connect_rpc(nodes[2][0], stranger):
                pass
        await live.converged()


frames = st.one_of(
    st.binary(max_size=2048),
    st.binary(min_size=1, max_size=64).map(lambda b: (1 << 30).to_bytes(4, "big") + b),
    st.binary(max_size=64).map(lambda b: b"\x00\x00\x00\x10" + b),
)


def draw_frames(count: int) -> list[bytes]:
    """`count` examples of `frames` from Hypothesis (which draws them; the node below must
    survive every one, so there is nothing to shrink)."""
    drawn: list[bytes] = []

    @settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=frames)
    def record(payload: bytes) -> None:
        drawn.append(payload)

    record()
    return drawn


async def test_random_and_oversized_frames_never_crash_a_node(tmp_path: Path) -> None:
    async with live_cluster(tmp_path) as live:
        await live.leader()
        target = live.cluster.nodes[1].addresses[0]
        for payload in draw_frames(25):
            with trio.fail_after(10):
                stream = await trio.open_tcp_stream(target.host, target.port)
                async with stream:
                    await stream.send_all(payload)
            await live.until(f"node 2 to answer after {payload!r}", lambda i: 2 in i)
        # Authenticated junk: requests that decode but carry garbage inside.
        rng = random.Random(3)
        for _ in range(10):
            junk = rng.randbytes(rng.randrange(64))
            for request in (Submit(junk), Query(junk, Consistency.STALE), Query(junk)):
                reply = await live.call(2, request)
                assert not isinstance(reply, Refused) or reply.code in (
                    RefuseCode.BAD_REQUEST,
                    RefuseCode.OVERLOADED,
                ), reply
        infos = await live.all_answer()
        assert infos[2].transport.handshakes_refused > 0
        async with live.client() as client:
            assert (await client.write(Put(b"after", b"junk"))).ok
        assert live.processes.alive(2)
