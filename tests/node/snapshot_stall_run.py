"""A node taking snapshots of a large store, measured from its own event loop.

Run as ``python -m tests.node.snapshot_stall_run DIRECTORY`` by
tests/node/test_snapshot_stall.py, in a process of its own: the garbage collector's full
passes walk the whole heap of the process they run in, and a test runner's heap (every
test's leftovers) would weigh more than the node's. Prints one JSON object.

One real node (the trio `Driver`, its persists and its snapshot job in worker threads, a
`FileStorage` on DIRECTORY) whose kv store holds 100,000 keys takes a snapshot while
writers keep it busy. A trio instrument measures the CPU time of every task step of the
node's event loop: the time the loop could not do anything else.
"""

from __future__ import annotations

import gc
import json
import random
import sys
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
SNAPSHOT_EVERY = 300  # entries: a snapshot within a few hundred writes
WRITERS = 16


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


def large_state() -> ClusterState:
    """A state machine whose kv store holds `KEYS` keys of 100 bytes, built with the
    store's own primitives (applying 100,000 commands, or restoring their snapshot, takes
    far longer): the replica applies its log on top of it."""
    state = ClusterState()
    kv = state.part("kv")
    assert isinstance(kv, KvPart)
    store = kv.store
    revision = store.revision + 1
    for i in range(KEYS):
        store.put(b"key/%08d" % i, b"v" * 100, revision)
    store.commit(revision, 0)
    return state


async def request(driver: Driver, submit: Submit) -> ClientReply:
    answered = trio.Event()
    replies: list[ClientReply] = []

    def answer(reply: ClientReply) -> None:
        replies.append(reply)
        answered.set()

    driver.submit(submit, answer)
    await answered.wait()
    return replies[0]


async def measure(directory: Path) -> dict[str, object]:
    storage = FileStorage.open(directory)
    config = make_config(1, (1,), snapshot_every_entries=SNAPSHOT_EVERY)
    replica = Replica(config, storage, random.Random(1), 0, state=large_state())
    # What the store's construction left for the collector is not the snapshot's doing:
    # collect it, and leave the objects that exist now out of later collections (as a
    # node's heap after a while: the collector's thresholds grow with it).
    gc.collect()
    gc.freeze()
    driver = Driver(replica, NodeClock(0), lambda message: None)
    timer = StepTimer()
    written = 0
    done = trio.Event()

    async def write() -> None:
        nonlocal written
        while not done.is_set():
            reply = await request(driver, Submit(encode(OpenSession(0, 60_000))))
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
                # A snapshot of the whole store recorded: every step of the path ran (copy;
                # encode and write in the thread; record; compact).
                while replica.snapshot_index < SNAPSHOT_EVERY:
                    await trio.sleep(0.01)
                trio.lowlevel.remove_instrument(timer)
                done.set()
                driver.stop()
    finally:
        storage.close()
    return {
        "written": written,
        "snapshot_index": replica.snapshot_index,
        "first_index": replica.core.status().first_index,
        "longest_step_ms": timer.longest_s * 1000,
        "longest_task": timer.longest_task,
    }


if __name__ == "__main__":
    print(json.dumps(trio.run(measure, Path(sys.argv[1]))))
