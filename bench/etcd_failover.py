"""One leader failover of a running etcd cluster, timed as bench_failover times ours, in
a process of its own (aetcd needs asyncio: see bench/etcd_driver.py for why that means a
separate interpreter). Prints one JSON object on standard output:
{"ms": kill to the first acknowledged put sent after it, "killed": the member's index,
"elections": how far the cluster's term rose}.

    python -m bench.etcd_failover --endpoints 127.0.0.1:P1,... --pids PID1,... \
        --writers 4 --wait-s 60

It waits (up to --wait-s) until every member answers and all name the same leader, then
runs the writer load through aetcd: --writers tasks each putting keys one after the
other, spread over clients of the two followers (etcd forwards their proposals to the
leader, so no client has to find a new member: the figure is etcd's own failover, not
aetcd's reconnection). After LOAD_S it kills the leader (SIGKILL to its pid) and from
then on also starts a fresh put every PROBE_S (at most MAX_PROBES in flight), because a
put in flight at the kill may hang until its timeout; the first put sent after the kill
that is acknowledged ends the trial. bench_failover restarts the killed member.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

import aetcd

from bench.etcd_status import member_view, parse_endpoints

REQUEST_TIMEOUT_S = 5  # per put: a put in flight at the kill fails after this
LOAD_S = 0.3  # the writers run this long before the kill (as bench_failover's do)
PROBE_S = 0.010  # after the kill, a new put this often
MAX_PROBES = 500  # probes in flight at once (5 s of them), a bound on tasks
FAIL_AFTER_S = 30.0  # a failover that takes longer fails the trial


async def _agreed_leader(endpoints: list[tuple[str, int]], wait_s: float) -> tuple[int, int]:
    """(index of the leader's endpoint, the highest term) once every member answers and
    names the same leader."""
    deadline = time.monotonic() + wait_s
    last: object = None
    while time.monotonic() < deadline:
        leaders, terms = set(), []
        for host, port in endpoints:
            view = await member_view(host, port)
            if view.leader is None or view.term is None:
                last = view.error or last
                break
            leaders.add(view.leader)
            terms.append(view.term)
        else:
            if len(leaders) == 1:
                (url,) = leaders
                addresses = [f"{host}:{port}" for host, port in endpoints]
                return addresses.index(url), max(terms)
            last = f"members name different leaders: {sorted(leaders)}"
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no agreed etcd leader within {wait_s} s (last: {last!r})")


async def trial(
    endpoints: list[tuple[str, int]], pids: list[int], writers: int, wait_s: float
) -> dict[str, Any]:
    leader, term = await _agreed_leader(endpoints, wait_s)
    followers = [endpoints[i] for i in range(len(endpoints)) if i != leader]
    clients = [aetcd.Client(h, p, timeout=REQUEST_TIMEOUT_S) for h, p in followers]
    killed_at: list[float] = []
    acked = asyncio.get_running_loop().create_future()
    value = b"v"

    async def put(client: Any, key: bytes) -> None:
        sent = time.monotonic()
        await client.put(key, value)
        if killed_at and sent > killed_at[0] and not acked.done():
            acked.set_result(time.monotonic())

    async def writer(index: int) -> None:
        client, n = clients[index % len(clients)], 0
        while not acked.done():
            n += 1
            try:
                await put(client, b"bench/failover/%d/%d" % (index, n))
            except Exception:  # noqa: BLE001 - no leader yet: try again (not spinning)
                await asyncio.sleep(PROBE_S)

    async def probe(index: int) -> None:
        # Lost in the failover (any error): a later probe tells.
        with contextlib.suppress(Exception):
            await put(clients[index % len(clients)], b"bench/failover/probe/%d" % index)

    try:
        for client in clients:
            await client.connect()
        async with asyncio.TaskGroup() as tasks:
            for index in range(writers):
                tasks.create_task(writer(index))
            await asyncio.sleep(LOAD_S)
            killed_at.append(time.monotonic())
            os.kill(pids[leader], signal.SIGKILL)
            probes: set[asyncio.Task[None]] = set()
            index = 0
            async with asyncio.timeout(FAIL_AFTER_S):
                while not acked.done():
                    if len(probes) < MAX_PROBES:
                        index += 1
                        task = tasks.create_task(probe(index))
                        probes.add(task)
                        task.add_done_callback(probes.discard)
                    await asyncio.wait([acked], timeout=PROBE_S)
            for task in list(probes):
                task.cancel()
        ms = (acked.result() - killed_at[0]) * 1000
    finally:
        for client in clients:
            await client.close()
    survivors = [e for i, e in enumerate(endpoints) if i != leader]
    _, after = await _agreed_leader(survivors, wait_s)
    return {"ms": ms, "killed": leader, "elections": after - term}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.etcd_failover")
    parser.add_argument("--endpoints", required=True, help="host:port,... (client URLs)")
    parser.add_argument("--pids", required=True, help="the members' pids, in endpoint order")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--wait-s", type=float, default=60.0)
    args = parser.parse_args()
    endpoints = parse_endpoints(args.endpoints)
    pids = [int(pid) for pid in args.pids.split(",")]
    try:
        result = asyncio.run(trial(endpoints, pids, args.writers, args.wait_s))
    except TimeoutError as error:
        print(f"etcd_failover: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
