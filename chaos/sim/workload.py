"""Workloads: simulated clients issuing operations through the real client core.

A `Workload` owns the behaviour of some clients (each a `ClientCore` the simulator
drives over the simulated network) and records a history of their operations in the
corpus format (`chaos.checker.history.Event`: invoke, then ok / fail / info), with
virtual times, so the linearizability checker can judge it.

`KvWorkload` is the basic one: each client in turn puts a unique value to, or reads, one
of a few keys (linearizable reads through ReadIndex), waiting a random think time
between operations. Its history is checked with the `kv` model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from chaos.checker import CheckResult, Event, check, history_from_events, make_model
from raftcluster.client.core import ClientCore, Completion
from raftcluster.errors import OutcomeUnknown
from statemachine.kv import Put, Range, RangeResult


class Workload(Protocol):
    name: str
    clients: int  # how many client cores the simulator creates for it

    def setup(self, rng: random.Random, cores: Sequence[ClientCore]) -> None: ...

    def next_ms(self) -> int | None:
        """When `act` should next be called (None: nothing to start)."""
        ...

    def act(self, now_ms: int) -> None:
        """Start operations through the client cores."""
        ...

    def completed(self, client: int, done: Completion, now_ms: int) -> None:
        """Client `client` finished an operation."""
        ...

    def stop(self, now_ms: int) -> None:
        """Start nothing new from now on (operations in flight may still complete)."""
        ...

    def history(self) -> tuple[Event, ...]: ...

    def check(self, timeout_s: float) -> CheckResult | None:
        """Judge the history (None: this workload has no model to check against)."""
        ...


@attrs.define
class _Client:
    index: int
    core: ClientCore
    next_ms: int = 0
    handle: int = 0  # the operation in flight (0: idle)
    f: str = ""
    key: str = ""
    value: Any = None
    count: int = 0


class KvWorkload:
    """put / get on a few keys; history checked with the `kv` model (absent reads as "")."""

    name = "kv"

    def __init__(self, clients: int = 3, keys: int = 3, max_think_ms: int = 200) -> None:
        self.clients = clients
        self.keys = tuple(f"k{i}" for i in range(keys))
        self.max_think_ms = max_think_ms
        self._rng = random.Random(0)
        self._clients: list[_Client] = []
        self._events: list[Event] = []
        self._stopped = False

    def setup(self, rng: random.Random, cores: Sequence[ClientCore]) -> None:
        self._rng = rng
        self._clients = [
            _Client(i, core, rng.randrange(self.max_think_ms + 1)) for i, core in enumerate(cores)
        ]

    def next_ms(self) -> int | None:
        if self._stopped:
            return None
        idle = [c.next_ms for c in self._clients if not c.handle]
        return min(idle) if idle else None

    def act(self, now_ms: int) -> None:
        for client in self._clients:
            if not client.handle and client.next_ms <= now_ms and not self._stopped:
                self._invoke(client, now_ms)

    def _invoke(self, client: _Client, now: int) -> None:
        rng = self._rng
        client.key = rng.choice(self.keys)
        client.count += 1
        if rng.random() < 0.5:
            client.f, client.value = "put", f"{client.index}-{client.count}"
            put = Put(client.key.encode(), client.value.encode())
            client.handle = client.core.write(put, now)
        else:
            client.f, client.value = "get", None
            client.handle = client.core.read(Range(client.key.encode()), now)
        self._events.append(
            Event(client.index, "invoke", client.f, client.value, client.key, time=now)
        )

    def completed(self, client: int, done: Completion, now_ms: int) -> None:
        c = self._clients[client]
        if done.handle != c.handle:
            return
        c.handle = 0
        c.next_ms = now_ms + self._rng.randint(1, self.max_think_ms)
        self._events.append(self._completion(c, done, now_ms))

    def _completion(self, c: _Client, done: Completion, now: int) -> Event:
        error = type(done.error).__name__ if done.error is not None else None
        if isinstance(done.error, OutcomeUnknown):
            return Event(c.index, "info", c.f, c.value, c.key, time=now, error=error)
        if done.error is not None:
            return Event(c.index, "fail", c.f, c.value, c.key, time=now, error=error)
        if c.f == "put":
            return Event(c.index, "ok", "put", c.value, c.key, time=now)
        result = done.result
        assert isinstance(result, RangeResult)
        value = result.kvs[0].value.decode() if result.kvs else ""
        return Event(c.index, "ok", "get", value, c.key, time=now)

    def stop(self, now_ms: int) -> None:
        self._stopped = True

    def history(self) -> tuple[Event, ...]:
        return tuple(self._events)

    def check(self, timeout_s: float) -> CheckResult | None:
        history = history_from_events(self._events, source="kv workload")
        return check(history, make_model("kv", {}), timeout_s=timeout_s, core_timeout_s=None)
