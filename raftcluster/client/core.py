"""The client core (sans-IO): sessions, retries, leader guess and the three outcomes.

Inputs (each returns at once; time comes in as `now_ms`):
    write(command, now_ms)                 a state machine command, applied at most once
    read(query, now_ms, stale=False)       a read-only query (linearizable by default)
    close(now_ms)                          end the session
    receive(node, request_id, reply, now)  a node answered one of our requests
    tick(now_ms)                           time passes: timeouts, retries, keepalives
Outputs:
    take_sends()        Send(node, request_id, request) to deliver to nodes
    take_completions()  Completion(handle, result | error) for each finished operation
    next_deadline_ms()  when `tick` next has work (None: nothing pending)
    new_deadline_ms()   the earliest deadline set since `next_deadline_ms` last ran

Writes go through a session (Raft dissertation 6.3): the client opens one (OpenSession),
then numbers each write (session, seq) and says with `ack` which replies it has, so the
state machine keeps each reply until acknowledged and answers a retry from it. A write
is retried with the *same* bytes on a timeout or a change of leader, possibly on another
node, so it is applied at most once. The session is kept alive with KeepAlive.

Each operation ends in exactly one completion:
- success: `result` is the state machine's result message;
- a definite rejection: `error` is the typed `Rejected` exception of the `Failure` result
  (`statemachine.results.to_exception`), or `Unavailable` when no attempt can have had an
  effect and the deadline passed;
- `OutcomeUnknown` when the deadline passed and an attempt may have been applied.

Assumption: the transport does not duplicate a request (the RPC channel does not), so a
node's definite refusal of an attempt (NotLeader, OVERLOADED...) means it had no effect.
"""

from __future__ import annotations

import collections
import enum
import random
from collections.abc import Iterable

import attrs

from raftcluster.errors import OutcomeUnknown, Unavailable
from raftcluster.node.protocol import (
    ClientReply,
    ClientRequest,
    Consistency,
    NotLeader,
    Query,
    QueryResult,
    RefuseCode,
    Refused,
    Submit,
    Written,
)
from statemachine.codec import Message, decode, encode, int_range, positive
from statemachine.errors import (
    BadRequest,
    ClusterError,
    Code,
    DecodeError,
    InvalidArgument,
    LimitExceeded,
)
from statemachine.results import Failure, to_exception
from statemachine.sessions.messages import (
    CloseSession,
    KeepAlive,
    OpenSession,
    SessionKept,
    SessionOpened,
    SessionRequest,
)

# Codes of a Failure that mean "the session did not admit this request".
_SESSION_LOST = (Code.UNKNOWN_SESSION, Code.REPLY_DISCARDED)
_ANSWERS = (Written, QueryResult)  # (a tuple: `A | B` builds a union at every call)


