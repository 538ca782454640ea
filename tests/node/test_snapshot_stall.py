"""A large snapshot does not stall the node (raftcluster/node/snapshotting.py).

One real node (the trio `Driver`, its persists and its snapshot job in worker threads, a
`FileStorage` on a real directory) whose kv store holds 100,000 keys takes snapshots
while writers keep it busy. A trio instrument measures the CPU time of every task step
of the node's event loop (the time the loop cannot do anything else): taking the
snapshot on the loop, or a copy that allocates an object per key (which also set off
the garbage collector's walk over the whole heap, on the loop), showed as steps of
30-300 ms. CPU time, not wall time: the machine running the tests may be loaded, which
stretches wall time but not the work a step does. The file is written ahead, in the
snapshot thread: the persist that records it writes no snapshot file.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import trio

from raftcluster.node.clock import NodeClock
from raftcluster.node.driver import Driver
from raftcluster.node.protocol import ClientReply, Submit, Written
from raftcluster.node.replica import Replica
from raftcluster.storage import FileStorage
from statemachine.cluster import ClusterState
from statemachine.codec import encode
from statemachine.kv.part import KvPart
from statemachine.sessions.messages import OpenSession
from tests.node.harness import make_config

KEYS = 100_000
SNAPSHOT_EVERY = 300  # entries: two snapshots within a few hundred writes
WRITERS = 16
# The longest CPU time one task step of the loop may take: a copy of 100,000 keys by
# reference costs a few ms (10-15 on a loaded machine); one per key cost 30 ms and more,
# and set off a full collection of the heap: 100 ms and more.
MAX_STEP_CPU_S = 0.04


class StepTimer(trio.abc.Instrument):
    """The longest CPU time (of the loop's thread) any task step took."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        self.longest_task = ""
        self._started: float | None = None  # None: outside a step (or added inside one)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._started is None:
            return
        spent, self._started = time.thread_time() - self._started, None
        if spent > self.longest_s:
            self.longest_s, self.longest_task = spent, task.name


def _large_state() -> ClusterState:
    """A state machine whose kv store holds `KEYS` keys of 100 bytes, built with the
    store's own primitives (applying 100,000 commands, or restoring their snapshot, takes
    longer than this test may): the replica applies its log on top of it."""
    state = ClusterState()
    kv = state.part("kv")
    assert isinstance(kv, KvPart)
    store = kv.store
    revision = store.revision + 1
    for i in range(KEYS):
        store.put(b"key/%08d" % i, b"v" * 100, revision)
    store.commit(revision, 0)
    return state


async def _request(driver: Driver, request: Submit) -> ClientReply:
    answered = trio.Event()
    replies: list[ClientReply] = []

    def answer(reply: ClientReply) -> None:
        replies.append(reply)
        answered.set()

    driver.submit(request, answer)
    await answered.wait()
    return replies[0]


async def test_a_large_snapshot_is_taken_off_the_event_loop(tmp_path: Path) -> None:
    storage = FileStorage.open(tmp_path)
    config = make_config(1, (1,), snapshot_every_entries=SNAPSHOT_EVERY)
    replica = Replica(config, storage, random.Random(1), 0, state=_large_state())
    driver = Driver(replica, NodeClock(0), lambda message: None)
    timer = StepTimer()
    written = 0
    done = trio.Event()

    async def write() -> None:
        nonlocal written
        while not done.is_set():
            reply = await _request(driver, Submit(encode(OpenSession(0, 60_000))))
            if not done.is_set():  # (else answered by the stop)
                assert isinstance(reply, Written), reply
                written += 1

    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(driver.run)
                while replica.core.role.name != "LEADER":
                    await trio.sleep(0.01)
                trio.lowlevel.add_instrument(timer)
                for _ in range(WRITERS):
                    nursery.start_soon(write)
                # Two snapshots of the whole store recorded: every step of the path ran
                # twice (copy, encode and write in the thread, record, compact).
                while replica.snapshot_index < 2 * SNAPSHOT_EVERY:
                    await trio.sleep(0.01)
                trio.lowlevel.remove_instrument(timer)
                done.set()
                driver.stop()
    finally:
        storage.close()

    assert written >= 2 * SNAPSHOT_EVERY
    assert replica.core.status().first_index == replica.snapshot_index + 1  # compacted
    assert timer.longest_s < MAX_STEP_CPU_S, (
        f"a step of task {timer.longest_task} held the event loop for "
        f"{timer.longest_s * 1000:.0f} ms of CPU"
    )
    # The directory holds the recorded snapshot only (the staged file became it).
    reopened = FileStorage.open(tmp_path)
    try:
        durable = reopened.load()
    finally:
        reopened.close()
    assert durable.snapshot is not None
    assert durable.snapshot.meta.index == replica.snapshot_index
    assert [p.name for p in tmp_path.glob("snap-*")] == [
        f"snap-{replica.snapshot_index:020d}-{durable.snapshot.meta.term:020d}.snap"
    ]
