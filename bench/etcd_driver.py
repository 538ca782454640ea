"""Drives a running etcd cluster through `aetcd` with bench_node's workloads, and prints
one JSON object on standard output: {"results": {workload name: {"ops", "seconds",
"errors", "p50_ms", "p99_ms"}}}. bench_node starts and stops the etcd processes; this
module only talks to them, as a Python service would.

    python -m bench.etcd_driver --endpoints 127.0.0.1:P1,127.0.0.1:P2,... \
        --workloads '[{"name": ..., "op": "put"|"get", "inflight": N}, ...]' \
        --duration-s 5 --value-bytes 100 --wait-s 60

It first waits (up to --wait-s) for a member to report a leader, then connects one
client to the leader's client URL (ours also sends to the leader: no forwarding hop on
either side), warms up with sequential puts of the keys the get workloads read, and runs
each workload for --duration-s: `put` one after another or N at once (tasks sharing the
client), `get` the same way (etcd's default range read: linearizable).

Why a process of its own, with asyncio: aetcd is built on grpc.aio, so it needs an
asyncio loop, while the bench and raftcluster are trio (the project's rule: no asyncio in
our code; this module is the one exception, forced by the client it measures). A
separate interpreter keeps grpc's threads and asyncio out of the bench process (and out
of pytest's), lets bench_node bound it with a timeout and kill it, and turns "aetcd is
not installed" into a plain import check. It exits with status 2 and a message on
standard error if no leader shows up in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aetcd

from bench.etcd_status import member_view, parse_endpoints

# A request that takes longer than this counts as an error (aetcd's default is no
# deadline at all, which would hang the run on a lost request).
REQUEST_TIMEOUT_S = 5
WARM_KEYS = 50  # the get workloads read these keys, written by the warm-up


def _figures(latencies_s: list[float], errors: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies_s)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    return {"ops": len(ordered), "seconds": seconds, "errors": errors,
            "p50_ms": at(0.5), "p99_ms": at(0.99)}  # fmt: skip


async def _leader_endpoint(endpoints: list[tuple[str, int]], wait_s: float) -> tuple[str, int]:
    """The leader's client address, asked of each member in turn until one knows it."""
    deadline = time.monotonic() + wait_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        for host, port in endpoints:
            view = await member_view(host, port)
            last = view.error or last
            if view.leader is not None:
                leader_host, _, leader_port = view.leader.rpartition(":")
                return leader_host, int(leader_port)
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no etcd leader within {wait_s} s (last error: {last!r})")


async def _run(
    inflight: int, duration_s: float, op: Callable[[int], Awaitable[object]]
) -> dict[str, Any]:
    """`inflight` tasks each calling `op(i)` (i counts up across tasks) until the
    deadline; a failed call is counted, and does not stop the run."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await op(next(counter))
            except Exception:  # noqa: BLE001 - every failure is counted, none may stop the run
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tasks:
        for _ in range(inflight):
            tasks.create_task(worker())
    return _figures(latencies, errors, time.perf_counter() - start)


def _putter(client: Any, prefix: bytes, value: bytes) -> Callable[[int], Awaitable[object]]:
    def op(i: int) -> Awaitable[object]:
        call: Awaitable[object] = client.put(prefix + b"%08d" % i, value)
        return call

    return op


def _getter(client: Any, keys: list[bytes]) -> Callable[[int], Awaitable[object]]:
    def op(i: int) -> Awaitable[object]:
        call: Awaitable[object] = client.get(keys[i % len(keys)])
        return call

    return op


async def drive(
    endpoints: list[tuple[str, int]],
    workloads: list[dict[str, Any]],
    duration_s: float,
    value_bytes: int,
    wait_s: float,
) -> dict[str, dict[str, Any]]:
    value = b"v" * value_bytes
    host, port = await _leader_endpoint(endpoints, wait_s)
    async with aetcd.Client(host, port, timeout=REQUEST_TIMEOUT_S) as client:
        warm = [b"bench/warm/%08d" % i for i in range(WARM_KEYS)]
        await _run(1, min(duration_s, 0.5), lambda i: client.put(warm[i % WARM_KEYS], value))
        results = {}
        for workload in workloads:
            name = workload["name"]
            if workload["op"] == "put":
                op = _putter(client, b"bench/%s/" % name.encode(), value)
            else:
                op = _getter(client, warm)
            results[name] = await _run(workload["inflight"], duration_s, op)
        return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.etcd_driver")
    parser.add_argument("--endpoints", required=True, help="host:port,... (client URLs)")
    parser.add_argument("--workloads", required=True, help="JSON list of name, op, inflight")
    parser.add_argument("--duration-s", type=float, required=True)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--wait-s", type=float, default=60.0)
    args = parser.parse_args()
    endpoints = parse_endpoints(args.endpoints)
    try:
        results = asyncio.run(
            drive(endpoints, json.loads(args.workloads), args.duration_s, args.value_bytes,
                  args.wait_s)
        )  # fmt: skip
    except TimeoutError as error:
        print(f"etcd_driver: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
