"""One pysyncobj 0.3.17 node holding a `ReplDict`, driven by `bench_node` over stdin/stdout.

pysyncobj has no client protocol: an application calls the replicated object inside a
node's process. So the benchmark sends this process one JSON command per line and the
workloads run here, in the leader, through pysyncobj's own API:
    {"cmd": "status"}                        -> {"leader": bool, "ready": bool}
    {"cmd": "run", "op": "put"|"get", "inflight": N, "duration_s": S, "value_bytes": B}
                                             -> {"ops", "seconds", "errors", "p50_ms", "p99_ms"}
    {"cmd": "quit"}, or standard input closing: destroy the node and exit.

Settings: `--conf` is a JSON object of `SyncObjConf` settings (a `journalFile` is put in
`--dir`); `--flush` flushes the journal (msync) at the end of every tick that added
entries, through `addOnTickCallback`: pysyncobj 0.3.17 has no option to flush its journal
(its file journal is an mmap written back only when the node is destroyed), so this
gives it one disk sync per tick, like a group commit; a follower may still acknowledge
entries before that tick's sync. bench_node.py names the variants it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict


def build(
    self_address: str, partners: list[str], settings: dict[str, Any], flush: bool, data_dir: Path
) -> tuple[SyncObj, ReplDict]:
    data = ReplDict()
    if "journalFile" in settings:
        settings = {**settings, "journalFile": str(data_dir / settings["journalFile"])}
    node = SyncObj(self_address, partners, consumers=[data], conf=SyncObjConf(**settings))
    if flush:
        _flush_every_tick(node)
    return node, data


def _flush_every_tick(node: SyncObj) -> None:
    journal = node._SyncObj__raftLog  # the journal; no public accessor
    last = [len(journal)]

    def flush() -> None:
        if len(journal) != last[0]:
            journal.flush()
            last[0] = len(journal)

    node.addOnTickCallback(flush)


def percentile(latencies: list[float], q: float) -> float:
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run_puts(data: ReplDict, inflight: int, duration_s: float, value: bytes) -> dict[str, Any]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = [0]
    outstanding = [0]
    drained = threading.Event()
    deadline = time.perf_counter() + duration_s

    def next_key() -> str:
        with lock:
            counter[0] += 1
            return f"bench/{counter[0]:08d}"

    if inflight == 1:
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                data.set(next_key(), value, sync=True, timeout=10)
            except Exception:  # noqa: BLE001 - any pysyncobj failure counts as an error
                errors[0] += 1
                continue
            latencies.append(time.perf_counter() - t0)
        return _summary(latencies, errors[0], time.perf_counter() - start)

    def issue() -> None:
        t0 = time.perf_counter()

        def done(result: Any, error: Any) -> None:
            with lock:
                if error:
                    errors[0] += 1
                else:
                    latencies.append(time.perf_counter() - t0)
                more = time.perf_counter() < deadline
                if not more:
                    outstanding[0] -= 1
                    if outstanding[0] == 0:
                        drained.set()
            if more:
                issue()

        data.set(next_key(), value, callback=done)

    start = time.perf_counter()
    outstanding[0] = inflight
    for _ in range(inflight):
        issue()
    drained.wait(duration_s + 30)
    return _summary(latencies, errors[0], time.perf_counter() - start)


def run_gets(data: ReplDict, inflight: int, duration_s: float) -> dict[str, Any]:
    """Local reads of the dict (pysyncobj has no other kind), from `inflight` threads."""
    keys = [f"bench/{i:08d}" for i in range(1, 1001)]
    per_thread: list[list[float]] = [[] for _ in range(inflight)]
    deadline = time.perf_counter() + duration_s

    def reader(out: list[float]) -> None:
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            data.get(keys[i % len(keys)])
            out.append(time.perf_counter() - t0)
            i += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=reader, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies = [x for out in per_thread for x in out]
    return _summary(latencies, 0, time.perf_counter() - start)


def _summary(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    return {
        "ops": len(latencies),
        "seconds": seconds,
        "errors": errors,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--self", dest="self_address", required=True)
    parser.add_argument("--partners", required=True)
    parser.add_argument("--conf", default="{}", help="SyncObjConf settings, as a JSON object")
    parser.add_argument("--flush", action="store_true", help="flush the journal every tick")
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    settings = json.loads(args.conf)
    node, data = build(args.self_address, args.partners.split(","), settings, args.flush, args.dir)
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if request["cmd"] == "quit":
                break
            if request["cmd"] == "status":
                reply: dict[str, Any] = {"leader": node._isLeader(), "ready": node.isReady()}
            elif request["op"] == "put":
                value = os.urandom(request["value_bytes"] // 2).hex().encode()
                reply = run_puts(data, request["inflight"], request["duration_s"], value)
            else:
                reply = run_gets(data, request["inflight"], request["duration_s"])
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        node.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
