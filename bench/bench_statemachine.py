"""The replicated state machine in process: puts then ranges, typed and through bytes.

`typed` builds commands in process and calls `ClusterState.execute` / `read`;
`bytes` encodes each command, applies it with `ClusterState.apply(index, bytes)` (which
decodes it and encodes the result and events) and decodes the result, as a node
applying committed log entries and a client reading the reply would. There is no
peer for this one. Keys are distinct and in random order (seeded), values 32 bytes.

`committed` is the path every replica runs per log entry and per read, with the
commands a client sends: `ClusterState.apply_committed` of a put wrapped in a session
request (`SessionRequest(session, seq, seq - 1, Put(key, 100-byte value))`, the commands
encoded beforehand, as they arrive in the log), then `ClusterState.query` of an encoded
single-key `Range` per key. `measure_committed` is self-contained (the public API of
`statemachine` only), so `bench.sm_against` runs this tree's copy of it against an older
tree's `statemachine` in one run.

Times are CPU seconds of this process (`time.process_time`): the work is single-threaded
and the machines it runs on are shared, where wall-clock figures swing with the load.
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import random
import time
from collections.abc import Callable

from bench.table import Row
from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode, encode
from statemachine.kv import Put, PutResult, Range, RangeResult
from statemachine.sessions import OpenSession, SessionOpened, SessionRequest

VALUE = b"v" * 32
CLIENT_VALUE = b"c" * 100  # the value size of the node benchmarks (and etcd's comparison)
SESSION_TTL_MS = 60_000


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


def measure_committed(
    n: int, profiles: dict[str, cProfile.Profile] | None = None, with_events: bool = True
) -> dict[str, float]:
    """CPU seconds of `n` session puts through `apply_committed` and of `n` single-key
    reads through `query` (see the module's docstring), and whether every answer was
    right (`ok`: 1.0 or 0.0). Only the public API, so that any tree since sessions runs it.
    `profiles` (optional): a profiler for the loop of puts (`"put"`) and of gets (`"get"`),
    enabled around that loop alone (to count calls per operation; the times then include
    the profiler's cost). `with_events` False: `apply_committed(..., with_events=False)`
    (a tree since that option only)."""
    off = contextlib.nullcontext()
    profiles = profiles or {}
    state = ClusterState()
    opened = decode(
        state.apply_committed(1, encode(OpenSession(0, SESSION_TTL_MS))).result, Message
    )
    assert isinstance(opened, SessionOpened)
    keys = _keys(n)
    puts = [
        encode(SessionRequest(opened.session, seq, seq - 1, Put(key, CLIENT_VALUE)))
        for seq, key in enumerate(keys, 1)
    ]
    gets = [encode(Range(key)) for key in keys]
    apply = state.apply_committed
    if not with_events:
        apply = functools.partial(state.apply_committed, with_events=False)
    with profiles.get("put", off):
        started = time.process_time()
        applied = [apply(index, put) for index, put in enumerate(puts, 2)]
        put_s = time.process_time() - started
    query = state.query
    with profiles.get("get", off):
        started = time.process_time()
        answers = [query(get) for get in gets]
        get_s = time.process_time() - started
    ok = all(isinstance(decode(a.result, Message), PutResult) for a in applied)
    ok &= all(len(a.events) == (1 if with_events else 0) for a in applied)
    for answer in answers:
        read = decode(answer, Message)
        ok &= isinstance(read, RangeResult) and read.count == 1
    return {"put_s": put_s, "get_s": get_s, "ok": float(ok)}


def _committed_rows(n: int) -> list[Row]:
    figures = measure_committed(n)
    bare = measure_committed(n, with_events=False)
    ok = figures["ok"] == 1.0 and bare["ok"] == 1.0
    keys = f"{n:,} distinct keys"
    return [
        _row("sm apply_committed session put", n, figures["put_s"], ok, keys),
        _row("sm apply_committed session put, no events", n, bare["put_s"], ok, keys),
        _row("sm query get", n, figures["get_s"], ok, f"{n:,} single-key ranges"),
    ]


def run(quick: bool) -> list[Row]:
    n = 10_000 if quick else 100_000
    return [
        *_measure("typed", _typed, n),
        *_measure("bytes", _through_bytes, n),
        *_committed_rows(n),
        *_snapshot_rows(n),
    ]
