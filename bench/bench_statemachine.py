"""The replicated state machine in process: puts then ranges, typed and through bytes.

`typed` builds commands in process and calls `ClusterState.execute` / `read`;
`bytes` encodes each command, applies it with `ClusterState.apply(index, bytes)` (which
decodes it and encodes the result and events) and decodes the result, as a node
applying committed log entries and a client reading the reply would. There is no
peer for this one. Keys are distinct and in random order (seeded), values 32 bytes.

Times are CPU seconds of this process (`time.process_time`): the work is single-threaded
and the machines it runs on are shared, where wall-clock figures swing with the load.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from bench.table import Row
from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode, encode
from statemachine.kv import Put, PutResult, Range, RangeResult

VALUE = b"v" * 32


def _keys(count: int) -> list[bytes]:
    rng = random.Random(20240601)
    return [b"bench/%09d" % n for n in rng.sample(range(10**9), count)]


def _typed(state: ClusterState, keys: list[bytes]) -> tuple[float, float, bool]:
    started = time.process_time()
    ok = True
    for index, key in enumerate(keys, 1):
        ok &= isinstance(state.execute(index, Put(key, VALUE)).result, PutResult)
    puts = time.process_time() - started
    started = time.process_time()
    for key in keys:
        result = state.read(Range(key))
        ok &= isinstance(result, RangeResult) and result.count == 1
    return puts, time.process_time() - started, ok


def _through_bytes(state: ClusterState, keys: list[bytes]) -> tuple[float, float, bool]:
    started = time.process_time()
    ok = True
    for index, key in enumerate(keys, 1):
        applied = state.apply(index, encode(Put(key, VALUE)))
        ok &= isinstance(decode(applied.result, Message), PutResult)
    puts = time.process_time() - started
    started = time.process_time()
    first = len(keys) + 1
    for index, key in enumerate(keys, first):  # ranges as log entries: the linearizable path
        result = decode(state.apply(index, encode(Range(key))).result, Message)
        ok &= isinstance(result, RangeResult) and result.count == 1
    return puts, time.process_time() - started, ok


def _row(name: str, count: int, seconds: float, ok: bool, note: str) -> Row:
    return Row(name, count / seconds, "ops/s", note=note, failed=not ok)


def _measure(
    label: str, run: Callable[[ClusterState, list[bytes]], tuple[float, float, bool]], n: int
) -> list[Row]:
    state = ClusterState()
    puts, ranges, ok = run(state, _keys(n))
    ok &= len(state.snapshot()) > n * len(VALUE)
    return [
        _row(f"sm put {label}", n, puts, ok, f"{n:,} distinct keys, {puts:.2f} s"),
        _row(f"sm range {label}", n, ranges, ok, f"{n:,} single-key ranges, {ranges:.2f} s"),
    ]


def _snapshot_rows(n: int) -> list[Row]:
    state = ClusterState()
    for index, key in enumerate(_keys(n), 1):
        state.execute(index, Put(key, VALUE))
    started = time.process_time()
    snapshot = state.snapshot()
    taken = time.process_time() - started
    started = time.process_time()
    restored = ClusterState()
    restored.restore(snapshot)
    back = time.process_time() - started
    ok = restored.snapshot() == snapshot
    size = f"{len(snapshot) / 1e6:.1f} MB"
    return [
        Row("sm snapshot", taken, "s", higher_is_better=False, note=f"{n:,} keys, {size}"),
        Row("sm restore", back, "s", higher_is_better=False, note=size, failed=not ok),
    ]


def run(quick: bool) -> list[Row]:
    n = 10_000 if quick else 100_000
    return [
        *_measure("typed", _typed, n),
        *_measure("bytes", _through_bytes, n),
        *_snapshot_rows(n),
    ]
