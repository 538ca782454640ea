"""The floor benchmark answers only what a quorum has made durable or confirmed (so its
figures are a fair floor, not a shortcut), and runs end to end in quick mode."""

from __future__ import annotations

import os
import tempfile

from bench import bench_floor
from bench.bench_floor import Frames, Leader, frame
from bench.bench_node import Etcd, Measured
from tests.test_bench_node import children


def replies_of(data: bytes) -> list[int]:
    return [ident for kind, ident, _ in Frames().feed(data) if kind == b"R"]


def test_frames_split_a_stream_at_any_boundary() -> None:
    stream = frame(b"P", 1, b"abc") + frame(b"G", 2) + frame(b"K", 3, b"x" * 300)
    for cut in range(len(stream) + 1):
        frames = Frames()
        got = list(frames.feed(stream[:cut])) + list(frames.feed(stream[cut:]))
        assert got == [(b"P", 1, b"abc"), (b"G", 2, b""), (b"K", 3, b"x" * 300)]


def test_a_put_is_answered_only_once_the_leader_and_a_follower_have_it_on_disk() -> None:
    with tempfile.TemporaryFile() as log:
        leader = Leader(log.fileno())
        out = leader.from_client([(b"P", 7, b"value"), (b"P", 8, b"other")])
        assert list(Frames().feed(out)) == [(b"A", 1, b"valueother")]
        assert os.pread(log.fileno(), 100, 0) == b"valueother"
        assert replies_of(leader.replies()) == []
        leader.acked = 1  # a follower has it; the leader has not synced yet
        assert replies_of(leader.replies()) == []
        leader.synced = 1
        assert replies_of(leader.replies()) == [7, 8]
        assert replies_of(leader.replies()) == []  # once


def test_a_get_is_answered_only_after_a_heartbeat_sent_after_it_is_acknowledged() -> None:
    with tempfile.TemporaryFile() as log:
        leader = Leader(log.fileno())
        leader.from_client([(b"P", 1, b"v")])
        out = leader.from_client([(b"G", 2, b""), (b"G", 3, b"")])
        assert list(Frames().feed(out)) == [(b"H", 2, b"")]
        leader.acked = 1  # an acknowledgement of what was sent before the gets came
        leader.synced = 1
        assert replies_of(leader.replies()) == [1]
        leader.acked = 2
        assert replies_of(leader.replies()) == [2, 3]


def test_the_floor_benchmark_runs_in_quick_mode() -> None:
    before = children()
    floors = {flavour: bench_floor.measure_floor(flavour, 0.1) for flavour in bench_floor.FLAVOURS}
    assert children() <= before  # every floor process is gone
    for flavour, measured in floors.items():
        for workload in bench_floor.WORKLOADS:
            result = measured[workload.name]
            assert result.ops > 0 and result.errors == 0, (flavour, workload.name)
            assert result.cpu_us is not None and result.cpu_us[0] > 0
    # The table: both floors alone (no quoted figure), ours against the trio floor.
    rows = {(r.name, r.peer): r for r in bench_floor.rows(floors, ours=floors["plain"])}
    for workload in bench_floor.WORKLOADS:
        name = f"{workload.name} (ops/s)"
        for flavour in bench_floor.FLAVOURS:
            row = rows[(f"floor, {flavour}: {name}", "")]
            assert row.value == floors[flavour][workload.name].per_second
            assert row.peer_value is None
        ours = rows[(f"ours: {name}", "floor, trio (same run)")]
        assert ours.peer_value == floors["trio"][workload.name].per_second


def test_with_etcd_the_trio_floor_and_ours_are_set_against_it_on_what_it_ran() -> None:
    def figures(per_second: float) -> Measured:
        return Measured(int(per_second), 1.0, 0, 1.0, 2.0)

    floors = {
        "trio": {w.name: figures(1_000) for w in bench_floor.WORKLOADS},
        "plain": {w.name: figures(2_000) for w in bench_floor.WORKLOADS},
    }
    ours = {w.name: figures(500) for w in bench_floor.WORKLOADS}
    etcd = Etcd("etcd 9.9 via aetcd", {w.name: figures(800) for w in bench_floor.ETCD_WORKLOADS})
    table = bench_floor.rows(floors, ours, etcd)
    rows = {(r.name, r.peer): r for r in table}
    assert bench_floor.ETCD_WORKLOADS and len(bench_floor.ETCD_WORKLOADS) < len(
        bench_floor.WORKLOADS
    )
    for workload in bench_floor.WORKLOADS:
        name = f"{workload.name} (ops/s)"
        ran = workload in bench_floor.ETCD_WORKLOADS
        assert ran == (workload.inflight == 1)
        trio_floor = [r for r in table if r.name == f"floor, trio: {name}"]
        assert len(trio_floor) == 1
        if ran:
            assert trio_floor[0].peer == etcd.peer and trio_floor[0].ratio == 1_000 / 800
            assert rows[(f"ours: {name}", etcd.peer)].ratio == 500 / 800
        else:
            assert trio_floor[0].peer == "" and (f"ours: {name}", etcd.peer) not in rows
        assert rows[(f"ours: {name}", "floor, trio (same run)")].ratio == 500 / 1_000
        assert rows[(f"floor, plain: {name}", "")].peer_value is None
