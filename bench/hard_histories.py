"""Hard histories for the linearizability checker: many clients, many pending operations.

`recorded(case)` builds the history of a `HardCase`: clients of a correct (linearizable)
kv store or register, each running one operation at a time, some of whose writes time
out (`info`) and then take effect later, even after the timeout, or never: what a
cluster under faults records, and what makes a checker work hardest (porcupine's hard kv
cases are of this kind). Every case is linearizable; `bad=True` corrupts one late read,
which makes it not. The histories are a function of the case alone (`random.Random`
with the case's seed).

`CASES` are the ones bench_checker times. `porcupine_ms` is porcupine's time on the same
history (Go 1.19, porcupine at commit 55508eb, its kv model with state hashing, on this
project's 2-core machine; run by hand from a scratch driver kept outside the
repository), None where it gave no verdict in 60 s; `porcupine_mib` its peak memory.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

import attrs

TIMEOUT = 3.0  # how long a client waits before it records `info`
LINGER = 6.0  # how long after its call an operation that timed out may still take effect


@attrs.frozen
class HardCase:
    name: str
    model: str  # "kv" or "register"
    clients: int
    keys: int  # kv only
    per_client: int  # operations per client
    p_info: float  # the chance that a write times out
    seed: int
    porcupine_ms: float | None  # None: porcupine gave no verdict in 60 s
    porcupine_mib: float
    bad: bool = False

    @property
    def options(self) -> dict[str, Any]:
        if self.model == "register":
            return {"initial": None, "fail": "definite"}
        return {}


def kv(
    clients: int, keys: int, n: int, p: int, seed: int, ms: float | None, mib: float
) -> HardCase:
    name = f"kv-c{clients}-k{keys}-n{n}-p{p:02d}-s{seed}"
    return HardCase(name, "kv", clients, keys, n, p / 100, seed, ms, mib)


def register(clients: int, n: int, p: int, seed: int, ms: float | None, mib: float) -> HardCase:
    name = f"register-c{clients}-n{n}-p{p:02d}-s{seed}"
    return HardCase(name, "register", clients, 1, n, p / 100, seed, ms, mib)


# Each was `unknown` before the checker left out unseen pending writes (2,000,000
# configurations, 0.3 to 1.2 GB); porcupine's figures as measured (see above).
CASES = [
    kv(10, 2, 60, 5, 1, 34339, 3568),
    kv(10, 2, 60, 10, 1, 7252, 978),
    kv(10, 2, 60, 20, 1, 40928, 3697),
    kv(10, 2, 60, 30, 1, 20748, 2228),
    kv(50, 10, 40, 5, 1, 557, 190),
    kv(50, 10, 40, 20, 1, 29422, 3956),
    kv(50, 10, 40, 10, 1, None, 7171),
    kv(50, 10, 40, 30, 1, None, 6765),
    kv(10, 2, 60, 20, 2, 33360, 3491),
    kv(50, 10, 40, 5, 2, 23924, 730),
    kv(50, 10, 40, 20, 2, 49275, 1745),
    kv(50, 10, 40, 30, 2, None, 3350),
    register(20, 30, 10, 1, None, 1395),
    register(20, 30, 30, 2, None, 1662),
]


def recorded(case: HardCase) -> list[dict[str, Any]]:
    """The events of the case's history, in the corpus format."""
    rng = random.Random(case.seed)
    state: dict[str, Any] = {}
    queue: list[tuple[float, int, str, Any]] = []
    order = 0

    def at(time: float, what: str, payload: Any) -> None:
        nonlocal order
        heapq.heappush(queue, (time, order, what, payload))
        order += 1

    for client in range(case.clients):
        at(rng.uniform(0, 5), "start", (client, 0))
    events: list[dict[str, Any]] = []
    while queue:
        now, _, what, payload = heapq.heappop(queue)
        if what == "start":
            client, count = payload
            if count < case.per_client:
                _start(case, rng, now, client, count, events, at)
        elif what == "apply":
            _apply(case, state, payload)
        else:
            op, status = payload
            events.append(_answer(op, status))
            at(now + rng.uniform(0, 0.5), "start", (op["process"], op["n"] + 1))
    if case.bad:
        reads = [e for e in events if e["type"] == "ok" and e["f"] in ("get", "read")]
        late = reads[len(reads) * 3 // 4]
        late["value"] = (late["value"] or "") + "x 999 0 y" if case.model == "kv" else -1
    for index, event in enumerate(events):
        event["index"] = index
    return events


def _start(
    case: HardCase,
    rng: random.Random,
    now: float,
    client: int,
    count: int,
    events: list[dict[str, Any]],
    at: Callable[[float, str, Any], None],
) -> None:
    key = str(rng.randrange(case.keys))
    roll = rng.random()
    if case.model == "kv":
        f = "get" if roll < 0.3 else ("put" if roll < 0.5 else "append")
        value: Any = None if f == "get" else f"x {client} {count} y"
    else:
        f = "read" if roll < 0.4 else ("write" if roll < 0.8 else "cas")
        value = None if f == "read" else client * 1000 + count
        if f == "cas":
            value = [rng.randrange(5), value]
        key = None
    op = {"process": client, "f": f, "key": key, "value": value, "n": count}
    invoke = {"process": client, "type": "invoke", "f": f, "value": value}
    if key is not None:
        invoke["key"] = key
    events.append(invoke)
    took = rng.expovariate(1.0)
    if f not in ("get", "read") and rng.random() < case.p_info:
        at(now + TIMEOUT, "answer", (op, "info"))
        if rng.random() < 0.6:  # took effect, maybe after the client gave up
            at(now + rng.uniform(0, LINGER), "apply", op)
    else:
        at(now + rng.uniform(0, took), "apply", op)
        at(now + took, "answer", (op, "ok"))


def _apply(case: HardCase, state: dict[str, Any], op: dict[str, Any]) -> None:
    key = op["key"] if case.model == "kv" else "r"
    current = state.get(key, "" if case.model == "kv" else None)
    f = op["f"]
    if f in ("get", "read"):
        op["result"] = current
    elif f in ("put", "write"):
        state[key] = op["value"]
    elif f == "append":
        state[key] = current + op["value"]
    else:
        op["ok"] = current == op["value"][0]
        if op["ok"]:
            state[key] = op["value"][1]


def _answer(op: dict[str, Any], status: str) -> dict[str, Any]:
    f = op["f"]
    event = {"process": op["process"], "type": status, "f": f, "value": op["value"]}
    if status == "ok":
        if f in ("get", "read"):
            event["value"] = op["result"]
        if f == "cas" and not op["ok"]:
            event["type"] = "fail"
    if op["key"] is not None:
        event["key"] = op["key"]
    return event
