"""The driver's default persist: a real `FileStorage` written in a worker thread started
by the task that starts the cycle, the cycle completed in trio's callback task.

One single-voter node on the real clock (it commits on its own fsync). What is checked:
a write costs no wake-up of the driver's loop; a failed fsync ends `run` with the
storage's error and answers the waiting write, never as written; a cancelled `run`
waits for the persist in its thread and leaves that cycle uncompleted.
"""

from __future__ import annotations

import errno
import random
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from raftcluster.node.clock import NodeClock
from raftcluster.node.driver import Driver
from raftcluster.node.protocol import ClientReply, RefuseCode, Refused, Submit, Written
from raftcluster.node.replica import Replica
from raftcluster.storage import FileStorage, StorageFailed, WalOptions
from raftcluster.storage.interface import Storage
from raftcluster.storage.simfs import SimDirectory, SimOp
from statemachine.codec import encode
from statemachine.sessions.messages import OpenSession
from tests.node.harness import make_config

WRITE = Submit(encode(OpenSession(0, 60_000)))
HEARTBEAT_MS = 50
# The leader's timers: heartbeats (FAST settings), and no commit notice timer (a single
# voter's commits would set one each).
CONFIG = make_config(1, (1,), heartbeat_interval_ms=HEARTBEAT_MS, commit_notice_delay_ms=0)


def submit(driver: Driver) -> tuple[trio.Event, list[ClientReply]]:
    """Submit WRITE; an event set on its answer, and the list the answer goes into."""
    answered = trio.Event()
    replies: list[ClientReply] = []

    def answer(reply: ClientReply) -> None:
        replies.append(reply)
        answered.set()

    driver.submit(WRITE, answer)
    return answered, replies


async def write(driver: Driver) -> ClientReply:
    answered, replies = submit(driver)
    with trio.fail_after(10):
        await answered.wait()
    return replies[0]


@asynccontextmanager
async def leader(storage: Storage) -> AsyncIterator[tuple[Driver, trio.Nursery]]:
    """A single-voter node's driver on `storage` (the default, threaded persist), running
    in the nursery it yields with, once it leads and has applied its first entry."""
    replica = Replica(CONFIG, storage, random.Random(1), 0)
    driver = Driver(replica, NodeClock(0), lambda message: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        with trio.fail_after(10):
            while replica.core.role.name != "LEADER" or not replica.applied_index:
                await trio.sleep(0.005)
        yield driver, nursery


async def test_writes_are_persisted_and_answered_without_waking_the_loop(tmp_path: Path) -> None:
    storage = FileStorage.open(tmp_path)
    try:
        async with leader(storage) as (driver, nursery):
            steps, syncs = driver.stats.loop_steps, driver.stats.syncs
            started_s = trio.current_time()
            replies = [await write(driver) for _ in range(50)]
            elapsed_ms = (trio.current_time() - started_s) * 1000
            assert all(isinstance(r, Written) for r in replies), replies
            assert driver.stats.syncs - syncs >= 50  # each write its own fsync
            # The loop wakes only for its timers (a heartbeat deadline every 50 ms, and
            # the session expiry the leader proposes now and then), however slow the
            # machine, and fewer times than there were writes; it took three steps per
            # write when it ran the persist itself.
            woken = driver.stats.loop_steps - steps
            assert woken <= elapsed_ms / HEARTBEAT_MS + 5 and woken < 50, (woken, elapsed_ms)
            driver.stop()
    finally:
        storage.close()
    reopened = FileStorage.open(tmp_path)  # every answered write is on the disk
    try:
        assert reopened.load().entries[-1].index >= max(r.index for r in replies)  # type: ignore[attr-defined]
    finally:
        reopened.close()


async def test_a_failed_fsync_ends_run_with_the_storage_error_and_answers_the_write() -> None:
    disk = SimDirectory()
    storage = FileStorage(disk, WalOptions())
    with pytest.raises(BaseExceptionGroup) as raised:
        async with leader(storage) as (driver, nursery):
            assert isinstance(await write(driver), Written)
            disk.fail_next_sync(errno.EIO)
            answered, replies = submit(driver)
            with trio.fail_after(10):
                await answered.wait()  # answered by `run` on its way out
            assert isinstance(replies[0], Refused), replies
            assert replies[0].code == RefuseCode.TIMED_OUT  # not written, maybe applied
            await trio.sleep_forever()  # `run` raises into this nursery
    failed, others = raised.value.split(StorageFailed)
    assert failed is not None and others is None, raised.value
    leaves = []
    pending: list[BaseException] = [failed]
    while pending:
        error = pending.pop()
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        else:
            leaves.append(error)
    assert len(leaves) == 1 and "Input/output error" in str(leaves[0]), leaves


async def test_a_cancelled_run_waits_for_the_persist_in_its_thread_and_completes_nothing() -> None:
    disk = SimDirectory()
    storage = FileStorage(disk, WalOptions())
    in_sync, release = threading.Event(), threading.Event()
    holding = False

    def observe(op: SimOp) -> None:  # in the persist's worker thread
        if holding and op.kind == "sync":
            in_sync.set()
            release.wait(10)

    disk.observer = observe
    async with leader(storage) as (driver, nursery):
        applied, syncs = driver.replica.applied_index, driver.stats.syncs
        holding = True
        answered, replies = submit(driver)
        await trio.to_thread.run_sync(in_sync.wait, 10)  # the fsync is under way
        nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            await trio.sleep(0.1)
            assert driver.replica.applied_index == applied
            assert not answered.is_set()  # `run` still waits for the thread
            holding = False
            release.set()
    assert driver.replica.applied_index == applied
    assert driver.stats.syncs == syncs  # the cycle was not completed (`persisted` not called)
    assert len(replies) == 1 and isinstance(replies[0], Refused), replies
    assert replies[0].code == RefuseCode.TIMED_OUT
    on_disk = FileStorage(disk.clone(), WalOptions()).load()
    assert on_disk.entries[-1].index == applied + 1  # but its write is on the disk
