"""One live run: start the cluster, run clients and the nemesis for the duration, heal,
then measure liveness and convergence. `observe(config, directory)` returns what was
seen (`Observations`); `chaos.live.judge` turns it into verdicts and a report record.

Structure (one trio nursery per phase, so nothing outlives the run):

    LiveCluster.running            node processes; always stopped and reaped on the way out
      monitor                      polls every node's role, for the report's rows
      faulty phase                 clients (one task and one session each) + the nemesis
      healing                      clear every fault, restart dead nodes
      liveness, convergence        a write commits; every replica holds the same data
"""

from __future__ import annotations

import json
import random
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

import raftcluster
from chaos.checker import Event
from chaos.live.cluster import AdminFailed, LiveCluster, leader_of
from chaos.live.config import LiveConfig
from chaos.live.history import Recorder
from chaos.live.nemesis import Nemesis
from chaos.live.schedule import plan
from chaos.live.timeline import Timeline
from chaos.live.workload import KEY_PREFIX, Reader, execute, next_op
from chaos.report import ClientOp, Fault, Interval, OpType
from raftcluster.client.connect import ClientOptions
from raftcluster.transport.scope import single
from statemachine.errors import ClusterError

T = TypeVar("T")
POLL_EVERY_S = 0.2
MAX_THINK_S = 0.05
LIVENESS_KEY = KEY_PREFIX + "liveness"


@attrs.frozen
class Observations:
    """Everything a live run saw. Times are milliseconds since the first leader."""

    config: LiveConfig
    events: tuple[Event, ...]  # the history, in the order observed
    operations: tuple[ClientOp, ...]
    faults: tuple[Fault, ...]
    intervals: tuple[Interval, ...]
    counts: dict[str, int]
    notes: tuple[str, ...]
    healed_ms: float  # when every fault was healed
    write_after_heal_ms: float | None  # a write committed this long after healing
    converged_after_heal_ms: float | None  # replicas identical this long after healing
    divergence: str  # "" or what differed between replicas
    end_ms: float
    pids: dict[int, tuple[int, ...]]  # every node process started, by node
    nodes: tuple[int, ...]
    trace: tuple[str, ...]  # JSON lines: what the nemesis did, when (trace.jsonl)


async def observe(config: LiveConfig, directory: Path) -> Observations:
    """Run it. `directory` receives the cluster (file, secret, node data and logs) and
    is left in place. An error in any task (a client that cannot connect, say) ends the
    run and is raised as itself, not in an exception group. Cancellation (Ctrl-C): every
    node process is stopped and reaped before the cancellation goes on; nothing else
    runs on."""
    try:
        async with LiveCluster.running(directory, config) as cluster:
            await _wait_leader(cluster, config.heal_timeout_ms)
            return await _Run(config, cluster).go()
    except BaseExceptionGroup as group:  # one error (or Ctrl-C) comes out as itself
        raise single(group) from None


async def observe_until_interrupted(config: LiveConfig, directory: Path) -> Observations:
    """`observe`, with Ctrl-C taken as a signal (`until_interrupted`)."""
    return await until_interrupted(observe, config, directory)


async def until_interrupted(
    observer: Callable[[LiveConfig, Path], Awaitable[T]], config: LiveConfig, directory: Path
) -> T:
    """`observer(config, directory)`, with Ctrl-C (SIGINT) taken as a signal rather than as
    a KeyboardInterrupt that trio raises wherever the main task happens to be: raised
    inside a finalizer, it would be printed and lost, and the run would go on. On SIGINT
    the run is cancelled (the observer stops and reaps every node), then
    KeyboardInterrupt is raised. Needs the main thread (signal handlers)."""
    interrupted = False
    result: list[T] = []
    try:
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    nonlocal interrupted
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()
                        return

                async def work() -> None:
                    result.append(await observer(config, directory))
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch)
                nursery.start_soon(work)
    except BaseExceptionGroup as group:
        raise single(group) from None
    if interrupted:
        raise KeyboardInterrupt
    assert result, "the run ended without a result or an error"
    return result[0]


async def _wait_leader(cluster: LiveCluster, timeout_ms: int) -> None:
    with trio.move_on_after(timeout_ms / 1000):
        while not leader_of(await cluster.poll()):
            await trio.sleep(POLL_EVERY_S)
        return
    raise ClusterError(f"no leader within {timeout_ms} ms of starting the nodes")


async def follow_roles(
    cluster: LiveCluster, timeline: Timeline, terms: set[int], now_ms: Callable[[], float]
) -> None:
    """Poll every node each POLL_EVERY_S until cancelled: its role (or silence) goes to
    `timeline`, every term a leader was seen in to `terms`. Cancellation stops it."""
    while True:
        infos = await cluster.poll()
        now = now_ms()
        for node in cluster.nodes:
            info = infos.get(node)
            if info is None:
                timeline.role(node, None, 0, now)
            else:
                timeline.role(node, info.status.role, info.status.term, now)
                if info.status.role == "leader":
                    terms.add(info.status.term)
        await trio.sleep(POLL_EVERY_S)


