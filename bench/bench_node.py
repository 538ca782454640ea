"""A real cluster: three local node processes, the client API, values of 100 bytes, fsync on;
against three-process pysyncobj 0.3.17 clusters measured in the same run.

Workloads, each run for a fixed time (5 s, or 0.2 s with --quick):
- puts, sequential: one `client.put` after another (ops/s, p50, p99);
- puts with 16 and with 64 requests in flight (tasks sharing one client);
- linearizable gets, sequential and with 64 in flight.

Ours: `raftcluster init` defaults (each node fsyncs its write-ahead log before it
acknowledges), one `raftcluster.connect` client in this process talking to the nodes over
authenticated TCP (one connection per node, requests pipelined on it). For ours the
table also gives the CPU time each operation cost (user + system, read from /proc):
on the busiest node (the leader), on each other node, and in the client. It moves far
less from run to run than throughput on a noisy machine, so it shows what a change to
the code did.

pysyncobj has no client protocol, so its workloads run inside its leader process through
its own API (bench/pysyncobj_node.py): `set(..., sync=True)` one after another, or
`set(..., callback=...)` keeping N in flight; its `get` is a local dict read of the
leader's state (not linearizable: it may miss acknowledged writes after a leader change),
so the get rows compare a network round trip and a ReadIndex with a dict lookup.
Variants: "default" (`SyncObjConf()`: the journal in memory, nothing on disk) and
"tuned" (journal file on disk, flushed once per tick: see pysyncobj_node.py).

etcd (Debian's `etcd-server`, 3.4) is measured in the same run when an `etcd` binary is on
the PATH and the `aetcd` client is installed (`pip install -e '.[bench]'`): three etcd
processes on 127.0.0.1 free ports, each with its own data directory in a temporary
directory, default settings (fsync on), driven by one aetcd client connected to the
leader (bench/etcd_driver.py, a process of its own: see there why) with the same
workloads, the same value size and the same duration as ours. Its rows have peer
"etcd X.Y.Z via aetcd" and the ratio ours / etcd. Without etcd or aetcd, one line says
how to install them and the table has no etcd rows: no figure is ever quoted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import trio

from bench import etcd_cluster
from bench.etcd_cluster import free_ports as _free_ports
from bench.table import Row
from raftcluster.cli.processes import NodeProcesses
from raftcluster.client import txn
from raftcluster.client.connect import connect
from raftcluster.client.probe import Poller, Target
from raftcluster.config import ClusterFile, client_transport_config, init_cluster

VALUE = b"v" * 100
WAIT_S = 60.0


@attrs.frozen
class Variant:
    """A pysyncobj configuration: `SyncObjConf` settings, and whether the journal is
    flushed once per tick (bench/pysyncobj_node.py)."""

    name: str
    settings: dict[str, Any]
    flush: bool = False


VARIANTS = (
    Variant("default", {}),
    # Each command's entries go out at once instead of every appendEntriesPeriod (100 ms),
    # which otherwise bounds a sequential writer to about 10 puts/s.
    Variant("tuned", {"journalFile": "journal", "appendEntriesUseBatch": False}, flush=True),
)


@attrs.frozen
class Workload:
    name: str
    op: str  # "put" or "get"
    inflight: int


WORKLOADS = (
    Workload("puts, sequential", "put", 1),
    Workload("puts, 16 in flight", "put", 16),
    Workload("puts, 64 in flight", "put", 64),
    Workload("linearizable gets, sequential", "get", 1),
    Workload("linearizable gets, 64 in flight", "get", 64),
)
CPU_ROWS = ("busiest node", "other nodes", "client")


@attrs.frozen
class Etcd:
    """etcd's figures from this run: the peer's name ("etcd 3.4.23 via aetcd") and each
    workload's figures."""

    peer: str
    results: dict[str, Measured]


