"""Drivers of real `Replica`s on `MemoryStorage`, wired by an in-memory network, for trio
tests under `MockClock` (time only moves when every task waits).

Each message takes `latency_s` to arrive; cut links lose them. A node's persist can be
slowed down (`persist_delay_s`) to let inputs pile up during it, as an fsync would. A
`ClientCore` can be run against the drivers (`TrioClient`), so client logic (sessions,
retries) is exercised against the runtime's loop.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable

import trio

from raftcluster.client.core import ClientConfig, ClientCore, Completion, Send
from raftcluster.node.clock import NodeClock
from raftcluster.node.driver import Driver
from raftcluster.node.protocol import ClientReply, ClientRequest
from raftcluster.node.replica import Replica, Work
from raftcluster.raft.messages import RaftMessage
from raftcluster.raft.ready import Role
from raftcluster.storage.memory import MemoryStorage
from statemachine.codec import Message
from tests.node.harness import make_config


class TrioCluster:
    def __init__(self, nursery: trio.Nursery, n: int = 3, seed: int = 0, **options: object):
        self.nursery = nursery
        self.rng = random.Random(seed)
        self.ids = tuple(range(1, n + 1))
        self.options = options
        self.latency_s = 0.001
        self.persist_delay_s: dict[int, float] = {}
        self.persisting: dict[int, trio.Event] = {}  # set when a persist starts
        self.cut: set[tuple[int, int]] = set()
        self.storages = {i: MemoryStorage() for i in self.ids}
        self.drivers: dict[int, Driver] = {}
        self.runs: dict[int, trio.CancelScope] = {}
        self.returned: dict[int, trio.Event] = {}  # set when a driver's `run` returns
        self.sent: list[RaftMessage] = []
        self.clock = NodeClock(0)
        # Drivers started from now on persist as a node does (`persist=None`: in a worker
        # thread, the cycle completed in trio's callback task) instead of in their loop.
        self.threaded_persist = False

    def start(self, node: int, driver_class: type[Driver] = Driver) -> Driver:
        replica = Replica(
            make_config(node, self.ids, **self.options),
            self.storages[node],
            random.Random(self.rng.getrandbits(32)),
            self.clock.now_ms(),
        )
        persist = None if self.threaded_persist else self._persister(node)
        driver = driver_class(replica, self.clock, self._sender(), persist=persist)
        self.drivers[node] = driver
        scope = self.runs[node] = trio.CancelScope()
        returned = self.returned[node] = trio.Event()

        async def run() -> None:
            with scope:
                await driver.run()
            returned.set()

        self.nursery.start_soon(run)
        return driver

    async def request(self, node: int, request: ClientRequest) -> ClientReply:
        """`request` to `node` the one way production takes (`Driver.submit`), awaited.
        Cancelled, the caller stops waiting; the request stays with the node."""
        answered = trio.Event()
        replies: list[ClientReply] = []

        def answer(reply: ClientReply) -> None:
            replies.append(reply)
            answered.set()

        self.drivers[node].submit(request, answer)
        await answered.wait()
        return replies[0]

    def _sender(self) -> Callable[[RaftMessage], None]:
        def send(message: RaftMessage) -> None:
            self.sent.append(message)
            if (message.src, message.dst) in self.cut:
                return
            self.nursery.start_soon(self._arrive, message)

        return send

    async def _arrive(self, message: RaftMessage) -> None:
        await trio.sleep(self.latency_s)
        driver = self.drivers.get(message.dst)
        if driver is not None and (message.src, message.dst) not in self.cut:
            driver.deliver([message])
            driver.inputs_done()  # as a connection does after each batch it read

    def _persister(self, node: int) -> Callable[[Work], object]:
        async def persist(work: Work) -> None:
            event = self.persisting.setdefault(node, trio.Event())
            event.set()
            self.persisting[node] = trio.Event()
            delay = self.persist_delay_s.get(node, 0.0)
            if delay:
                await trio.sleep(delay)
            self.drivers[node].replica.persist(work)

        return persist

    def isolate(self, node: int) -> None:
        for other in self.ids:
            if other != node:
                self.cut |= {(node, other), (other, node)}

    def heal(self) -> None:
        self.cut.clear()

    def leader(self) -> int:
        leaders = [
            (d.replica.core.term, i)
            for i, d in self.drivers.items()
            if d.replica.core.role == Role.LEADER and not d.stopping
        ]
        return max(leaders)[1] if leaders else 0

    async def start_all(self, driver_class: type[Driver] = Driver) -> int:
        """Start every node; the leader, once one is elected."""
        for node in self.ids:
            self.start(node, driver_class)
        return await self.wait_leader()

    async def wait_leader(self, limit_s: float = 10.0, other_than: int = 0) -> int:
        with trio.fail_after(limit_s):
            while True:
                leader = self.leader()
                if leader and leader != other_than:
                    return leader
                await trio.sleep(0.005)


@contextlib.asynccontextmanager
async def trio_cluster(n: int = 3, seed: int = 0, **options: object) -> AsyncIterator[TrioCluster]:
    async with trio.open_nursery() as nursery:
        cluster = TrioCluster(nursery, n, seed, **options)
        try:
            yield cluster
        finally:
            nursery.cancel_scope.cancel()


class TrioClient:
    """Runs a `ClientCore` against a `TrioCluster`'s drivers (requests to an isolated
    node are lost, like a network partition)."""

    def __init__(self, cluster: TrioCluster, config: ClientConfig, seed: int = 1) -> None:
        self.cluster = cluster
        self.core = ClientCore(config, random.Random(seed), cluster.clock.now_ms())
        self.cut: set[int] = set()
        self.done: dict[int, Completion] = {}
        self.attempts = 0
        self._changed = trio.Event()

    async def run(self) -> None:
        while True:
            core = self.core
            core.tick(self.cluster.clock.now_ms())
            self._pump()
            self._changed = trio.Event()  # what happens from now on wakes us
            due = core.next_deadline_ms()
            with trio.move_on_at(self.cluster.clock.trio_time(due) if due else float("inf")):
                await self._changed.wait()

    def _pump(self) -> None:
        for send in self.core.take_sends():
            self.attempts += 1
            if send.node not in self.cut:
                self.cluster.nursery.start_soon(self._attempt, send)
        for completion in self.core.take_completions():
            self.done[completion.handle] = completion
        self._changed.set()

    async def _attempt(self, send: Send) -> None:
        reply = await self.cluster.request(send.node, send.request)
        if send.node in self.cut:
            return  # the answer is lost on the way back
        self.core.receive(send.node, send.request_id, reply, self.cluster.clock.now_ms())
        self._pump()

    async def write(self, command: Message) -> Completion:
        handle = self.core.write(command, self.cluster.clock.now_ms())
        return await self._wait(handle)

    async def read(self, query: Message) -> Completion:
        handle = self.core.read(query, self.cluster.clock.now_ms())
        return await self._wait(handle)

    async def _wait(self, handle: int) -> Completion:
        self._pump()
        while handle not in self.done:
            await trio.sleep(0.001)
        return self.done.pop(handle)
