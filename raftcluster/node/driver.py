"""The trio shell around one `CycleCore`: the awaiting, the worker thread and the timers.

Every decision about a node's cycles (what is sent before the local fsync, what is
persisted, which answers are released and when, what is answered on stop) is the
`CycleCore`'s (`cycle.py`), which the simulator drives too. `Driver` only carries out its
`Actions`: it sends, calls the answer callbacks, persists in a worker thread (by
default), sleeps until the next deadline and wakes when an input needs it. It knows
nothing of sockets or files: it is given a clock, a function that sends a raft message,
and how to persist. The node runtime (`runtime.py`) plugs in the transport and the file
storage; tests plug in an in-memory network, `MemoryStorage` and trio's `MockClock`.

One task (`run`) owns the loop (and a nursery where a snapshot the core hands out,
`Actions.snapshot`, is encoded in a worker thread while cycles go on: snapshotting.py):

    loop:  tick the core if its deadline has come
           a persist handed over (a `persist` of the caller's)? await it, then `persisted`
           else if the core starts a cycle: carry out its actions (a persist among them
                                           starts at once: below)
           else: sleep until the next deadline or until an input needs it

Inputs come from other tasks at any time, also while a persist runs in its thread:
`deliver` (raft messages from peers) and `submit` (a client request answered through a
callback). They go straight into the core, whose next cycle takes everything that
arrived meanwhile: while one fsync runs, the writes of many clients gather for the next
one (group commit). When the loop is asleep, the task that brought the input starts the
cycle itself: a cycle with nothing to sync runs to its end there, one that must sync
sends its early messages there and starts its persist, so no task switch stands
between an input and its effect. With `defer_inputs` that happens once per batch, in
`inputs_done` (a node's connections call it after each batch of frames they read, up
to `Limits.read_batch_frames`: the reads of one batch share a ReadIndex round). An
input that moves the core's next deadline (earlier, or later: a timer it dropped) moves
the sleep's deadline there, without waking the loop.

The default persist (`Replica.persist`) runs in one of trio's cached worker threads,
started by whichever task started the cycle; when it returns, the cycle is completed
(`persisted`: apply, answer, send) in trio's own callback task (`TrioToken.run_sync_soon`),
which also starts the next cycle if inputs that came meanwhile made one ready; the loop
is woken only for a deadline that has come, or a stop. A write then costs the loop no
wake-up at all: the task that read the request starts the fsync, the callback task
completes it. What the persist or the completion raises goes to the loop, which raises
it (the node ends).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from raftcluster.node.clock import NodeClock
from raftcluster.node.cycle import NOTHING, Actions, CycleCore, CycleStats
from raftcluster.node.protocol import ClientReply, ClientRequest
from raftcluster.node.replica import Output, Replica, Work
from raftcluster.node.snapshotting import SnapshotJob
from raftcluster.raft.messages import RaftMessage

if TYPE_CHECKING:
    import outcome


def _yield_lock() -> None:
    """Between two slices of a snapshot's encoding (in its worker thread): release the
    interpreter lock, which wakes the event loop's thread if it waits for it. Without
    this, a thread that keeps the lock busy makes the loop wait up to the switch interval
    (5 ms) every time it takes the lock back after a system call (every send and
    receive): a round trip on the loop measured 10 ms at p99 during an encoding, and
    1.7 ms with this."""
    time.sleep(0)


@attrs.define
class DriverStats:
    """The core's counts, and how often the loop went round (woken or timed out)."""

    core: CycleStats
    loop_steps: int = 0

    @property
    def cycles(self) -> int:
        return self.core.cycles

    @property
    def syncs(self) -> int:
        return self.core.syncs

    @property
    def entries_persisted(self) -> int:
        return self.core.entries_persisted

    @property
    def messages_sent(self) -> int:
        return self.core.messages_sent

    @property
    def requests(self) -> int:
        return self.core.requests


