"""The node benchmark runs end to end in quick mode (so it cannot rot), produces every
row against both pysyncobj variants and against etcd when etcd and aetcd are installed,
and leaves no process behind. Without them it says how to install them and has no etcd
rows. No timing is asserted: speed is reported by `make bench`, not tested."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import bench_node, etcd_cluster
from bench.bench_node import Etcd, Measured
from tests.supervisor.kit import children


@pytest.fixture
def etcd_installed() -> None:
    """Skips (with the install line as the reason) where etcd or aetcd is missing."""
    hint = etcd_cluster.missing()
    if hint is not None:
        pytest.skip(hint)


def test_children_sees_a_child() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in children()
    finally:
        child.kill()
        child.wait()
    assert child.pid not in children()


def test_the_node_benchmark_runs_in_quick_mode() -> None:
    before = children()
    rows = bench_node.run(quick=True)
    throughput = {(r.name, r.peer): r for r in rows if r.unit == "ops/s"}
    for workload in bench_node.WORKLOADS:
        for variant in bench_node.VARIANTS:
            row = throughput[(f"{workload.name} (ops/s)", f"pysyncobj {variant.name}")]
            assert row.value > 0 and row.peer_value, row  # both sides completed operations
            assert not row.failed
        etcd = [r for (name, peer), r in throughput.items()
                if name == f"{workload.name} (ops/s)" and peer.startswith("etcd ")]  # fmt: skip
        assert len(etcd) == (0 if etcd_cluster.missing() else 1), etcd
        assert all(r.value > 0 and r.peer_value for r in etcd), etcd
        cpu = {r.name: r.value for r in rows if r.unit == "us"}
        for where in bench_node.CPU_ROWS:
            assert f"{workload.name} (CPU per op, {where})" in cpu
        assert cpu[f"{workload.name} (CPU per op, client)"] > 0  # this process did the work
    assert children() <= before  # every node process, ours and pysyncobj's, is gone


NO_WARNINGS = {v.name: 0 for v in bench_node.VARIANTS}


def figures(per_second: float, p50_ms: float, p99_ms: float) -> Measured:
    return Measured(int(per_second * 2), 2.0, 0, p50_ms, p99_ms)


def hand_made() -> tuple[dict[str, Measured], dict[str, dict[str, Measured]], Etcd]:
    """Ours at 1,000 ops/s (p50 2 ms, p99 8 ms) on every workload; pysyncobj at 500;
    etcd at 4,000 ops/s (p50 1 ms, p99 2 ms)."""
    ours = {w.name: figures(1_000, 2.0, 8.0) for w in bench_node.WORKLOADS}
    peers = {v.name: {w.name: figures(500, 1.0, 1.0) for w in bench_node.WORKLOADS}
             for v in bench_node.VARIANTS}  # fmt: skip
    etcd = Etcd(
        "etcd 9.9 via aetcd", {w.name: figures(4_000, 1.0, 2.0) for w in bench_node.WORKLOADS}
    )
    return ours, peers, etcd


def test_every_workload_has_an_etcd_row_with_the_ratio_ours_over_etcd() -> None:
    ours, peers, etcd = hand_made()
    table = bench_node.rows(ours, peers, NO_WARNINGS, etcd)
    by_peer = {(r.name, r.peer): r for r in table}
    for workload in bench_node.WORKLOADS:
        row = by_peer[(f"{workload.name} (ops/s)", "etcd 9.9 via aetcd")]
        assert (row.value, row.peer_value, row.ratio) == (1_000, 4_000, 0.25)
        latency = [r for r in table if r.peer == etcd.peer and r.unit == "ms"
                   and r.name.startswith(workload.name + " (")]  # fmt: skip
        if workload.inflight == 1:  # latencies are rows: lower is better, so etcd / ours
            p50, p99 = (
                by_peer[(f"{workload.name} ({q} latency)", etcd.peer)] for q in ("p50", "p99")
            )
            assert (p50.value, p50.peer_value, p50.ratio) == (2.0, 1.0, 0.5)
            assert (p99.value, p99.peer_value, p99.ratio) == (8.0, 2.0, 0.25)
        else:  # with requests in flight they are in the note
            assert latency == []
            assert "p50 2.0 ms ours, 1.0 ms etcd; p99 8.0 ms ours, 2.0 ms etcd" in row.note
    assert not [r for r in table if "quoted" in r.note or "issue 4" in r.peer]


def test_without_etcd_the_bench_says_how_to_install_it_and_has_no_etcd_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_node.measure_etcd(0.1, path=str(tmp_path)) is None  # no etcd in an empty dir
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # one line
    assert "apt-get install etcd-server" in out and "pip install aetcd" in out
    assert ".[bench]" in out
    ours, peers, _ = hand_made()
    table = bench_node.rows(ours, peers, NO_WARNINGS, None)
    assert table and not [r for r in table if "etcd" in r.peer]
    assert {r.peer for r in table if r.peer} == {"pysyncobj default", "pysyncobj tuned"}


def test_etcd_is_measured_for_real_and_stopped(etcd_installed: None) -> None:
    before = children()
    etcd = bench_node.measure_etcd(0.1)
    assert etcd is not None and etcd.peer.startswith("etcd 3.")
    for workload in bench_node.WORKLOADS:
        measured = etcd.results[workload.name]
        assert measured.ops > 0 and measured.per_second > 0 and measured.errors == 0, measured
        assert 0 < measured.p50_ms <= measured.p99_ms
    assert children() <= before  # the members and the driver are gone
    ours, peers, _ = hand_made()
    table = bench_node.rows(ours, peers, NO_WARNINGS, etcd)
    assert all(r.peer_value and r.peer_value > 0 for r in table if r.peer == etcd.peer)


def test_a_failing_etcd_driver_is_reported_and_leaves_nothing_running(
    etcd_installed: None,
) -> None:
    before = children()
    with pytest.raises(etcd_cluster.EtcdBenchError, match="etcd driver exited with 1"):
        etcd_cluster.measure([{"name": "no op given"}], 0.1, 100)  # the driver dies on it
    assert children() <= before  # the members were stopped all the same
