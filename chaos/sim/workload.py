"""Workloads: simulated clients issuing operations through the real client core.

A `Workload` owns the behaviour of some clients (each a `ClientHandle` the engine makes:
ours, a `ClientCore` on the simulated network) and records a history of their operations in the
corpus format (`chaos.checker.history.Event`: invoke, then ok / fail / info), with
virtual times, so the linearizability checker can judge it.

`KvWorkload` is the basic one: each client in turn puts a unique value to, or reads, one
of a few keys (linearizable reads through ReadIndex), waiting a random think time
between operations. Its history is checked with the `kv` model.

Pipelined sessions: a history process (`Event.process`) has at most one operation at a
time, but several processes may share one client (one session), the way a service
embedding the client sends many writes on one session at once. Each client's
`SessionShape` says how many processes share it (`depth`) and whether they start
together (`bursty`); `KvWorkload` draws the shapes from the seed (`ClientsWorkload`
keeps one process per client). A completion comes back for a client and is matched to
its process by its handle.
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
    which its completion carries.

    A handle may say `pipelines = True`: it is a session worth sharing between several
    processes (ours; pysyncobj has no client sessions, and a handle without the
    attribute is taken as one that does not)."""

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


@attrs.frozen
class SessionShape:
    """How one client (one session) is used: `depth` history processes share it, each
    with at most one operation in flight; `bursty`: when one of them starts an operation,
    the idle others start one too (so the session has `depth` operations in flight)."""

    depth: int = attrs.field(default=1, validator=attrs.validators.in_(range(1, 9)))
    bursty: bool = False

    def max_think_ms(self, base_ms: int) -> int:
        """A process's longest think time, so that the session issues about as many
        operations as one process thinking up to `base_ms`: `depth` times longer, and
        longer still when bursty (a burst starts at the first of `depth` think times
        and starts `depth` operations)."""
        if self.bursty:
            return base_ms * self.depth * (self.depth + 1) // 2
        return base_ms * self.depth


@attrs.define
class OpClient:
    """One history process's state: at most one operation in flight (`handle`), sent
    through `core` (shared with the other processes of its session, `session`)."""

    index: int
    core: ClientHandle
    next_ms: int = 0
    session: int = 0  # the index of its client (its `core`) in the workload's list
    max_think_ms: int = 0  # its longest think time between operations (0: the workload's)
    handle: int = 0  # the client core's operation in flight (0: idle)
    f: str = ""
    key: str = ""
    value: Any = None
    count: int = 0
    stage: int = 0  # for operations made of several client calls
    scratch: Any = None  # what an operation carries between its calls


class ClientsWorkload:
    """The common part of the workloads: processes that each run one operation at a time,
    with a random think time between operations, recording invoke / ok / fail / info.
    Each client (session) carries the processes its `SessionShape` says (`shapes`, drawn
    by `draw_shapes`: one process per client unless a subclass pipelines).

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
        self._clients: list[OpClient] = []  # the history processes, by `Event.process`
        self._by_session: list[list[OpClient]] = []  # each client's processes
        self.shapes: tuple[SessionShape, ...] = ()
        self._events: list[Event] = []
        self._stopped = False
        # `next_ms`, kept until `act` or `completed` changes a client (the loop asks for it
        # twice per step); False: to work out again.
        self._next: int | None | bool = False

    def draw_shapes(self, rng: random.Random, clients: int) -> tuple[SessionShape, ...]:
        """Each client's shape (drawn from `rng` by a subclass that pipelines, when every
        handle `pipelines`; here one process per client, and nothing drawn)."""
        return (SessionShape(),) * clients

    def setup(self, rng: random.Random, cores: Sequence[ClientHandle]) -> None:
        self._rng = rng
        if all(getattr(core, "pipelines", False) for core in cores):
            self.shapes = self.draw_shapes(rng, len(cores))
        else:  # (nothing drawn: such an engine's runs stay as they were)
            self.shapes = ClientsWorkload.draw_shapes(self, rng, len(cores))
        self._clients, self._by_session = [], []
        for session, (core, shape) in enumerate(zip(cores, self.shapes, strict=True)):
            think_ms = shape.max_think_ms(self.max_think_ms)
            processes = []
            for _ in range(shape.depth):
                start_ms = rng.randrange(think_ms + 1)
                processes.append(OpClient(len(self._clients), core, start_ms, session, think_ms))
                self._clients.append(processes[-1])
            self._by_session.append(processes)
        self._next = False

    @property
    def processes(self) -> int:
        """How many history processes the clients carry."""
        return len(self._clients)

    def next_ms(self) -> int | None:
        if self._next is False:
            idle = [c.next_ms for c in self._clients if not c.handle]
            self._next = None if self._stopped or not idle else min(idle)
        return self._next

    def act(self, now_ms: int) -> None:
        self._next = False
        if self._stopped:
            return
        for client in self._clients:
            if not client.handle and client.next_ms <= now_ms:
                self._start(client, now_ms)
                if self.shapes[client.session].bursty:  # the idle others go with it
                    for other in self._by_session[client.session]:
                        if not other.handle:
                            self._start(other, now_ms)

    def _start(self, client: OpClient, now_ms: int) -> None:
        client.count += 1
        client.stage, client.scratch = 0, None
        self.invoke(client, now_ms)
        self._events.append(
            Event(client.index, "invoke", client.f, client.value, client.key, time=now_ms)
        )

    def completed(self, client: int, done: Completion, now_ms: int) -> None:
        """Client `client` (a session) finished the call `done.handle`: the process
        that has it in flight takes the step (none has it: an operation abandoned)."""
        self._next = False
        for c in self._by_session[client]:  # (a few processes: a scan is enough)
            if c.handle == done.handle:
                break
        else:
            return
        c.handle = 0
        event = self.step(c, done, now_ms)
        if event is None:
            assert c.handle, "an operation that goes on has a call in flight"
            return
        c.next_ms = now_ms + self._rng.randint(1, c.max_think_ms or self.max_think_ms)
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
    # The deepest pipelining drawn: up to this many processes share one session.
    MAX_DEPTH = 4

    def __init__(
        self, clients: int = 3, keys: int = 3, max_think_ms: int = 200, pipelined: bool = True
    ) -> None:
        super().__init__(clients, max_think_ms)
        self.keys = tuple(f"k{i}" for i in range(keys))
        self.pipelined = pipelined

    def draw_shapes(self, rng: random.Random, clients: int) -> tuple[SessionShape, ...]:
        """The first client's session carries the reader alone (see `READER_SHARE`); the
        second 2 to `MAX_DEPTH` processes, and each other one 1 to `MAX_DEPTH`, bursty or
        not, as the seed draws."""
        if not self.pipelined:
            return super().draw_shapes(rng, clients)
        shapes = [SessionShape()]
        for session in range(1, clients):
            depth = rng.randint(2 if session == 1 else 1, self.MAX_DEPTH)
            shapes.append(SessionShape(depth, bursty=depth > 1 and rng.random() < 0.5))
        return tuple(shapes[:clients])

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