class Driver:
    def __init__(
        self,
        replica: Replica,
        clock: NodeClock,
        send: Callable[[RaftMessage], None],
        *,
        persist: Callable[[Work], Awaitable[None]] | None = None,
        on_output: Callable[[Output], None] | None = None,
        hold_sends: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        """`send` queues one raft message (it must not block or raise). `persist` makes a
        cycle's work durable; by default `replica.persist` in a worker thread started by
        the task that starts the cycle (see the module docstring; tests give their own,
        inline or delayed under trio's MockClock, which the loop awaits). `on_output` sees each
        completed cycle's output (applied events, conf changes). The loop carries out
        each step's actions inside `hold_sends()` (a synchronous context: the node's is
        the transport's `corking.held`, so that what one step sends goes out together
        when it ends, without a task switch per frame)."""
        self.core = CycleCore(replica)
        self.replica = replica
        self.clock = clock
        self.stats = DriverStats(self.core.stats)
        self._send = send
        self._persist = persist
        self._on_output = on_output
        self._hold_sends = hold_sends
        self._callbacks: dict[int, Callable[[ClientReply], None]] = {}
        self._input = trio.Event()
        self._running = False
        # The work of the cycle under way, until its persist is done: with `persist`, the
        # loop's to await; by default, in its worker thread.
        self._to_persist: Work | None = None
        self._failure: BaseException | None = None  # from a threaded persist: `run` raises it
        self._thread_done: trio.Event | None = None  # set when the persist's thread returned
        self._abandoned = False  # `run` ended with a persist in its thread: do not complete it
        self._token: trio.lowlevel.TrioToken | None = None  # the run's (`run` sets it)
        self._sleeping_to_ms: int | None = None  # the loop's wake-up time while it sleeps
        self._sleep: trio.CancelScope | None = None  # its sleep's scope (deadline: that time)
        # With `defer_inputs`, `deliver` and `submit` leave starting a cycle to
        # `inputs_done`, which the caller invokes after a batch of them (a connection
        # after each batch it read): the batch then shares one cycle and one ReadIndex.
        self.defer_inputs = False
        self._inputs_waiting = False
        self._nursery: trio.Nursery | None = None  # runs the snapshot encodings (`run`)

    @property
    def node_id(self) -> int:
        return self.replica.node_id

    @property
    def stopping(self) -> bool:
        return self.core.stopping

    @property
    def waiting(self) -> int:
        """Requests whose callers wait for an answer."""
        return self.core.waiting

    # -- inputs (from any task) ------------------------------------------------------

    def deliver(self, messages: Sequence[RaftMessage]) -> None:
        """Hand raft messages from peers to the core (each addressed to this node)."""
        if not messages or self.core.stopping:
            return
        self._carry_out(self.core.deliver(messages, self.clock.now_ms()))
        self._input_arrived()

    def submit(self, request: ClientRequest, on_reply: Callable[[ClientReply], None]) -> None:
        """Hand a client request to the core: `on_reply(reply)` is called exactly once, at
        once or later, from whichever task carries the answer out. Every request is
        answered: by the replica (at the latest by its request timeout), or when the
        driver stops (`Refused`: UNAVAILABLE once stopping; TIMED_OUT for a write still
        waiting then, which may yet be applied). `on_reply` must not block or raise."""
        request_id, actions = self.core.submit(request, self.clock.now_ms())
        self._callbacks[request_id] = on_reply
        self._carry_out(actions)
        if not self.core.stopping:
            self._input_arrived()

    def peer_unreachable(self, peer: int) -> None:
        """Every connection to node `peer` closed (the transport's link-down hook): a
        follower whose leader that is campaigns soon (`RaftCore.peer_unreachable`). Must
        not block or raise; acted on at once (never deferred to `inputs_done`)."""
        if self.core.stopping:
            return
        self._carry_out(self.core.peer_unreachable(peer, self.clock.now_ms()))
        self._after_input()

    def stop(self) -> None:
        """Ask `run` to return after the cycle in progress (if any) completes. New requests
        are refused from now on; requests still waiting are answered when `run` returns."""
        self.core.stop()
        self._input.set()

    def inputs_done(self) -> None:
        """The end of a batch of inputs (with `defer_inputs`): act on what they made
        ready, once for the batch (a connection calls it after each batch of frames it read)."""
        if self._inputs_waiting:
            self._inputs_waiting = False
            self._after_input()

    def _input_arrived(self) -> None:
        if self.defer_inputs:
            self._inputs_waiting = True  # `inputs_done` follows
        else:
            self._after_input()

    def _after_input(self) -> None:
        """Start what the input made ready at once if the loop is idle, and wake the loop
        only if it has something to do: a persist handed over, more ready, or a deadline
        before the one it sleeps to. Waking it for every input cost a task switch each."""
        if not self._running or self.core.stopping:
            self._input.set()
            return
        ran = self._start_cycle()
        if self._persist is not None and self._to_persist is not None:
            return  # a persist handed over: the loop is woken
        # (Nothing was ready if no cycle ran: no need to ask again.)
        self._wake_if_needed(ran)

    def _wake_if_needed(self, ready: bool) -> None:
        """Wake the sleeping loop if the core may have a cycle to start (`ready`, when
        nothing in progress says otherwise) or a deadline that has come; for a deadline
        still to come, move its sleep's deadline there instead, earlier or later (a task
        switch costs more than moving it). Later too: a leader's commit notice falls due
        a few ms after each commit, and the next write's appends usually tell the commit
        index first, dropping it; a sleep left at the dropped notice's time woke the loop
        for nothing once per sequential write."""
        sleeping_to, sleep = self._sleeping_to_ms, self._sleep
        if sleeping_to is None or sleep is None:
            return  # the loop is awake: its next step sees what is ready
        core = self.core
        if ready and core.has_ready():
            self._input.set()
            return
        due_ms = core.next_deadline_ms()
        if due_ms != sleeping_to:
            if due_ms <= self.clock.now_ms():
                self._input.set()
            else:
                self._sleeping_to_ms = due_ms
                sleep.deadline = self.clock.trio_time(due_ms)

    def _start_cycle(self) -> bool:
        """Start a cycle in the caller's task, if the core has one to start; a persist it
        needs starts in its worker thread (by default) or is handed to the loop. False
        when none started."""
        if self._to_persist is not None:
            return False
        actions = self.core.start()
        if actions is None:
            return False
        self._carry_out(actions)
        work = actions.persist
        if work is not None:
            self._to_persist = work
            if self._persist is None:
                self._start_persist_thread(work)
            else:
                self._input.set()
        return True

    def _start_persist_thread(self, work: Work) -> None:
        """`replica.persist(work)` in one of trio's cached worker threads (no capacity
        limiter, context copy or checkpoints of `trio.to_thread`: this runs once per
        fsync); `_persisted_in_thread` follows in trio's callback task."""
        token = self._token
        assert token is not None, "cycles start only while `run` runs"
        done = self._thread_done = trio.Event()

        def deliver(result: outcome.Outcome[None]) -> None:  # in the worker thread
            token.run_sync_soon(self._persisted_in_thread, work, result, done)

        trio.lowlevel.start_thread_soon(functools.partial(self.replica.persist, work), deliver)

    def _persisted_in_thread(
        self, work: Work, result: outcome.Outcome[None], done: trio.Event
    ) -> None:
        """The persist of `work` returned (in trio's callback task): complete its cycle,
        unless it failed or `run` has ended meanwhile, and start the next if one is ready.
        Never raises (trio's callback task must not): a failure goes to the loop."""
        done.set()
        if self._abandoned:
            return  # `run` was cancelled: the cycle stays uncompleted, as documented there
        try:
            result.unwrap()  # what the storage raised
            self._to_persist = None
            with self._hold_sends():
                self._carry_out(self.core.persisted(work))
        except BaseException as e:  # noqa: BLE001 - handed to the loop, which raises it
            self._failure = e
            self._input.set()
            return
        # What came meanwhile starts the next cycle here (as after an input); once
        # stopping, the loop is woken to return.
        self._after_input()

    # -- the loop ----------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the core until `stop()`; `task_status.started()` once it takes requests.

        Returns after `stop()` once the cycle in progress has completed (its persist
        finished, its messages sent, its answers given); requests still waiting are then
        answered `Refused` (`CycleCore.finish`). Raises what `persist` raises (a storage
        failure ends the node: it must not go on after a failed fsync).

        Cancellation: a persist running in its worker thread cannot be interrupted, so a
        cancelled `run` first lets it finish (what it wrote is durable); the cycle is left
        uncompleted (nothing of it is applied or sent). Requests still waiting are
        answered as on a stop, so no caller waits forever.
        """
        assert not self._running, "a Driver runs once"
        self._token = trio.lowlevel.current_trio_token()
        self._running = True
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                while not self.core.stopping or self.core.in_cycle:
                    await self._step()
                self._raise_failure()
                nursery.cancel_scope.cancel()  # an encoding under way is not needed now
        finally:
            self._nursery = None
            self._running = False
            done = self._thread_done
            if done is not None and not done.is_set():
                # A persist still in its thread (cancelled): what it writes must be known
                # before `run` returns; its cycle is not completed.
                self._abandoned = True
                with trio.CancelScope(shield=True):
                    await done.wait()
            self._carry_out(self.core.finish())  # synchronous: safe even while cancelled

    def _raise_failure(self) -> None:
        """Raise what a threaded persist, or the completion of its cycle, raised."""
        failure = self._failure
        if failure is not None:
            raise failure

    async def _step(self) -> None:
        self.stats.loop_steps += 1
        self._raise_failure()
        self._input = trio.Event()  # inputs from now on wake the sleep below
        core = self.core
        now = self.clock.now_ms()
        due_ms = core.next_deadline_ms()
        ticked = now >= due_ms  # then `due_ms` is stale: the tick may have moved it
        with self._hold_sends():
            if ticked:
                self._carry_out(core.tick(now))
            # A persist of the caller's, handed over, is this step's (a threaded one is
            # under way in its thread: nothing to start meanwhile).
            persist = self._persist
            work = self._to_persist if persist is not None else None
            # (A cycle that did not start changed nothing: `due_ms` still holds.)
            started = self._to_persist is None and self._start_cycle()
        if persist is not None and work is not None:
            # Not cancellable (see `run`): the persist's writes must not be half-known.
            await persist(work)
            self._to_persist = None
            with self._hold_sends():
                self._carry_out(core.persisted(work))
        elif not started:
            deadline_ms = max(core.next_deadline_ms() if ticked else due_ms, now + 1)
            self._sleeping_to_ms = deadline_ms
            try:
                with trio.move_on_at(self.clock.trio_time(deadline_ms)) as self._sleep:
                    await self._input.wait()
            finally:
                self._sleeping_to_ms = self._sleep = None
            return
        # Let the other tasks in: inputs that queued up during this cycle join the next.
        await trio.lowlevel.checkpoint()

    async def _run_snapshot(self, job: SnapshotJob) -> None:
        """Run `job` in a worker thread: encode (a slice of keys per encoder call, so this
        loop runs in between) and write the snapshot's file, while persists go on; then
        let a cycle compact there and record it. Raises what the storage raises (the node
        stops, as after a failed persist). Cancellation (the driver stops) abandons the
        thread: it reads only its copy of the state, and a file it still writes is one
        nothing refers to (closing the storage waits for it; the next start deletes it)."""
        written = await trio.to_thread.run_sync(job.run, _yield_lock, abandon_on_cancel=True)
        self.core.snapshot_written(job, written)
        self._after_input()

    # -- carrying out ------------------------------------------------------------------

    def _carry_out(self, actions: Actions) -> None:
        """Send, answer and observe (a persist in `actions` is the caller's to hand on)."""
        if actions is NOTHING:
            return  # (most inputs)
        for message in actions.send:
            self._send(message)
        for answer in actions.answers:
            self._callbacks.pop(answer.request_id)(answer.reply)
        if actions.output is not None and self._on_output is not None:
            self._on_output(actions.output)
        if actions.snapshot is not None:
            assert self._nursery is not None, "cycles complete only while `run` runs"
            self._nursery.start_soon(self._run_snapshot, actions.snapshot)