@attrs.frozen
class Measured:
    ops: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    # CPU time per operation in µs (user + system, from /proc): the busiest node (the
    # leader), the mean of the other nodes, this process (the client). Ours only.
    cpu_us: tuple[float, float, float] | None = None

    @property
    def per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @classmethod
    def of(cls, latencies_s: list[float], errors: int, seconds: float) -> Measured:
        ordered = sorted(latencies_s)

        def at(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

        return cls(len(ordered), seconds, errors, at(0.5), at(0.99))


def run(quick: bool) -> list[Row]:
    duration_s = 0.2 if quick else 5.0
    ours = trio.run(measure_ours, duration_s)
    etcd = measure_etcd(duration_s)
    peers, warnings = {}, {}
    for variant in VARIANTS:
        peers[variant.name], warnings[variant.name] = measure_pysyncobj(variant, duration_s)
    return rows(ours, peers, warnings, etcd)


# -- etcd ------------------------------------------------------------------------------


def measure_etcd(
    duration_s: float, path: str | None = None, workloads: tuple[Workload, ...] = WORKLOADS
) -> Etcd | None:
    """etcd's figures for each of `workloads` (bench/etcd_cluster.py), or None after
    printing the line that says how to install etcd and aetcd, when either is missing.
    `path` is searched for the etcd binary instead of $PATH when given."""
    hint = etcd_cluster.missing(path)
    if hint is not None:
        print(hint, flush=True)
        return None
    asked = [{"name": w.name, "op": w.op, "inflight": w.inflight} for w in workloads]
    peer, results = etcd_cluster.measure(asked, duration_s, len(VALUE))
    return Etcd(
        peer,
        {name: Measured(r["ops"], r["seconds"], r["errors"], r["p50_ms"], r["p99_ms"])
         for name, r in results.items()},
    )  # fmt: skip


# -- ours ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _running_cluster(
    prefix: str,
    settings: dict[str, int] | None = None,
    *,
    python: str = sys.executable,
    stop_timeout_s: float = 10,
) -> AsyncIterator[tuple[NodeProcesses, Any]]:
    """A 3-node cluster from `raftcluster init` (with `settings`) in a temporary
    directory, its processes started (by the interpreter `python`), a leader elected and a
    client connected; stopped (within `stop_timeout_s` each) and removed on the way out,
    even when cancelled."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = init_cluster(root, nodes=3, settings=settings)
    processes = NodeProcesses(cluster, python=python)
    try:
        for node in cluster.node_ids:
            await processes.start(node)
        await _until_leader(cluster)
        async with connect(cluster) as client:
            yield processes, client
    finally:
        with trio.CancelScope(shield=True):
            await processes.stop_all(timeout_s=stop_timeout_s)
            await processes.close()
        shutil.rmtree(root, ignore_errors=True)


async def measure_ours(duration_s: float) -> dict[str, Measured]:
    async with _running_cluster("bench-node-") as (processes, client):
        results: dict[str, Measured] = {}
        await _puts(client, 1, min(duration_s, 0.5), "warm")  # session, connections
        pids = [processes.pid(node) for node in processes.cluster.node_ids]
        for workload in WORKLOADS:
            before = _cpu_s(pids)
            if workload.op == "put":
                measured = await _puts(client, workload.inflight, duration_s, workload.name)
            else:
                measured = await _gets(client, workload.inflight, duration_s)
            results[workload.name] = _with_cpu(measured, before, _cpu_s(pids))
        return results


def _cpu_s(node_pids: list[int]) -> tuple[list[float], float]:
    """CPU seconds (user + system) used so far by each node process, and by this one."""
    tick_s = 1 / os.sysconf("SC_CLK_TCK")
    nodes = []
    for pid in node_pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        nodes.append((int(fields[11]) + int(fields[12])) * tick_s)  # utime, stime
    return nodes, time.process_time()


def _with_cpu(
    measured: Measured, before: tuple[list[float], float], after: tuple[list[float], float]
) -> Measured:
    if not measured.ops:
        return measured
    per_op = 1e6 / measured.ops
    used = sorted((b - a for a, b in zip(before[0], after[0], strict=True)), reverse=True)
    others = used[1:]
    return attrs.evolve(
        measured,
        cpu_us=(
            used[0] * per_op,
            sum(others) / len(others) * per_op if others else 0.0,
            (after[1] - before[1]) * per_op,
        ),
    )


async def _until_leader(cluster: ClusterFile) -> None:
    targets = [Target(n.id, n.addresses) for n in cluster.nodes]
    async with Poller.open(targets, client_transport_config(cluster)) as poller:
        with trio.fail_after(WAIT_S):
            while True:
                probes = await poller.poll(timeout_ms=1_000)
                if any(p.info and p.info.status.role == "leader" for p in probes):
                    return
                await trio.sleep(0.05)


async def _puts(client: Any, inflight: int, duration_s: float, label: str) -> Measured:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s
    counter = iter(range(10**9))

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            key = b"bench/%s/%08d" % (label.encode(), next(counter))
            t0 = time.perf_counter()
            try:
                await client.put(key, VALUE)
            except Exception:  # noqa: BLE001 - every failure is counted, none may stop the run
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)

    return await _parallel(worker, inflight, latencies, lambda: errors)


async def _gets(client: Any, inflight: int, duration_s: float) -> Measured:
    keys = [b"bench/warm/%08d" % i for i in range(50)]
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await client.get(keys[i % len(keys)])
            except Exception:  # noqa: BLE001 - every failure is counted, none may stop the run
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)
            i += 1

    return await _parallel(worker, inflight, latencies, lambda: errors)


async def _parallel(worker: Any, inflight: int, latencies: list[float], errors: Any) -> Measured:
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(inflight):
            nursery.start_soon(worker)
    return Measured.of(latencies, errors(), time.perf_counter() - start)


# -- a large store: snapshots under load -----------------------------------------------

FILL_BATCH = 128  # puts per transaction while filling (the kv's MAX_TXN_OPS)


async def measure_large_store(keys: int, duration_s: float, snapshot_every: int) -> Measured:
    """Puts with 64 in flight on a store already holding `keys` keys of 100 bytes, with
    `raftcluster init`'s defaults but a snapshot every `snapshot_every` entries (so that
    several fall in the window at this machine's rate): how much the snapshots of a
    large state show in the latency (p99 against p50)."""
    every = {"limits.snapshot_every_entries": snapshot_every}
    async with _running_cluster("bench-node-large-", every) as (_, client):
        await _fill(client, keys)
        return await _puts(client, 64, duration_s, "large")


async def _fill(client: Any, keys: int) -> None:
    batches = iter(range(0, keys, FILL_BATCH))

    async def worker() -> None:
        for start in batches:
            ops = [
                txn.put(b"fill/%08d" % i, VALUE)
                for i in range(start, min(keys, start + FILL_BATCH))
            ]
            await client.txn().then(*ops).commit()

    async with trio.open_nursery() as nursery:
        for _ in range(16):
            nursery.start_soon(worker)


def large_store_main(argv: list[str] | None = None) -> int:
    """`python -m bench.bench_node --store-keys 100000 [--seconds 10] [--snapshot-every
    2000]`: one line with the p50 and p99 of puts at 64 in flight on a store of that many
    keys, and their ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_node")
    parser.add_argument("--store-keys", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--snapshot-every", type=int, default=2_000, metavar="ENTRIES")
    args = parser.parse_args(argv)
    measured = trio.run(measure_large_store, args.store_keys, args.seconds, args.snapshot_every)
    ratio = measured.p99_ms / measured.p50_ms if measured.p50_ms else float("inf")
    print(
        f"puts, 64 in flight, store of {args.store_keys} keys, a snapshot every "
        f"{args.snapshot_every} entries: {measured.ops} ops in "
        f"{measured.seconds:.1f} s ({measured.per_second:.0f}/s), {measured.errors} errors, "
        f"p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms, p99/p50 {ratio:.2f}"
    )
    return 0


# -- pysyncobj -------------------------------------------------------------------------


TRUNCATION = b"truncating already-applied log entries"


def measure_pysyncobj(variant: Variant, duration_s: float) -> tuple[dict[str, Measured], int]:
    """The workloads' figures, and how many times the nodes logged that they truncated
    entries they had already applied (pysyncobj's own warning of a known fault)."""
    with _pysyncobj_cluster(variant) as (nodes, logs):
        leader = _pysyncobj_leader(nodes)
        results: dict[str, Measured] = {}
        _ask(leader, {"cmd": "run", "op": "put", "inflight": 1, "duration_s": 0.3,
                      "value_bytes": len(VALUE)})  # fmt: skip  # warm up, and keys to get
        for workload in WORKLOADS:
            reply = _ask(
                leader,
                {"cmd": "run", "op": workload.op, "inflight": workload.inflight,
                 "duration_s": duration_s, "value_bytes": len(VALUE)},
            )  # fmt: skip
            results[workload.name] = Measured(
                reply["ops"], reply["seconds"], reply["errors"], reply["p50_ms"], reply["p99_ms"]
            )
        return results, sum(log.read_bytes().count(TRUNCATION) for log in logs)


@contextlib.contextmanager
def _pysyncobj_cluster(
    variant: Variant,
) -> Iterator[tuple[list[subprocess.Popen[str]], list[Path]]]:
    """Three pysyncobj processes (and their logs); all of them ended on the way out,
    whatever happens. They also exit by themselves when their standard input closes
    (this process died)."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-pysyncobj-{variant.name}-"))
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(3)]
    processes: list[subprocess.Popen[str]] = []
    logs = [root / f"node-{i}.log" for i in range(len(addresses))]
    try:
        for i, address in enumerate(addresses):
            partners = ",".join(a for a in addresses if a != address)
            command = [sys.executable, "-m", "bench.pysyncobj_node", "--self", address,
                       "--partners", partners, "--conf", json.dumps(variant.settings),
                       "--dir", str(root / str(i))]  # fmt: skip
            if variant.flush:
                command.append("--flush")
            with logs[i].open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        cwd=Path(__file__).resolve().parent.parent,
                    )
                )
        yield processes, logs
    finally:
        for process in processes:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


def _ask(process: subprocess.Popen[str], request: dict[str, Any]) -> dict[str, Any]:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps(request) + "\n")
    process.stdin.flush()
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"pysyncobj node exited ({process.poll()}) during {request}")
    reply: dict[str, Any] = json.loads(line)
    return reply


def _pysyncobj_leader(nodes: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for node in nodes:
            status = _ask(node, {"cmd": "status"})
            if status["leader"] and status["ready"]:
                return node
        time.sleep(0.05)
    raise RuntimeError(f"no pysyncobj leader within {WAIT_S} s")


# -- the table -------------------------------------------------------------------------


def rows(
    ours: dict[str, Measured],
    peers: dict[str, dict[str, Measured]],
    warnings: dict[str, int],
    etcd: Etcd | None,
) -> list[Row]:
    out: list[Row] = []
    for workload in WORKLOADS:
        mine = ours[workload.name]
        for variant in VARIANTS:
            theirs = peers[variant.name][workload.name]
            out.append(
                Row(
                    f"{workload.name} (ops/s)",
                    mine.per_second,
                    "ops/s",
                    peer=f"pysyncobj {variant.name}",
                    peer_value=theirs.per_second,
                    note=_note(workload, mine, theirs),
                    failed=False,
                )
            )
        if etcd is not None:
            theirs = etcd.results[workload.name]
            out.append(
                Row(f"{workload.name} (ops/s)", mine.per_second, "ops/s", peer=etcd.peer,
                    peer_value=theirs.per_second, note=_etcd_note(workload, mine, theirs))
            )  # fmt: skip
        if workload.inflight == 1:
            for q in ("p50", "p99"):
                for variant in VARIANTS:
                    theirs = peers[variant.name][workload.name]
                    out.append(
                        Row(
                            f"{workload.name} ({q} latency)",
                            getattr(mine, f"{q}_ms"),
                            "ms",
                            peer=f"pysyncobj {variant.name}",
                            peer_value=getattr(theirs, f"{q}_ms"),
                            higher_is_better=False,
                        )
                    )
                if etcd is not None:
                    out.append(
                        Row(f"{workload.name} ({q} latency)", getattr(mine, f"{q}_ms"), "ms",
                            peer=etcd.peer,
                            peer_value=getattr(etcd.results[workload.name], f"{q}_ms"),
                            higher_is_better=False)
                    )  # fmt: skip
        if mine.cpu_us is not None:
            for where, cpu in zip(CPU_ROWS, mine.cpu_us, strict=True):
                out.append(
                    Row(f"{workload.name} (CPU per op, {where})", cpu, "us",
                        higher_is_better=False, note="ours only; user + system time")
                )  # fmt: skip
    for variant in VARIANTS:
        if warnings[variant.name]:
            out.append(
                Row(
                    f"pysyncobj {variant.name}: applied entries truncated",
                    warnings[variant.name],
                    "warnings",
                    note="pysyncobj's own log: a follower cut entries it had applied",
                )
            )
    return out


def _etcd_note(workload: Workload, mine: Measured, theirs: Measured) -> str:
    parts = []
    if workload.inflight > 1:
        parts.append(
            f"p50 {mine.p50_ms:.1f} ms ours, {theirs.p50_ms:.1f} ms etcd; "
            f"p99 {mine.p99_ms:.1f} ms ours, {theirs.p99_ms:.1f} ms etcd"
        )
    if mine.errors or theirs.errors:
        parts.append(f"{mine.errors} errors ours, {theirs.errors} etcd")
    return "; ".join(parts)


def _note(workload: Workload, mine: Measured, theirs: Measured) -> str:
    parts = []
    if workload.inflight > 1:
        parts.append(f"ours p50 {mine.p50_ms:.1f} ms, p99 {mine.p99_ms:.1f} ms")
    if workload.op == "get":
        parts.append("pysyncobj get: a local read, not linearizable")
    errors = mine.errors + theirs.errors
    if errors:
        parts.append(f"{mine.errors} errors ours, {theirs.errors} theirs")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(large_store_main())
