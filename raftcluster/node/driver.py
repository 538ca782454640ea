"""The trio loop around one `Replica`: timers, inputs, the Ready cycle, replies.

`Driver` knows nothing of sockets or files: it is given a clock, a function that sends
a raft message, and how to persist (by default `Replica.persist` in a worker thread,
`trio.to_thread.run_sync`). The node runtime
(`runtime.py`) plugs in the transport and the file storage; tests plug in an in-memory
network, `MemoryStorage` and trio's `MockClock`.

One task (`run`) owns the loop:

    loop:  tick the replica if its deadline has come
           if it has a Ready: prepare, persist (in a worker thread when there is
                                 anything to sync), complete, send, route replies
                                 (a leader's AppendEntries and Heartbeats go out
                                 before its persist: they promise nothing about it)
           else: sleep until the next deadline or until an input needs it

Inputs come from other tasks at any time, also while a persist runs in its thread:
`deliver` (raft messages from peers), `submit` (a client request answered through a
callback) and `request` (the same, awaited). They go straight into the replica, whose
next Ready takes everything that arrived meanwhile: while one fsync runs, the writes of
many clients gather for the next one (group commit). When the loop is asleep, the
task that brought the input starts the cycle itself (`_cycle_inline`): a cycle with
nothing to sync runs to its end there, one that must sync sends its leader messages
there and hands the persist to the loop, so no task switch stands between an input and
its effect. With `defer_inputs` that happens once per batch, in `inputs_done` (a node's
connections call it after each batch of frames they read, up to
`Limits.read_batch_frames`: the reads of one batch share a ReadIndex round).
Only one cycle is under way at a time (from prepare to complete), and only the loop
persists.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from raftcluster.node.clock import NodeClock
from raftcluster.node.protocol import (
    ChangeMembership,
    ClientReply,
    ClientRequest,
    RefuseCode,
    Refused,
    Submit,
    TransferLeadership,
)
from raftcluster.node.replica import Output, Replica, Reply, Work
from raftcluster.raft.messages import AppendEntries, Heartbeat, RaftMessage

# The replica's client key for every request that comes through this driver: request ids
# are the driver's own (unique per incarnation), so one key is enough.
_CLIENT = "rpc"
# Requests that may write: an unanswered one may still take effect.
_WRITES = (Submit, ChangeMembership, TransferLeadership)
# Messages that may leave before the persist of their own cycle (see `_cycle`).
_LEADER_MESSAGES = (AppendEntries, Heartbeat)


@attrs.define
class DriverStats:
    cycles: int = 0  # Ready cycles completed
    syncs: int = 0  # cycles that wrote and synced storage (each one fsync batch)
    entries_persisted: int = 0
    messages_sent: int = 0
    requests: int = 0


@attrs.define
class _Waiter:
    request: ClientRequest
    done: trio.Event = attrs.Factory(trio.Event)
    reply: ClientReply | None = None
    # `submit`: called with the reply instead of a waiting task being woken.
    on_reply: Callable[[ClientReply], None] | None = None


class Driver:
    def __init__(
        self,
        replica: Replica,
        clock: NodeClock,
        send: Callable[[RaftMessage], None],
        *,
        persist: Callable[[Work], Awaitable[None]] | None = None,
        on_output: Callable[[Output], None] | None = None,
    ) -> None:
        """`send` queues one raft message (it must not block or raise). `persist` makes a
        cycle's work durable; by default `replica.persist` in a worker thread (tests give
        their own, inline or delayed under trio's MockClock). `on_output` sees each
        completed cycle's output (applied events, conf changes)."""
        self.replica = replica
        self.clock = clock
        self.stats = DriverStats()
        self._send = send
        self._persist = persist if persist is not None else self._persist_in_thread
        self._on_output = on_output
        self._ids = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        self._input = trio.Event()
        self._stopping = False
        self._running = False
        # A cycle started in an input's task (`_cycle_inline`) that must sync: its
        # persist and the rest are the loop's. `_in_cycle`: a cycle is under way (from
        # prepare to complete), so no other may start.
        self._prepared: Work | None = None
        self._in_cycle = False
        self._sent_early: set[int] = set()  # ids of the messages the cycle sent early
        self._sleeping_to_ms: int | None = None  # the loop's wake-up time while it sleeps
        # With `defer_inputs`, `deliver` and `submit` leave acting on their input to
        # `inputs_done`, which the caller invokes after a batch of them (a connection
        # after each batch it read): the batch then shares one cycle and one ReadIndex.
        self.defer_inputs = False
        self._inputs_waiting = False

    @property
    def node_id(self) -> int:
        return self.replica.node_id

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def waiting(self) -> int:
        """Requests whose callers wait for an answer."""
        return len(self._waiters)

    # -- inputs (from any task) ------------------------------------------------------

    def deliver(self, messages: Sequence[RaftMessage]) -> None:
        """Hand raft messages from peers to the replica (each addressed to this node)."""
        if not messages or self._stopping:
            return
        self.replica.tick(self.clock.now_ms())  # so the replica hears them at the right time
        for message in messages:
            self.replica.receive(message)
        self._route(())
        self._input_arrived()

    async def request(self, request: ClientRequest) -> ClientReply:
        """Hand a client request to the replica and wait for its answer.

        Always returns a reply (never raises for a refusal): `Refused(UNAVAILABLE)` once
        the driver is stopping. Requests may come before `run` starts; they wait for it.

        Cancellation: the request stays with the replica, which may still carry it out
        (a write may be applied); its answer is dropped.
        """
        if self._stopping:
            return self._stopping_refusal()
        request_id = next(self._ids)
        waiter = _Waiter(request)
        try:
            self._hand_over(request_id, waiter)
            self._after_input()
            await waiter.done.wait()
            assert waiter.reply is not None
            return waiter.reply
        finally:
            self._waiters.pop(request_id, None)

    def submit(self, request: ClientRequest, on_reply: Callable[[ClientReply], None]) -> None:
        """`request` without a waiting task: `on_reply(reply)` is called exactly once, at
        once or later, from whichever task routes the reply (the same replies as
        `request` gives). Every request is answered: the replica by its request timeout,
        the driver when it stops. `on_reply` must not block or raise."""
        if self._stopping:
            on_reply(self._stopping_refusal())
            return
        self._hand_over(next(self._ids), _Waiter(request, on_reply=on_reply))
        self._input_arrived()

    def _hand_over(self, request_id: int, waiter: _Waiter) -> None:
        """Record `waiter` and give its request to the replica (answers it may have at
        once, a NotLeader say, are routed)."""
        self._waiters[request_id] = waiter
        self.stats.requests += 1
        self.replica.client_request(_CLIENT, request_id, waiter.request, self.clock.now_ms())
        self._route(())

    def _stopping_refusal(self) -> Refused:
        return Refused.of(RefuseCode.UNAVAILABLE, f"node {self.node_id} is stopping")

    def stop(self) -> None:
        """Ask `run` to return after the cycle in progress (if any) completes. New requests
        are refused from now on; requests still waiting are answered when `run` returns."""
        self._stopping = True
        self._input.set()

    # -- the loop ----------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the replica until `stop()`; `task_status.started()` once it takes requests.

        Returns after `stop()` once the cycle in progress has completed (its persist
        finished, its messages sent, its replies routed); requests still waiting are then
        answered `Refused` (TIMED_OUT for writes, which may still be applied elsewhere;
        UNAVAILABLE for the rest). Raises what `persist` raises (a storage failure ends
        the node: it must not go on after a failed fsync).

        Cancellation: a persist running in its worker thread cannot be interrupted, so a
        cancelled `run` first lets it finish (what it wrote is durable); the cycle is left
        uncompleted (nothing of it is applied, sent or answered) and waiting requests get
        no answer. Use `stop()` for a graceful end.
        """
        assert not self._running, "a Driver runs once"
        self._running = True
        task_status.started()
        try:
            while not self._stopping or self._prepared is not None:
                await self._step()
        finally:
            self._running = False
            self._stopping = True
            self._abandon_waiters()  # synchronous: safe even while being cancelled

    async def _step(self) -> None:
        self._input = trio.Event()  # inputs from now on wake the sleep below
        now = self.clock.now_ms()
        replica = self.replica
        if now >= replica.next_deadline_ms():
            replica.tick(now)
            self._route(())
        if self._prepared is not None or replica.has_ready():
            await self._cycle()
            return
        deadline_ms = max(replica.next_deadline_ms(), now + 1)
        self._sleeping_to_ms = deadline_ms
        try:
            with trio.move_on_at(self.clock.trio_time(deadline_ms)):
                await self._input.wait()
        finally:
            self._sleeping_to_ms = None

    async def _cycle(self) -> None:
        replica = self.replica
        work = self._prepared
        self._prepared = None
        self._in_cycle = True
        try:
            if work is None:
                work = replica.prepare()
                if work.must_sync:
                    self._send_early(work)
            if work.must_sync:
                await self._persist(work)
                self.stats.syncs += 1
                self.stats.entries_persisted += len(work.ready.entries)
            else:
                # Nothing to sync (at most a new commit index, buffered until the next
                # sync): no I/O to wait for.
                replica.persist(work)
            self._finish(work)
        finally:
            self._in_cycle = False
        # Let the other tasks in: inputs that queued up during this cycle join the next.
        await trio.lowlevel.checkpoint()

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
        """Run what the input made ready at once if the loop is idle (`_cycle_inline`),
        and wake the loop only if it has something to do: a persist handed over, more
        ready, or a deadline before the one it sleeps to. Waking it for every input cost
        a task switch each."""
        if not self._running or self._stopping:
            self._input.set()
            return
        if self._in_cycle:
            return  # the loop goes round when its cycle completes
        ran = self._cycle_inline()
        sleeping_to = self._sleeping_to_ms
        if self._in_cycle or sleeping_to is None:
            return  # a persist handed over (the loop is woken), or the loop is awake
        replica = self.replica
        # (Nothing was ready if no cycle ran: no need to ask again.)
        if (ran and replica.has_ready()) or replica.next_deadline_ms() < sleeping_to:
            self._input.set()

    def _cycle_inline(self) -> bool:
        """Start a cycle in the caller's task (a connection that just handed over input),
        when the loop is between cycles: one task switch fewer per input. A cycle with
        nothing to sync runs to the end here; one that must sync sends its leader
        messages here and leaves the persist and the rest to the loop. False when no
        cycle started (the loop is in one, or nothing is ready)."""
        if self._in_cycle or not self._running or self._stopping:
            return False
        replica = self.replica
        if not replica.has_ready():
            return False
        work = replica.prepare()
        self._in_cycle = True  # inputs that come from what it does wait for the next one
        if work.must_sync:
            self._send_early(work)
            self._prepared = work  # `_in_cycle` stays until the loop has completed it
            self._input.set()
            return True
        try:
            replica.persist(work)
            self._finish(work)
        finally:
            self._in_cycle = False
        return True

    def _send_early(self, work: Work) -> None:
        # A leader's AppendEntries and Heartbeats promise nothing about its own disk: it
        # counts its own copy of an entry towards commit only once persisted. So they go
        # out before the persist and the followers write while the leader does (Raft
        # dissertation 10.2.1, as etcd does). Every other message waits for the fsync.
        early = tuple(m for m in work.ready.messages if isinstance(m, _LEADER_MESSAGES))
        for message in early:
            self._send(message)
        self._sent_early = {id(m) for m in early}

    def _finish(self, work: Work) -> None:
        """Complete a persisted cycle: send, answer, report."""
        out = self.replica.complete(work)
        self.stats.cycles += 1
        sent, self._sent_early = self._sent_early, set()
        for message in out.messages:
            if id(message) not in sent:
                self._send(message)
        self.stats.messages_sent += len(out.messages)
        self._route(out.replies)
        if self._on_output is not None:
            self._on_output(out)

    async def _persist_in_thread(self, work: Work) -> None:
        # Not cancellable (see `run`): the thread's writes must not be half-known.
        await trio.to_thread.run_sync(self.replica.persist, work)

    # -- replies -----------------------------------------------------------------------

    def _route(self, replies: Sequence[Reply]) -> None:
        for reply in (*replies, *self.replica.take_replies()):
            waiter = self._waiters.get(reply.request_id)
            if waiter is None or waiter.done.is_set():
                continue  # its caller gave up (cancelled): nobody to tell
            self._answer(reply.request_id, waiter, reply.message)

    def _answer(self, request_id: int, waiter: _Waiter, reply: ClientReply) -> None:
        waiter.reply = reply
        waiter.done.set()
        if waiter.on_reply is not None:
            del self._waiters[request_id]  # a waiting task removes its own
            waiter.on_reply(reply)

    def _abandon_waiters(self) -> None:
        for request_id, waiter in list(self._waiters.items()):
            if waiter.done.is_set():
                continue
            if isinstance(waiter.request, _WRITES):
                code = RefuseCode.TIMED_OUT
                why = f"node {self.node_id} stopped before answering; the write may still apply"
            else:
                code = RefuseCode.UNAVAILABLE
                why = f"node {self.node_id} stopped before answering"
            self._answer(request_id, waiter, Refused.of(code, why))
