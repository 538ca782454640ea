"""The node benchmark runs end to end in quick mode (so it cannot rot), produces every
row against both pysyncobj variants, and leaves no process behind. No timing is
asserted: speed is reported by `make bench`, not tested."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench import bench_node


def children() -> set[int]:
    """Live (not zombie) processes whose parent is this one."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


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
        etcd = throughput.get((f"{workload.name} (ops/s)", bench_node.ETCD))
        assert (etcd is None) == (workload.etcd_per_second is None)
        assert etcd is None or (etcd.value > 0 and etcd.peer_value == workload.etcd_per_second)
        cpu = {r.name: r.value for r in rows if r.unit == "us"}
        for where in bench_node.CPU_ROWS:
            assert f"{workload.name} (CPU per op, {where})" in cpu
        assert cpu[f"{workload.name} (CPU per op, client)"] > 0  # this process did the work
    assert children() <= before  # every node process, ours and pysyncobj's, is gone
