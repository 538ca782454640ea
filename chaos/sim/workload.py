"""Workloads: simulated clients issuing operations through the real client core.

A `Workload` owns the behaviour of some clients (each a `ClientHandle` the engine makes:
ours, a `ClientCore` on the simulated network) and records a history of their operations in the
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

from chaos.checker import (
    CheckResult,
    EffortClock,
    Event,
    check,
    history_from_events,
    make_model,
)
from raftcluster.client.core import Completion
from raftcluster.errors import OutcomeUnknown
from statemachine.kv import Put, Range, RangeResult


class ClientHandle(Protocol):
    """What a workload drives a client through: the engine's client (ours: a `ClientCore`
    on its own clock; pysyncobj's: an adapter). Each call returns the operation's handle,
    which its completion carries."""

    def write(self, command: Any, now_ms: int, timeout_ms: int | None = None) -> int: ...

    def read(self, query: Any, now_ms: int, **options: Any) -> int: ...


class Workload(Protocol):
    name: str
    clients: int  # how many clients the engine makes for it

    def setup(self, rng: random.Random, cores: Sequence[ClientHandle]) -> None: ...

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
        """Judge the history (None: this workload has no model to check against).
        `timeout_s` is a budget of search effort: check it on an `EffortClock`, so the
        verdict is the same on every machine."""
        ...


@attrs.define
class OpClient:
    """One simulated client's state: at most one operation in flight (`handle`)."""

    index: int
    core: ClientHandle
    next_ms: int = 0
    handle: int = 0  # the client core's operation in flight (0: idle)
    f: str = ""
    key: str = ""
    value: Any = None
    count: int = 0
    stage: int = 0  # for operations made of several client calls
    scratch: Any = None  # what an operation carries between its calls


class ClientsWorkload:
    """The common part of the workloads: clients that each run one operation at a time,
    with a random think time between operations, recording invoke / ok / fail / info.

    A subclass implements `invoke(client, now)` (start an operation: set `f`, `key`,
    `value` and `handle`; the invoke event is recorded for it) and `step(client, done,
    now)` (a client call finished: return the operation's completion event, or None after
    starting its next call, with `handle` set)."""

    name = "clients"
    # The checker model the history is judged with, and its options.
    model = "kv"
    model_options: dict[str, Any] = {}
    # The share of a client's operations that are reads. The first client mostly reads:
    # a reader that stays with a cut-off leader (its writes would block it for an
    # operation timeout) is what shows stale reads; the others mostly write.
    READER_SHARE = 0.9
    MIXED_SHARE = 0.4

    def read_share(self, client: int) -> float:
        return self.READER_SHARE if client == 0 else self.MIXED_SHARE

    def __init__(self, clients: int, max_think_ms: int) -> None:
        self.clients = clients
        self.max_think_ms = max_think_ms
        self._rng = random.Random(0)
        self._clients: list[OpClient] = []
        self._events: list[Event] = []
        self._stopped = False
        # `next_ms`, kept until `act` or `completed` changes a client (the loop asks for it
        # twice per step); False: to work out again.
        self._next: int | None | bool = False

    def setup(self, rng: random.Random, cores: Sequence[ClientHandle]) -> None:
        self._rng = rng
        self._clients = [
            OpClient(i, core, rng.randrange(self.max_think_ms + 1)) for i, core in enumerate(cores)
        ]
        self._next = False

    def next_ms(self) -> int | None:
        if self._next is False:
            idle = [c.next_ms for c in self._clients if not c.handle]
            self._next = None if self._stopped or not idle else min(idle)
        return self._next

    def act(self, now_ms: int) -> None:
        self._next = False
        for client in self._clients:
            if not client.handle and client.next_ms <= now_ms and not self._stopped:
                client.count += 1
                client.stage, client.scratch = 0, None
                self.invoke(client, now_ms)
                self._events.append(
                    Event(client.index, "invoke", client.f, client.value, client.key, time=now_ms)
                )

    def completed(self, client: int, done: Completion, now_ms: int) -> None:
        c = self._clients[client]
        self._next = False
        if done.handle != c.handle:
            return
        c.handle = 0
        event = self.step(c, done, now_ms)
        if event is None:
            assert c.handle, "an operation that goes on has a call in flight"
            return
        c.next_ms = now_ms + self._rng.randint(1, self.max_think_ms)
        self._events.append(event)

    def invoke(self, client: OpClient, now: int) -> None:
        raise NotImplementedError

    def step(self, client: OpClient, done: Completion, now: int) -> Event | None:
        raise NotImplementedError

    def stop(self, now_ms: int) -> None:
        self._stopped = True
        self._next = False

    def history(self) -> tuple[Event, ...]:
        return tuple(self._events)

    def check(self, timeout_s: float) -> CheckResult | None:
        """The history judged with `model` on an effort clock (the same verdict on any
        machine)."""
        history = history_from_events(self._events, source=f"{self.name} workload")
        return check(
            history,
            make_model(self.model, self.model_options),
            timeout_s=timeout_s,
            core_timeout_s=None,
            clock=EffortClock(),
        )

    def failed(self, c: OpClient, done: Completion, now: int, value: Any = None) -> Event:
        """The event for a call that ended in an error: `info` when its outcome is unknown
        (`OutcomeUnknown`), else `fail` (it had no effect)."""
        assert done.error is not None
        error = type(done.error).__name__
        kind = "info" if isinstance(done.error, OutcomeUnknown) else "fail"
        value = c.value if value is None else value
        return Event(c.index, kind, c.f, value, c.key, time=now, error=error)


class KvWorkload(ClientsWorkload):
    """put / get on a few keys; history checked with the `kv` model (absent reads as "")."""

    name = "kv"

    def __init__(self, clients: int = 3, keys: int = 3, max_think_ms: int = 200) -> None:
        super().__init__(clients, max_think_ms)
        self.keys = tuple(f"k{i}" for i in range(keys))

    def invoke(self, client: OpClient, now: int) -> None:
        rng = self._rng
        client.key = rng.choice(self.keys)
        if rng.random() >= self.read_share(client.index):
            client.f, client.value = "put", f"{client.index}-{client.count}"
            put = Put(client.key.encode(), client.value.encode())
            client.handle = client.core.write(put, now)
        else:
            client.f, client.value = "get", None
            client.handle = client.core.read(Range(client.key.encode()), now)

    def step(self, c: OpClient, done: Completion, now: int) -> Event | None:
        if done.error is not None:
            return self.failed(c, done, now)
        if c.f == "put":
            return Event(c.index, "ok", "put", c.value, c.key, time=now)
        result = done.result
        assert isinstance(result, RangeResult)
        value = result.kvs[0].value.decode() if result.kvs else ""
        return Event(c.index, "ok", "get", value, c.key, time=now)
