"""The node's cycle policy as a sans-IO core: the same code in the trio node and the simulator.

`CycleCore` wraps one `Replica` and decides everything about a node's Ready cycles that
is not waiting: what goes out before the local fsync and what after, what is persisted,
which answers are released and when, and what is answered when the node stops. It never
awaits, sleeps, reads a clock or touches a file; its shells (the trio `Driver` in
`driver.py`, and the simulator in `chaos/sim/`) feed it inputs with the time and carry
out the `Actions` it returns, in order:

    actions.send       raft messages to send now
    actions.answers    replies to the requests they answer (`Answer.request_id`)
    actions.persist    a `Work` to make durable (`Replica.persist`, the one blocking call,
                       which a shell may run in a worker thread or after a simulated
                       fsync latency); then call `persisted(work)` and carry out its
                       actions. Until then no other cycle starts. When what the
                       persist held back (a follower's acknowledgement, a vote) has
                       committed entries to apply after it, `persisted` returns only
                       those messages, and the next `start()` applies and answers: the
                       peer's round trip does not wait for this node's state machine.
    actions.output     a completed cycle's output (applied events, conf changes), to observe
                       (`actions.completed` is that cycle's work, for checkers)
    actions.snapshot   a copy of the state to encode and write (`job.run()`,
                       snapshotting.py: the trio node in a worker thread, the simulator
                       at once); then `snapshot_written`

Inputs (each returns at once):
    deliver(messages, now_ms)     raft messages from peers; the replica is ticked to now
                                  first, so it hears them at the right time
    submit(request, now_ms)       a client request: its id, and any answer known at once
    tick(now_ms)                  timers
    peer_unreachable(peer, now_ms)
                                  every connection to a peer closed (its process is gone)
    start()                       begin a cycle if none is under way and one has work
    persisted(work)               the persist of `work` is durable: complete the cycle
    stop() / finish()             refuse new requests / answer every one still waiting

A shell calls `start()` whenever an input may have made work ready: after each input, or
once after a batch of them (the trio node after each batch of frames a connection read,
the simulator after everything that arrives at one instant), so a batch of reads shares
one ReadIndex round and a batch of writes one fsync.

The contract (asserted): one cycle at a time, from `start()` to `persisted()`; the work
passed to `persisted()` is the one `start()` handed out; every request submitted gets
exactly one answer (from the replica, or from `finish()`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

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
from raftcluster.node.snapshotting import SnapshotJob, WrittenSnapshot
from raftcluster.raft.messages import AppendEntries, Heartbeat, RaftMessage

# The replica's client key for every request that comes through a cycle core: request
# ids are the core's own (unique per incarnation), so one key is enough.
CLIENT = "rpc"
# Requests that may write: an unanswered one may still take effect.
_WRITES = (Submit, ChangeMembership, TransferLeadership)
# What may leave before its cycle's persist (see `may_send_before_persist`; a tuple, as
# `A | B` would build a union object at every call).
_EARLY = (AppendEntries, Heartbeat)


def may_send_before_persist(message: RaftMessage) -> bool:
    """Whether `message` may leave before the persist of its own cycle is durable.

    A leader's AppendEntries and Heartbeats promise nothing about its own disk: it counts
    its own copy of an entry towards commit only once persisted (`Ready` reports it). So
    they go out before the persist and the followers write while the leader does (Raft
    dissertation 10.2.1, as etcd does). Every other message (a vote, an acknowledgement,
    a reply) promises what the persist makes durable, and waits for it."""
    return isinstance(message, _EARLY)


@attrs.frozen
class Answer:
    """The reply to the request `request_id` (as `submit` numbered it)."""

    request_id: int
    reply: ClientReply


@attrs.frozen
class Actions:
    """What a shell does now, in field order (see the module docstring)."""

    send: tuple[RaftMessage, ...] = ()
    answers: tuple[Answer, ...] = ()
    persist: Work | None = None
    output: Output | None = None
    completed: Work | None = None  # the work of the cycle that completed (with `output`)
    # A snapshot job to run (snapshotting.py); give its result with `snapshot_written`.
    snapshot: SnapshotJob | None = None


NOTHING = Actions()


@attrs.define
class CycleStats:
    cycles: int = 0  # Ready cycles completed
    syncs: int = 0  # cycles whose persist synced storage (each one fsync batch)
    entries_persisted: int = 0
    messages_sent: int = 0
    requests: int = 0


class CycleCore:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.stats = CycleStats()
        self._ids = itertools.count(1)
        self._waiting: dict[int, ClientRequest] = {}  # request id -> request, until answered
        self._work: Work | None = None  # the cycle under way (waits for its persist)
        # Its persist is done and its messages are out; `start()` completes it.
        self._deferred = False
        self._sent_early: frozenset[int] = frozenset()  # ids of its messages sent already
        self._stopping = False

    @property
    def node_id(self) -> int:
        return self.replica.node_id

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def in_cycle(self) -> bool:
        """A cycle is under way: it waits for its persist, or, persisted, for the
        `start()` that completes it."""
        return self._work is not None

    @property
    def waiting(self) -> int:
        """Requests submitted and not answered yet."""
        return len(self._waiting)

    def next_deadline_ms(self) -> int:
        return self.replica.next_deadline_ms()

    def has_ready(self) -> bool:
        """Whether `start()` would begin a cycle, or complete a persisted one, now."""
        if self._deferred:
            return True  # (even once stopping: a cycle under way completes)
        return not self._stopping and self._work is None and self.replica.has_ready()

    # -- inputs ------------------------------------------------------------------------

    def deliver(self, messages: Sequence[RaftMessage], now_ms: int) -> Actions:
        """Raft messages from peers (each addressed to this node). Ignored once stopping."""
        if self._stopping or not messages:
            return NOTHING
        replica = self.replica
        replica.tick(now_ms)  # so that the replica hears them at the right time
        for message in messages:
            replica.receive(message)
        return self._answers(())

    def submit(self, request: ClientRequest, now_ms: int) -> tuple[int, Actions]:
        """A client request: the id its answer will carry, and what to do now (an answer
        may be known at once: NotLeader, say, or a refusal once stopping)."""
        request_id = next(self._ids)
        if self._stopping:
            reply = Refused.of(RefuseCode.UNAVAILABLE, f"node {self.node_id} is stopping")
            return request_id, Actions(answers=(Answer(request_id, reply),))
        self._waiting[request_id] = request
        self.stats.requests += 1
        self.replica.client_request(CLIENT, request_id, request, now_ms)
        return request_id, self._answers(())

    def peer_unreachable(self, peer: int, now_ms: int) -> Actions:
        """Every connection to node `peer` closed (the transport's link-down; the
        simulator's for a crashed peer): a follower whose leader that is campaigns soon
        (`RaftCore.peer_unreachable`). Ignored once stopping."""
        if self._stopping:
            return NOTHING
        self.replica.tick(now_ms)
        self.replica.peer_unreachable(peer)
        return self._answers(())

    def tick(self, now_ms: int) -> Actions:
        if self._stopping:
            return NOTHING
        self.replica.tick(now_ms)
        return self._answers(())

    # -- the cycle ---------------------------------------------------------------------

    def start(self) -> Actions | None:
        """Begin a cycle, if none is under way and the replica has work (None otherwise).

        With something to sync, the actions hold the persist, and the messages that may
        go before it; the rest comes from `persisted`. Without (at most a new commit
        index, buffered until the next sync: no I/O to wait for) the cycle completes here.
        """
        if self._deferred:
            return self._complete_deferred()
        if not self.has_ready():
            return None
        replica = self.replica
        work = replica.prepare()
        if not work.must_sync:
            replica.persist(work)  # buffers only
            return self._complete(work, frozenset())
        early = tuple(m for m in work.ready.messages if may_send_before_persist(m))
        self._work = work
        self._sent_early = frozenset(map(id, early))
        return Actions(send=early, persist=work)

    def persisted(self, work: Work) -> Actions:
        """`work` (from `start`) is durable: send what waited for it, apply, and answer.
        When the work has committed entries and messages that waited, those messages come
        back alone, and the next `start()` applies and answers (see the module docstring)."""
        assert work is self._work and not self._deferred, "persisted() takes start()'s work"
        self.stats.syncs += 1
        rd = work.ready
        self.stats.entries_persisted += len(rd.entries)
        sent = self._sent_early
        if rd.committed_entries:
            late = tuple(m for m in rd.messages if id(m) not in sent)
            if late:
                # They depended on the persist only: out now, the apply comes after.
                self._deferred = True
                self._sent_early = frozenset(map(id, rd.messages))
                return Actions(send=late)
        self._work = None
        self._sent_early = frozenset()
        return self._complete(work, sent)

    def _complete_deferred(self) -> Actions:
        work = self._work
        assert work is not None and self._deferred
        self._work, self._deferred = None, False
        sent, self._sent_early = self._sent_early, frozenset()
        return self._complete(work, sent)

    def _complete(self, work: Work, sent_early: frozenset[int]) -> Actions:
        out = self.replica.complete(work)
        self.stats.cycles += 1
        self.stats.messages_sent += len(out.messages)
        messages = out.messages
        if sent_early:
            messages = tuple(m for m in messages if id(m) not in sent_early)
        answers = self._answered(out.replies)
        job = self.replica.take_snapshot_job()
        return Actions(send=messages, answers=answers, output=out, completed=work, snapshot=job)

    def snapshot_written(self, job: SnapshotJob, written: WrittenSnapshot) -> None:
        """`job` (from `Actions.snapshot`) ran: the next cycle compacts there and records
        it, so `start()` has work. Ignored once stopping (not needed then)."""
        if not self._stopping:
            self.replica.snapshot_written(job, written)

    # -- stopping ----------------------------------------------------------------------

    def stop(self) -> None:
        """Refuse new requests and inputs from now on. A cycle under way still completes
        (`persisted`), and its answers are released."""
        self._stopping = True

    def finish(self) -> Actions:
        """The shell stops driving the replica: answer every request still waiting. A
        write gets TIMED_OUT (it may still be applied elsewhere: not definite), anything
        else UNAVAILABLE."""
        self._stopping = True
        answers = []
        for request_id, request in self._waiting.items():
            if isinstance(request, _WRITES):
                code = RefuseCode.TIMED_OUT
                why = f"node {self.node_id} stopped before answering; the write may still apply"
            else:
                code = RefuseCode.UNAVAILABLE
                why = f"node {self.node_id} stopped before answering"
            answers.append(Answer(request_id, Refused.of(code, why)))
        self._waiting.clear()
        return Actions(answers=tuple(answers))

    # -- answers -----------------------------------------------------------------------

    def _answers(self, replies: Sequence[Reply]) -> Actions:
        """`_answered`, as the actions of an input."""
        answers = self._answered(replies)
        return Actions(answers=answers) if answers else NOTHING  # (most inputs: NOTHING)

    def _answered(self, replies: Sequence[Reply]) -> tuple[Answer, ...]:
        """Answers for the replies of a cycle and those the replica holds now: one per
        waiting request (a reply to a request answered already is dropped)."""
        held = self.replica.take_replies()
        if not replies and not held:
            return ()
        answers = []
        waiting = self._waiting
        for reply in (*replies, *held):
            if waiting.pop(reply.request_id, None) is not None:
                answers.append(Answer(reply.request_id, reply.message))
        return tuple(answers)