def _to_ids(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _node_ids(instance: object, attribute: object, value: tuple[int, ...]) -> None:
    if not value or len(set(value)) != len(value) or any(n <= 0 for n in value):
        raise InvalidArgument("ClientConfig.nodes", f"{value!r}: distinct positive node ids")


@attrs.frozen
class ClientConfig:
    """A client's settings. Times in milliseconds of the clock passed in."""

    nodes: tuple[int, ...] = attrs.field(converter=_to_ids, validator=_node_ids)
    # The session lives this long past its last keepalive (the state machine bounds it).
    session_ttl_ms: int = attrs.field(default=30_000, validator=positive)
    # One attempt on one node: past it, the client assumes the node or the network failed
    # and tries again (the same request) on another node.
    attempt_timeout_ms: int = attrs.field(default=1_000, validator=positive)
    # An operation's overall deadline unless the caller gives one.
    op_timeout_ms: int = attrs.field(default=10_000, validator=positive)
    # Pause before retrying when no leader is known or a node is busy.
    retry_backoff_ms: int = attrs.field(default=50, validator=positive)
    # Writes sent and not yet answered. Must stay under the state machine's kept replies
    # per session (128 by default), or a retry could find its reply evicted.
    max_inflight_writes: int = attrs.field(default=64, validator=int_range(1, 100))
    # Operations held at once (sent or queued); `write`/`read` refuse beyond it.
    max_ops: int = attrs.field(default=10_000, validator=positive)

    @property
    def keepalive_every_ms(self) -> int:
        return max(1, self.session_ttl_ms // 3)


@attrs.frozen
class Send:
    """Deliver `request` to `node`; its reply comes back with `request_id`."""

    node: int
    request_id: int
    request: ClientRequest


@attrs.frozen
class Completion:
    """The outcome of operation `handle`: `result` on success, else `error`."""

    handle: int
    result: Message | None = None
    error: ClusterError | None = None
    index: int = 0  # the log index a write was applied at, or a read's applied index

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Message:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class _Kind(enum.Enum):
    WRITE = "write"
    READ = "read"
    OPEN = "open"
    KEEPALIVE = "keepalive"
    CLOSE = "close"


@attrs.define
class _Op:
    handle: int
    kind: _Kind
    payload: Message  # the command (writes) or query (reads)
    deadline_ms: int
    visible: bool = True  # completions of internal operations are not handed out
    stale: bool = False
    request: ClientRequest | None = None  # fixed at the first send: retries resend it as is
    session: int = 0
    seq: int = 0
    request_id: int = 0  # the current attempt
    request_ids: list[int] = attrs.Factory(list)  # every attempt (a late answer still counts)
    node: int = 0
    attempt_deadline_ms: int = 0
    retry_at_ms: int | None = None  # waiting to resend
    maybe_applied: bool = False  # an earlier attempt ended without a definite answer


class ClientCore:
    def __init__(self, config: ClientConfig, rng: random.Random, now_ms: int = 0) -> None:
        self.config = config
        self._now_ms = now_ms
        self._next_handle = 1
        self._next_request_id = rng.randrange(1, 1 << 48)  # distinct across incarnations
        self._rotation = rng.randrange(len(config.nodes))
        self.leader = 0  # the node believed to lead (0: unknown)
        self._ops: dict[int, _Op] = {}
        self._attempts: dict[int, int] = {}  # request id -> handle
        self._queue: collections.deque[int] = collections.deque()  # writes waiting to be sent
        self._sends: list[Send] = []
        self._completions: list[Completion] = []
        self.session = 0
        self._opening = 0  # handle of the OpenSession in flight
        self._keepalive = 0  # handle of the KeepAlive in flight
        self._keepalive_due_ms = 0
        self._earliest_new_ms: int | None = None  # see `new_deadline_ms`
        self._next_seq = 1
        self._ack = 0
        self._answered: set[int] = set()  # sequences above `ack` that need no retry
        self._inflight_writes = 0

    # -- inputs -----------------------------------------------------------------------

    def write(self, command: Message, now_ms: int, timeout_ms: int | None = None) -> int:
        """Apply `command` at most once. Returns the handle its Completion will carry."""
        op = self._new_op(_Kind.WRITE, command, now_ms, timeout_ms)
        self._queue.append(op.handle)
        self._pump()
        return op.handle

    def read(
        self, query: Message, now_ms: int, *, stale: bool = False, timeout_ms: int | None = None
    ) -> int:
        """Answer a read-only `query` (linearizable unless `stale`)."""
        op = self._new_op(_Kind.READ, query, now_ms, timeout_ms)
        op.stale = stale
        consistency = Consistency.STALE if stale else Consistency.LINEARIZABLE
        op.request = Query(encode(query), consistency)
        self._send(op)
        return op.handle

    def close(self, now_ms: int) -> int | None:
        """End the session (its kept replies go). Returns the handle, or None without one."""
        if not self.session:
            return None
        op = self._new_op(_Kind.CLOSE, CloseSession(self.session), now_ms, None)
        op.request = Submit(encode(op.payload))
        self._drop_session()
        self._send(op)
        return op.handle

    def receive(self, node: int, request_id: int, reply: ClientReply, now_ms: int) -> None:
        """A node's answer to one of our requests (unknown or finished ones are ignored)."""
        self._now_ms = max(self._now_ms, now_ms)
        handle = self._attempts.get(request_id)
        if handle is None:
            return
        op = self._ops[handle]
        if isinstance(reply, _ANSWERS):
            if not op.stale:
                self.leader = node
            self._answered_by_node(op, reply)
        elif request_id != op.request_id:
            return  # a refusal of an attempt we already moved on from
        elif isinstance(reply, NotLeader):
            self._not_leader(op, node, reply.leader)
        elif isinstance(reply, Refused):
            self._refused(op, reply)
        else:
            error = DecodeError("<reply>", f"unexpected {type(reply).__name__} to {op.kind.value}")
            self._finish(op, error=self._unless_maybe_applied(op, error))
        self._pump()

    def tick(self, now_ms: int) -> None:
        """Time is `now_ms`: give up, retry and keep the session alive as due."""
        self._now_ms = now = max(self._now_ms, now_ms)
        for op in list(self._ops.values()):
            if now >= op.deadline_ms:
                self._give_up(op)
            elif op.retry_at_ms is not None and now >= op.retry_at_ms:
                self._send(op)
            elif op.request_id and now >= op.attempt_deadline_ms:
                self._attempt_timed_out(op)
        if self.session and not self._keepalive and now >= self._keepalive_due_ms:
            self._start_keepalive()
        self._pump()

    def take_sends(self) -> tuple[Send, ...]:
        out = tuple(self._sends)
        self._sends.clear()
        return out

    def take_completions(self) -> tuple[Completion, ...]:
        out = tuple(self._completions)
        self._completions.clear()
        return out

    def next_deadline_ms(self) -> int | None:
        """When `tick` next has work: O(operations), so the caller asks once per sleep."""
        self._earliest_new_ms = None
        times = []
        for op in self._ops.values():
            times.append(op.deadline_ms)
            if op.retry_at_ms is not None:
                times.append(op.retry_at_ms)
            elif op.request_id:
                times.append(op.attempt_deadline_ms)
        if self.session and not self._keepalive:
            times.append(self._keepalive_due_ms)
        return min(times) if times else None

    def new_deadline_ms(self) -> int | None:
        """The earliest deadline set since `next_deadline_ms` last ran (None: none). O(1):
        a caller sleeping towards `next_deadline_ms()`'s answer asks this after every input
        to learn whether it must wake sooner (deadlines that go away never make it so)."""
        return self._earliest_new_ms

    def _deadline(self, at_ms: int) -> int:
        if self._earliest_new_ms is None or at_ms < self._earliest_new_ms:
            self._earliest_new_ms = at_ms
        return at_ms

    @property
    def pending(self) -> int:
        """Operations not yet completed (internal ones included)."""
        return len(self._ops)

    # -- sending ----------------------------------------------------------------------

    def _new_op(self, kind: _Kind, payload: Message, now_ms: int, timeout_ms: int | None) -> _Op:
        self._now_ms = max(self._now_ms, now_ms)
        if len(self._ops) >= self.config.max_ops:
            raise LimitExceeded("client operations", self.config.max_ops, len(self._ops) + 1, "")
        timeout = timeout_ms if timeout_ms is not None else self.config.op_timeout_ms
        op = _Op(self._next_handle, kind, payload, self._deadline(self._now_ms + timeout))
        self._next_handle += 1
        self._ops[op.handle] = op
        return op

    def _pump(self) -> None:
        """Send queued writes when a session is open and the window has room."""
        if not self._queue:
            return
        if not self.session:
            if not self._opening:
                self._start_open()
            return
        while self._queue and self._inflight_writes < self.config.max_inflight_writes:
            op = self._ops[self._queue.popleft()]
            op.session, op.seq = self.session, self._next_seq
            self._next_seq += 1
            self._inflight_writes += 1
            envelope = SessionRequest(op.session, op.seq, self._ack, op.payload)
            op.request = Submit(encode(envelope))
            self._send(op)

    def _start_open(self) -> None:
        op = self._new_op(
            _Kind.OPEN, OpenSession(self._now_ms, self.config.session_ttl_ms), self._now_ms, None
        )
        op.visible = False
        op.request = Submit(encode(op.payload))
        self._opening = op.handle
        self._send(op)

    def _start_keepalive(self) -> None:
        op = self._new_op(
            _Kind.KEEPALIVE, KeepAlive(self.session, self._now_ms), self._now_ms, None
        )
        op.visible = False
        op.session = self.session
        op.request = Submit(encode(op.payload))
        op.deadline_ms = self._deadline(
            min(op.deadline_ms, self._now_ms + self.config.keepalive_every_ms)
        )
        self._keepalive = op.handle
        self._keepalive_due_ms = self._now_ms + self.config.keepalive_every_ms
        self._send(op)

    def _send(self, op: _Op) -> None:
        assert op.request is not None
        node = self.leader or self._rotate()
        request_id = self._next_request_id
        self._next_request_id += 1
        op.node, op.request_id = node, request_id
        op.request_ids.append(request_id)
        op.retry_at_ms = None
        op.attempt_deadline_ms = self._deadline(
            min(op.deadline_ms, self._now_ms + self.config.attempt_timeout_ms)
        )
        self._attempts[request_id] = op.handle
        self._sends.append(Send(node, request_id, op.request))

    def _rotate(self) -> int:
        nodes = self.config.nodes
        self._rotation = (self._rotation + 1) % len(nodes)
        return nodes[self._rotation]

    def _retry_later(self, op: _Op) -> None:
        op.request_id = 0
        op.retry_at_ms = self._deadline(
            min(op.deadline_ms, self._now_ms + self.config.retry_backoff_ms)
        )

    # -- answers ----------------------------------------------------------------------

    def _answered_by_node(self, op: _Op, reply: Written | QueryResult) -> None:
        try:
            result = decode(reply.result, Message)
        except DecodeError as e:  # the node sent junk: we cannot tell what happened
            self._finish(op, error=self._unless_maybe_applied(op, e, applied=True))
            return
        if isinstance(result, Failure):
            self._failed(op, result, reply.index)
            return
        if op.kind == _Kind.OPEN and isinstance(result, SessionOpened):
            self._session_opened(result.session)
        elif op.kind == _Kind.KEEPALIVE and isinstance(result, SessionKept):
            pass  # the next one is already scheduled
        self._finish(op, result=result, index=reply.index)

    def _failed(self, op: _Op, failure: Failure, index: int) -> None:
        """The state machine refused the command (the attempt's entry was applied)."""
        if failure.code in _SESSION_LOST and op.kind in (_Kind.WRITE, _Kind.KEEPALIVE):
            if op.session == self.session:
                self._drop_session()  # expired or closed: the next writes open a new one
            if op.kind == _Kind.WRITE and not op.maybe_applied:
                self._requeue(op)  # certainly never applied: safe in a new session
                return
            if op.kind == _Kind.WRITE:
                message = f"session {op.session} ended before the write was confirmed"
                self._finish(op, error=OutcomeUnknown(message))
                return
        self._finish(op, error=to_exception(failure), index=index)

    def _not_leader(self, op: _Op, node: int, hint: int) -> None:
        """The attempt was not taken; go where the node says, or anywhere after a pause."""
        if hint and hint != node:
            self.leader = hint
            self._send(op)
            return
        if self.leader == node:
            self.leader = 0
        self._retry_later(op)

    def _refused(self, op: _Op, reply: Refused) -> None:
        if reply.code == RefuseCode.BAD_REQUEST:
            if op.kind == _Kind.OPEN:  # no session for us (a read-only key): the writes
                for handle in list(self._queue):  # waiting for one were never sent
                    self._finish(self._ops[handle], error=BadRequest(reply.message))
            self._finish(op, error=BadRequest(reply.message))
            return
        if not reply.code.definite:
            op.maybe_applied = True
        if reply.code in (RefuseCode.TIMED_OUT, RefuseCode.UNAVAILABLE) and self.leader == op.node:
            self.leader = 0  # that node could not serve it: try another
        self._retry_later(op)

    def _attempt_timed_out(self, op: _Op) -> None:
        """No answer in time: the node, the network or the leader may have failed."""
        op.maybe_applied = True
        if self.leader == op.node:
            self.leader = 0
        self._send(op)

    def _give_up(self, op: _Op) -> None:
        """The deadline passed. Unknown only if some attempt may have been applied: one
        still unanswered, or one that ended without a definite answer."""
        in_doubt = op.kind != _Kind.READ and (bool(op.request_id) or op.maybe_applied)
        if in_doubt:
            what = f"{op.kind.value} not confirmed within its deadline; it may have been applied"
            self._finish(op, error=OutcomeUnknown(what))
        else:
            what = f"{op.kind.value} not served within its deadline; it had no effect"
            self._finish(op, error=Unavailable(what))

    def _unless_maybe_applied(
        self, op: _Op, error: ClusterError, applied: bool = False
    ) -> ClusterError:
        if op.kind == _Kind.READ or not (applied or op.maybe_applied):
            return error
        return OutcomeUnknown(f"{op.kind.value}: {error}")

    # -- sessions ---------------------------------------------------------------------

    def _session_opened(self, session: int) -> None:
        if self.session:
            return  # a retried OpenSession opened a second one: it will expire unused
        self.session = session
        self._next_seq, self._ack = 1, 0
        self._answered.clear()
        self._inflight_writes = 0
        self._keepalive_due_ms = self._deadline(self._now_ms + self.config.keepalive_every_ms)

    def _drop_session(self) -> None:
        self.session = 0
        self._inflight_writes = 0

    def _requeue(self, op: _Op) -> None:
        """Send `op` again in the next session (it was never applied in this one)."""
        for request_id in op.request_ids:
            self._attempts.pop(request_id, None)
        op.request, op.session, op.seq = None, 0, 0
        op.request_id, op.request_ids, op.retry_at_ms = 0, [], None
        self._queue.appendleft(op.handle)

    def _seq_done(self, op: _Op) -> None:
        """`op`'s sequence needs no retry any more: let `ack` move past it."""
        if op.kind != _Kind.WRITE or not op.seq or op.session != self.session:
            return
        self._inflight_writes -= 1
        self._answered.add(op.seq)
        while self._ack + 1 in self._answered:
            self._ack += 1
            self._answered.discard(self._ack)

    def _finish(
        self,
        op: _Op,
        *,
        result: Message | None = None,
        error: ClusterError | None = None,
        index: int = 0,
    ) -> None:
        del self._ops[op.handle]
        for request_id in op.request_ids:
            self._attempts.pop(request_id, None)
        if op.handle in self._queue:
            self._queue.remove(op.handle)
        self._seq_done(op)
        if op.handle == self._opening:
            self._opening = 0
        if op.handle == self._keepalive:
            self._keepalive = 0
            self._deadline(self._keepalive_due_ms)  # counts again (`next_deadline_ms`)
        if op.visible:
            self._completions.append(Completion(op.handle, result, error, index))