class _Run:
    def __init__(self, config: LiveConfig, cluster: LiveCluster) -> None:
        self.config = config
        self.cluster = cluster
        self.start = trio.current_time()
        self.recorder = Recorder()
        self.timeline = Timeline(cluster.nodes)
        self.nemesis = Nemesis(cluster, self.now_ms, self.timeline)
        self.rng = random.Random(config.seed)
        self.terms: set[int] = set()
        self.options = ClientOptions(
            request_timeout_ms=config.request_timeout_ms,
            attempt_timeout_ms=min(500, config.request_timeout_ms),
        )

    def now_ms(self) -> float:
        return round((trio.current_time() - self.start) * 1000, 3)

    async def go(self) -> Observations:
        config = self.config
        steps = plan(
            random.Random(self.rng.getrandbits(64)), config.nemeses, self.cluster.nodes,
            duration_ms=config.duration_ms, warmup_ms=config.warmup_ms,
        )  # fmt: skip
        seeds = [self.rng.getrandbits(64) for _ in range(config.clients)]
        async with trio.open_nursery() as outer:
            outer.start_soon(self._monitor)
            async with trio.open_nursery() as phase:
                for index, seed in enumerate(seeds):
                    phase.start_soon(self._client, index, random.Random(seed))
                phase.start_soon(self.nemesis.run, steps, self.start, config.duration_ms)
            await self.nemesis.heal_all()
            healed = self.now_ms()
            write_ms = await self._liveness(healed)
            converged_ms, divergence = await self._convergence(healed)
            outer.cancel_scope.cancel()
        end = self.now_ms()
        return Observations(
            config, tuple(self.recorder.events), self.recorder.operations(),
            tuple(self.nemesis.faults), self.timeline.intervals(end), self._counts(),
            tuple(self.nemesis.notes), healed, write_ms, converged_ms, divergence, end,
            {n: tuple(p) for n, p in self.cluster.pids.items()}, self.cluster.nodes,
            tuple(json.dumps(t, sort_keys=True) + "\n" for t in self.nemesis.trace),
        )  # fmt: skip

    def _counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter(self.nemesis.counts)
        for op in self.recorder.operations():
            counts[f"ops.{op.type.value}"] += 1
        counts["leaders.terms"] = len(self.terms)
        return dict(counts)

    async def _monitor(self) -> None:
        await follow_roles(self.cluster, self.timeline, self.terms, self.now_ms)

    async def _client(self, index: int, rng: random.Random) -> None:
        """One client process: its own session, one operation at a time, until the
        end of the faulty phase. An operation with an unknown outcome ends the process
        (its number is not used again, as in Jepsen): the next one gets a new number.
        Cancellation: the operation in flight is recorded as never answered."""
        config, recorder = self.config, self.recorder
        process, count, last_seen = index, 0, None
        reader = self._stale_reader(rng) if config.stale_reads else None
        async with raftcluster.connect(self.cluster.cluster, options=self.options) as client:
            while self.now_ms() < config.duration_ms and not recorder.full:
                op = next_op(rng, config.workload, index, count, last_seen)
                count += 1
                at = recorder.invoke(process, op.f, op.value, op.key, self.now_ms())
                outcome = await execute(client, op, config.request_timeout_ms, reader=reader)
                recorder.complete(
                    at, outcome.type, outcome.output, self.now_ms(), error=outcome.error
                )
                if outcome.type is OpType.OK:
                    last_seen = _seen(op.f, op.value, outcome.output)
                elif outcome.type is OpType.INFO:
                    process += config.clients
                await trio.sleep(rng.uniform(0, MAX_THINK_S))

    def _stale_reader(self, rng: random.Random) -> Reader:
        """The planted bug: each read asks a node drawn at random for its own copy."""
        nodes = self.cluster.nodes

        async def read(key: str) -> bytes | None:
            return await self.cluster.stale_value(rng.choice(nodes), key)

        return read

    async def _liveness(self, healed_ms: float) -> float | None:
        """How long after healing a fresh client's write committed (None: not within
        the heal timeout)."""
        timeout_ms = self.config.heal_timeout_ms
        options = ClientOptions(request_timeout_ms=timeout_ms, connect_timeout_ms=timeout_ms)
        try:
            async with raftcluster.connect(self.cluster.cluster, options=options) as client:
                await client.put(LIVENESS_KEY, "after healing", timeout_ms=timeout_ms)
        except ClusterError as e:
            self.nemesis.notes.append(f"liveness: no write committed after healing: {e}")
            return None
        return round(self.now_ms() - healed_ms, 3)

    async def _convergence(self, healed_ms: float) -> tuple[float | None, str]:
        """Wait until every node has applied all it committed, at one index, then read
        each node's own copy of the workload's keys: they must be identical. Returns
        (how long after healing, what differed: "" when nothing did)."""
        with trio.move_on_after(self.config.heal_timeout_ms / 1000):
            while True:
                found = await self._compare()
                if found is not None:
                    return round(self.now_ms() - healed_ms, 3), found
                await trio.sleep(POLL_EVERY_S)
        self.nemesis.notes.append("convergence: replicas did not settle after healing")
        return None, ""

    async def _compare(self) -> str | None:
        infos = await self.cluster.poll()
        if len(infos) < len(self.cluster.nodes):
            return None
        applied = {i.status.applied_index for i in infos.values()}
        commits = {i.status.commit_index for i in infos.values()}
        if len(applied) != 1 or applied != commits:
            return None
        copies: dict[int, tuple[int, Any]] = {}
        for node in self.cluster.nodes:
            try:
                copies[node] = await self.cluster.stale_range(node, KEY_PREFIX)
            except AdminFailed:
                return None
        if len({index for index, _ in copies.values()}) != 1:
            return None  # something was applied between two reads: ask again
        if len({pairs for _, pairs in copies.values()}) == 1:
            return ""
        return "; ".join(f"node {n}: {dict(pairs)}" for n, (_, pairs) in copies.items())


def _seen(f: str, value: Any, output: Any) -> Any:
    """The register value an ok operation leaves this client knowing."""
    if f == "read":
        return output
    if f == "cas":
        return value[1]
    return value
