"""One authenticated connection: a writer, a reader, and the RPCs in flight on it.

A connection outlives nothing: when either direction fails (the peer closed, a frame
did not verify, nothing arrived for the idle timeout, the peer stopped reading),
`run()` records why in `failure`, cancels the rest and returns; callers waiting on
it get `ConnectionLost`. Reconnecting and choosing links is the owner's business
(`transport.Transport` for nodes, `client.connect_rpc` for clients).
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import math
import os
from collections import deque
from collections.abc import Awaitable, Callable

import attrs
import trio

from raftcluster.transport import corking
from raftcluster.transport.config import Limits
from raftcluster.transport.errors import (
    ConnectionLost,
    IdleTimeout,
    PeerUnreachable,
    ProtocolError,
    RemoteError,
    RpcErrorCode,
    RpcFailed,
    RpcTimeout,
    TransportError,
    TruncatedFrame,
)
from raftcluster.transport.faults import Verdict
from raftcluster.transport.framing import FrameParser, FrameSealer
from raftcluster.transport.handshake import Session
from raftcluster.transport.wire import (
    MAX_REASON_CHARS,
    Frame,
    Keepalive,
    PeerKind,
    RaftFrame,
    RpcFailure,
    RpcRequest,
    RpcResponse,
    decode_strict,
)
from statemachine.codec import Message, encode
from statemachine.errors import ClusterError, DecodeError, LimitExceeded

log = logging.getLogger("raftcluster.transport")

_RECEIVE_CHUNK_MIN = 64 * 1024
_RECEIVE_CHUNK_MAX = 1024 * 1024
_KEEPALIVE_BODY = encode(Keepalive())
_IDLE_SLACK = 1 / 16  # of the idle timeout: how much later than it a silent peer may be cut
_DELIVER_NOW = Verdict(True)


@attrs.frozen
class Caller:
    """Who sent an RPC request: a peer node or a client, with its id; for a client, the
    credential it proved ("" the client secret, else a client key's name) and whether
    that credential may only read."""

    kind: PeerKind
    id: int
    credential: str = ""
    read_only: bool = False


RpcHandler = Callable[[Caller, Message], Awaitable[Message]]
# Takes a request without a task of its own: `submit(caller, request, respond)` returns
# False to leave it to the RpcHandler, or True and later calls `respond(response)` once.
RpcSubmit = Callable[[Caller, Message, Callable[[Message], None]], bool]


@attrs.define
class LinkCounters:
    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    connections_opened: int = 0
    dial_failures: int = 0
    last_error: str = ""


@attrs.frozen
class Queued:
    """A frame body waiting for its link. `not_before` is a trio time (fault-layer delay)."""

    not_before: float
    body: bytes
    flow: int


class QueueBudget:
    """The per-peer bound on queued raft messages, shared by the peer's links."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.frames = 0
        self.bytes = 0

    def take(self, size_bytes: int) -> bool:
        if self.frames >= self.max_frames or self.bytes + size_bytes > self.max_bytes:
            return False
        self.frames += 1
        self.bytes += size_bytes
        return True

    def release(self, size_bytes: int) -> None:
        self.frames -= 1
        self.bytes -= size_bytes
        assert self.frames >= 0 and self.bytes >= 0, (self.frames, self.bytes)


class Outbox:
    """What a connection's writer sends: control frames (RPC) first, then raft messages.

    `on_put`, when set, is called instead of waking the writer when an item is put (the
    connection decides: wake it, or write the item itself: `Connection.flush`)."""

    def __init__(self, budget: QueueBudget | None) -> None:
        self.control: deque[Queued] = deque()
        self.raft: deque[Queued] = deque()
        self._budget = budget
        self._wake = trio.Event()
        self.on_put: Callable[[], None] | None = None

    def _put(self) -> None:
        if self.on_put is not None:
            self.on_put()
        else:
            self._wake.set()

    def wake(self) -> None:
        """Wake the writer (its timers changed)."""
        self._wake.set()

    def put_control(self, item: Queued) -> None:
        self.control.append(item)
        self._put()

    def put_raft(self, item: Queued) -> None:
        """The caller has already taken `len(item.body)` from the budget."""
        assert self._budget is not None, "raft frames only travel between nodes"
        self.raft.append(item)
        self._put()

    def drain_raft(self) -> list[Queued]:
        """Remove every queued raft item (still counted in the budget) for re-routing."""
        items = list(self.raft)
        self.raft.clear()
        return items

    def take_ready(self, now: float, max_bytes: int) -> tuple[list[bytes], float | None]:
        """Bodies due by `now` (up to about `max_bytes`), and when the next one falls due."""
        bodies: list[bytes] = []
        size = 0
        next_due: float | None = None
        for queue, budgeted in ((self.control, False), (self.raft, True)):
            while queue and size < max_bytes:
                head = queue[0]
                if head.not_before > now:
                    next_due = (
                        head.not_before if next_due is None else min(next_due, head.not_before)
                    )
                    break
                queue.popleft()
                if budgeted:
                    assert self._budget is not None
                    self._budget.release(len(head.body))
                bodies.append(head.body)
                size += len(head.body)
        return bodies, next_due

    async def wait(self) -> None:
        """Until something is put (the caller's cancel scope bounds the wait).

        Cancellation leaves the queues untouched.
        """
        try:
            await self._wake.wait()
        finally:
            self._wake = trio.Event()


Outcome = Callable[[Message | RpcFailed], None]


class _PendingCall:
    """A call awaiting its answer: a task waits on `done`, or `on_outcome` is called."""

    __slots__ = ("done", "outcome", "on_outcome")

    def __init__(self, on_outcome: Outcome | None = None) -> None:
        self.done = trio.Event()
        self.outcome: Message | RpcFailed | None = None
        self.on_outcome = on_outcome

    def resolve(self, outcome: Message | RpcFailed) -> None:
        if self.done.is_set():
            return
        self.outcome = outcome
        self.done.set()
        if self.on_outcome is not None:
            self.on_outcome(outcome)


class Connection:
    """An authenticated stream with its outbox, reader, writer and RPC bookkeeping."""

    def __init__(
        self,
        *,
        stream: trio.abc.Stream,
        parser: FrameParser,
        sealer: FrameSealer,
        session: Session,
        label: str,
        limits: Limits,
        counters: LinkCounters,
        call_ids: itertools.count[int],
        handler: Callable[[], RpcHandler | None],
        on_raft: Callable[[Connection, RaftFrame], None] | None,
        budget: QueueBudget | None,
        faults: Callable[[], Verdict] | None = None,
        on_closed: Callable[[Connection], None] | None = None,
        submit: Callable[[], RpcSubmit | None] = lambda: None,
        after_reading: Callable[[], Callable[[], None] | None] = lambda: None,
        client_requests: Callable[[], Callable[[Message], bool] | None] = lambda: None,
    ) -> None:
        self.session = session
        self.label = label
        self.outbox = Outbox(budget)
        self.counters = counters
        self.failure: BaseException | None = None
        # The peer closed or reset the connection (end of stream, a reset, a broken pipe),
        # as a crashed process's kernel does at once; not our close, an idle timeout or a
        # frame we refused. Set before `on_closed` runs.
        self.closed_by_peer = False
        self.open = True
        self._stream = stream
        self._parser = parser
        self._sealer = sealer
        self._limits = limits
        self._call_ids = call_ids
        self._handler = handler
        self._on_raft = on_raft
        self._faults = faults
        self._on_closed = on_closed
        self._submit = submit
        self._after_reading = after_reading
        self._client_requests = client_requests
        # A client's connection (we accepted it) carries its requests and keepalives only.
        self._from_client = session.peer_kind is PeerKind.CLIENT
        self._calls: dict[int, _PendingCall] = {}
        # Deadlines of the calls made with `send_call` (trio time, call id), earliest first;
        # the writer's timer expires them (tasks in `call` keep their own).
        self._expiry: list[tuple[float, int]] = []
        self._serving = 0
        key = session.client_key
        self._caller = (
            Caller(session.peer_kind, session.peer_id)
            if key is None
            else Caller(session.peer_kind, session.peer_id, key.name, key.read_only)
        )
        self._scope = trio.CancelScope()
        # `trio.current_time`; in `run`, the run's clock's own reading: one call instead
        # of three (several per frame).
        self._now: Callable[[], float] = trio.current_time
        self._last_write = 0.0  # trio time of the last write (set when the writer starts)
        # Frames written without the writer task (`flush`): on a plain TCP stream, while
        # the writer waits with nothing to send. `_unsent` is what such a write left over
        # (the socket's buffer was full): the writer sends it before anything else. The
        # reader reads that socket directly too (`_receive`).
        self._fd = stream.socket.fileno() if type(stream) is trio.SocketStream else -1
        self._read_filled = False  # the last read of `_fd` filled its buffer (`_receive`)
        self._writer_idle = False
        self._unsent = b""
        self._writer_deadline = -math.inf  # while the writer waits: when its timer fires
        self.outbox.on_put = self._queued
        # Replies queued but unsent beyond this mean the peer sends requests without
        # reading our replies: the connection is closed rather than buffering without end.
        self._max_control = limits.max_pending_calls + 2 * limits.max_concurrent_requests + 16

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it fails or `close()` is called.

        Returns normally; the reason is in `failure` (None for a clean close). When it
        returns the stream is closed, handlers started by the peer's requests are
        cancelled, pending calls have failed with ConnectionLost, and `on_closed` has
        run (synchronously, as soon as the connection stopped being open, so the owner
        can re-route its queued raft frames before anyone queues more elsewhere).
        Cancellation leaves the same.
        """
        self._now = trio.lowlevel.current_clock().current_time
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._write_loop, nursery.cancel_scope)
                    nursery.start_soon(self._read_loop, nursery.cancel_scope)
        finally:
            self._mark_closed()
            calls, self._calls = self._calls, {}
            self._expiry.clear()
            for pending in calls.values():
                pending.resolve(ConnectionLost(f"connection to {self.label} closed"))
            await trio.aclose_forcefully(self._stream)

    def close(self) -> None:
        self._mark_closed()
        self._scope.cancel()

    def _mark_closed(self) -> None:
        if self.open:
            self.open = False
            if self._on_closed is not None:
                self._on_closed(self)

    def _fail(self, error: BaseException, scope: trio.CancelScope) -> None:
        if self.failure is None:
            self.failure = error
        scope.cancel()

    # -- writing -----------------------------------------------------------------------

    async def _write_loop(self, scope: trio.CancelScope) -> None:
        self._last_write = self._now()
        try:
            while await self._write_until_timer():
                pass  # the keepalive or a delayed frame fell due: go round again
        except trio.TooSlowError:
            self._fail(TransportError(f"{self.label} does not read (write timeout)"), scope)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            self.closed_by_peer |= not isinstance(e, trio.ClosedResourceError)
            self._fail(e, scope)

    async def _write_until_timer(self) -> bool:
        """Send what the outbox holds, as it comes, until a timer fires: True for the
        keepalive or delay timer (call again), TooSlowError for the write timeout.

        One cancel scope serves every write and wait until a timer fires, its deadline
        moved between the two: a scope per frame batch cost several times more (the
        read loop does the same with its idle scope)."""
        keepalive_s = self._limits.keepalive_interval_ms / 1000
        write_timeout_s = self._limits.write_timeout_ms / 1000
        writing = False
        with trio.CancelScope() as timer:
            while not timer.cancel_called:
                # (A timer that fell due while an item woke the wait below cancels the
                # next checkpoint even with its deadline moved on: go round with a new
                # scope rather than let the next write fail as a write timeout.)
                now = self._now()
                bodies, next_due = self.outbox.take_ready(now, self._limits.write_batch_bytes)
                # One expression for "keepalive due", used for both the test and the wait:
                # comparing `now - last` with an interval here and sleeping until
                # `last + interval` there can disagree by a rounding error and spin.
                keepalive_due = self._last_write + keepalive_s
                if not bodies and now >= keepalive_due:
                    bodies = [_KEEPALIVE_BODY]
                if bodies or self._unsent:
                    timer.deadline, writing = now + write_timeout_s, True
                    await self._write(bodies)
                    writing = False
                    self._last_write = self._now()
                    continue
                wake = keepalive_due if next_due is None else min(keepalive_due, next_due)
                expiry = self._live_expiry()
                timer.deadline = min(wake, expiry[0][0]) if expiry else wake
                self._writer_idle = self._fd >= 0 and not self._unsent and next_due is None
                self._writer_deadline = timer.deadline
                try:
                    await self.outbox.wait()
                finally:
                    self._writer_idle = False
                    self._writer_deadline = -math.inf
        if writing:
            raise trio.TooSlowError
        self._expire_calls()
        return True

    def _live_expiry(self) -> list[tuple[float, int]]:
        """The deadline heap, without the answered calls at its head; rebuilt when those
        elsewhere in it outnumber the live ones (it stays within twice their number)."""
        expiry, calls = self._expiry, self._calls
        while expiry and expiry[0][1] not in calls:
            heapq.heappop(expiry)
        if len(expiry) > 2 * len(calls) + 64:
            expiry[:] = [item for item in expiry if item[1] in calls]
            heapq.heapify(expiry)
        return expiry

    def _expire_calls(self) -> None:
        now = self._now()
        while self._expiry and self._expiry[0][0] <= now:
            _, call_id = heapq.heappop(self._expiry)
            pending = self._calls.pop(call_id, None)
            if pending is not None:
                pending.resolve(RpcTimeout(f"no answer from {self.label} in time"))

    async def _write(self, bodies: list[bytes]) -> None:
        data = b"".join([self._unsent, *[self._sealer.seal(body) for body in bodies]])
        self._unsent = b""
        await self._stream.send_all(data)
        self.counters.bytes_out += len(data)
        self.counters.frames_out += len(bodies)

    def _queued(self) -> None:
        """An item was put in the outbox. With the writer idle on a plain TCP stream it
        is written by `flush`: when the hold open now closes (corking.py: a batch of
        inputs, a cycle), or at once when no hold is open and at most one call waits on
        this connection (a request sent after the answer to the last: nothing to gather
        it with). Otherwise the writer is woken, and gathers what is queued meanwhile."""
        if self._writer_idle:
            if corking.defer(self):
                return
            if len(self._calls) <= 1:
                self.flush()
                return
        self.outbox.wake()

    def flush(self) -> None:
        """Write what the outbox holds now, if the writer is idle: one non-blocking send
        of the sealed frames from this task; what the socket does not take, the writer
        sends (with its write timeout), before anything queued later. An error is left
        to the writer too (its send fails the same way and ends the connection). Never
        blocks or raises."""
        if not self._writer_idle or not self.open:
            self.outbox.wake()
            return
        now = self._now()
        bodies, next_due = self.outbox.take_ready(now, self._limits.write_batch_bytes)
        if bodies:
            seal = self._sealer.seal
            data = seal(bodies[0]) if len(bodies) == 1 else b"".join([seal(b) for b in bodies])
            try:
                sent = os.write(self._fd, data)
            except OSError:  # BlockingIOError: nothing taken; another: the writer's send fails
                sent = 0
            self.counters.bytes_out += len(data)
            self.counters.frames_out += len(bodies)
            self._last_write = now
            if sent < len(data):
                self._unsent = data[sent:]
                self._writer_idle = False  # nothing more goes around `_unsent`
        if self._unsent or next_due is not None or self.outbox.control or self.outbox.raft:
            self.outbox.wake()

    # -- reading -----------------------------------------------------------------------

    async def _read_loop(self, scope: trio.CancelScope) -> None:
        try:
            while await self._read_until_idle(scope):
                pass  # the idle timer fell due just as data came: a new scope
        except (TransportError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            self.closed_by_peer |= isinstance(e, trio.BrokenResourceError | OSError)
            self._fail(e, scope)

    async def _read_until_idle(self, scope: trio.CancelScope) -> bool:
        """Read and dispatch frames until the peer closes (False) or falls silent for the
        idle timeout (IdleTimeout); True when the idle timer fell due just as data
        arrived (call again: the data counts, and the next receive would be cancelled).

        One idle scope for many receives, its deadline moved on before a receive when it
        would fall due within the idle timeout, and then by the timeout and a sixteenth
        (`_IDLE_SLACK`): moving a scope's deadline costs more than the receive's other
        work, and this way it moves every sixteenth of the timeout at most, not on every
        frame batch. A silent peer is cut after the timeout and at most a sixteenth more.
        `receive_some` is the only cancellation point inside it."""
        idle_s = self._limits.idle_timeout_ms / 1000
        batch = self._limits.read_batch_frames
        now = self._now
        with trio.CancelScope(deadline=now() + idle_s) as idle:
            while True:
                # (The usual read holds less than a batch: dispatched without a coroutine.)
                if self._dispatch_batch(batch) == batch:
                    await self._dispatch_in_batches()
                wanted = self._parser.wanted_bytes()
                chunk = min(max(wanted, _RECEIVE_CHUNK_MIN), _RECEIVE_CHUNK_MAX)
                at = now()
                deadline = idle.deadline
                if at >= deadline:
                    # (What `idle.cancel_called` asks, without its three calls for the time.)
                    break  # the timer fell due as data came: the caller opens a new scope
                if deadline < at + idle_s:
                    idle.deadline = at + idle_s + idle_s * _IDLE_SLACK
                data = await self._receive(chunk)
                if not data:
                    self.closed_by_peer = True
                    if self._parser.buffered_bytes:
                        raise TruncatedFrame(f"{self.label} closed in the middle of a frame")
                    scope.cancel()  # a clean close by the peer
                    return False
                self.counters.bytes_in += len(data)
                self._parser.feed(data)
        if idle.cancelled_caught:
            raise IdleTimeout(f"nothing from {self.label} for {idle_s:g} s")
        return True

    async def _receive(self, max_bytes: int) -> bytes | bytearray:
        """The next bytes from the peer (b"" once it closed), at most `max_bytes`.

        On a plain TCP stream, read from its socket directly: wait until it is readable,
        then one non-blocking read, and try the read first (with a checkpoint) only when
        the last one filled its buffer and more is likely waiting. `receive_some` tries
        the read first every time: on a request-and-answer stream that read finds
        nothing, raises and is caught, in three layers of context managers, before the
        wait, for every frame. The one cancellation point, as in `receive_some`, is the
        wait (or the checkpoint); a reset reads as an OSError, as the stream's
        BrokenResourceError does, and a socket closed under us as ClosedResourceError."""
        fd = self._fd
        if fd < 0:
            return await self._stream.receive_some(max_bytes)
        if self._read_filled:
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.wait_readable(fd)
        while True:
            try:
                data = os.read(fd, max_bytes)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(fd)
                continue
            except OSError as e:
                if e.errno == errno.EBADF:
                    raise trio.ClosedResourceError("the connection was closed") from None
                raise
            self._read_filled = len(data) == max_bytes
            return data

    async def _dispatch_in_batches(self) -> None:
        """After a full batch: dispatch every complete frame still buffered,
        `Limits.read_batch_frames` at a time, other tasks running before each batch (a
        schedule point, not a cancellation point: nothing read is left undispatched by a
        cancellation here, and the idle timer cannot fire while data is handled)."""
        batch = self._limits.read_batch_frames
        while True:
            await trio.lowlevel.cancel_shielded_checkpoint()
            if self._dispatch_batch(batch) < batch:
                return

    def _dispatch_batch(self, batch: int) -> int:
        """Dispatch up to `batch` complete buffered frames, then call the after-reading
        hook if there were any; how many there were."""
        with corking.held():  # what the batch makes us send goes out together
            count = self._dispatch_buffered(batch)
            if count:
                hook = self._after_reading()
                if hook is not None:
                    hook()
        return count

    def _dispatch_buffered(self, limit: int) -> int:
        """Dispatch complete buffered frames, at most `limit`; how many there were."""
        count = 0
        while count < limit and (body := self._parser.next_frame()) is not None:
            count += 1
            self.counters.frames_in += 1
            try:
                frame = decode_strict(body, Frame)
            except DecodeError as e:
                raise ProtocolError(f"malformed frame from {self.label}: {e}") from None
            self._dispatch(frame)
        return count

    def _dispatch(self, frame: Frame) -> None:
        if isinstance(frame, Keepalive):
            return
        if self._from_client and not self._is_client_request(frame):
            raise ProtocolError(f"{self.label} sent {_what(frame)}, not a client request")
        if isinstance(frame, RaftFrame):
            if self._on_raft is None:
                raise ProtocolError(f"{self.label} may not send raft messages")
            self._on_raft(self, frame)
        elif isinstance(frame, RpcRequest):
            self._accept_request(frame)
        elif isinstance(frame, RpcResponse):
            self._resolve(frame.call_id, frame.body)
        elif isinstance(frame, RpcFailure):
            self._resolve(frame.call_id, RemoteError(frame.code, frame.reason))
        else:  # a frame class this version does not serve (the future stream channel)
            raise ProtocolError(f"{self.label} sent an unsupported {type(frame).__name__}")

    def _is_client_request(self, frame: Frame) -> bool:
        if not isinstance(frame, RpcRequest):
            return False
        accepts = self._client_requests()
        return accepts is None or accepts(frame.body)

    def _resolve(self, call_id: int, outcome: Message | RpcFailed) -> None:
        pending = self._calls.get(call_id)
        if pending is None:
            return  # a late answer to a call that timed out
        if pending.on_outcome is not None:
            del self._calls[call_id]  # a waiting task removes its own
        pending.resolve(outcome)

    # -- serving requests --------------------------------------------------------------

    def _accept_request(self, request: RpcRequest) -> None:
        if len(self.outbox.control) > self._max_control:
            raise ProtocolError(f"{self.label} sends requests but does not read the replies")
        handler = self._handler()
        if handler is None:
            self._reply(RpcFailure(request.call_id, RpcErrorCode.NO_HANDLER, "no RPC handler"))
        elif self._serving >= self._limits.max_concurrent_requests:
            reason = f"{self._serving} requests in flight"
            self._reply(RpcFailure(request.call_id, RpcErrorCode.OVERLOADED, reason))
        elif not self._submitted(request):
            self._serving += 1
            self._nursery.start_soon(self._serve, handler, request)

    def _submitted(self, request: RpcRequest) -> bool:
        """Whether the submit hook took `request` (then it answers through `respond`).

        No deadline here: the hook answers every request it takes (a node's replica by
        its own request timeout), and a caller that gave up ignores a late answer."""
        submit = self._submit()
        if submit is None:
            return False
        call_id = request.call_id
        answered = False

        def respond(response: Message) -> None:
            nonlocal answered
            assert not answered, "a submitted request is answered once"
            answered = True
            self._serving -= 1
            self._reply_encoded(self._encode_response(call_id, response))

        self._serving += 1
        try:
            if submit(self._caller, request.body, respond):
                return True
        except Exception as e:  # noqa: BLE001 - application code: answered, as in _run_handler
            if not answered:
                answered = True
                self._serving -= 1
                self._reply_encoded(self._handler_failed(call_id, e))
            return True
        self._serving -= 1
        return False

    def _encode_response(self, call_id: int, response: Message) -> bytes:
        """The encoded reply frame for `response`, or the failure that replaces it."""
        try:
            if not isinstance(response, Message):
                raise TypeError(f"handler returned {type(response).__name__}, not a Message")
            body = encode(RpcResponse(call_id, response))
        except Exception as e:  # noqa: BLE001 - logged and answered, see _run_handler
            return self._handler_failed(call_id, e)
        if len(body) > self._limits.max_frame_bytes:
            reason = f"{len(body)} bytes"
            return encode(RpcFailure(call_id, RpcErrorCode.RESPONSE_TOO_LARGE, reason))
        return body

    async def _serve(self, handler: RpcHandler, request: RpcRequest) -> None:
        try:
            with trio.move_on_after(request.timeout_ms / 1000) as deadline:
                reply = await self._run_handler(handler, request)
            if deadline.cancelled_caught:
                reason = "handler exceeded the timeout"
                reply = encode(RpcFailure(request.call_id, RpcErrorCode.DEADLINE_EXCEEDED, reason))
            self._reply_encoded(reply)
        finally:
            self._serving -= 1

    async def _run_handler(self, handler: RpcHandler, request: RpcRequest) -> bytes:
        """The encoded reply frame: the response, or the failure that replaces it."""
        # Boundary: the handler is application code. Its failure must not take the
        # connection (and every other caller on it) down, so it becomes a typed reply.
        try:
            response = await handler(self._caller, request.body)
        except Exception as e:  # noqa: BLE001 - logged and answered, see above
            return self._handler_failed(request.call_id, e)
        return self._encode_response(request.call_id, response)

    def _handler_failed(self, call_id: int, error: Exception) -> bytes:
        log.error("RPC handler failed on a request from %s", self.label, exc_info=error)
        reason = f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS]
        return encode(RpcFailure(call_id, RpcErrorCode.HANDLER_FAILED, reason))

    def _reply(self, frame: Frame) -> None:
        self._reply_encoded(encode(frame))

    def _reply_encoded(self, body: bytes) -> None:
        verdict = self._faults() if self._faults is not None else _DELIVER_NOW
        if verdict.deliver:
            self.outbox.put_control(Queued(self._due(verdict), body, 0))

    # -- calling -----------------------------------------------------------------------

    async def call(self, request: Message, *, deadline: float, flow: int = 0) -> Message:
        """Send `request`, wait for the answer until `deadline` (trio time).

        Raises PeerUnreachable (closed before sending), RpcTimeout, ConnectionLost,
        RemoteError; LimitExceeded if the request does not fit in a frame.
        Cancellation: the request may already be sent and may run remotely; its
        answer, if any, is discarded.
        """
        call_id, body, remaining_ms = self._request_frame(request, deadline)
        pending = _PendingCall()
        self._calls[call_id] = pending
        try:
            verdict = self._faults() if self._faults is not None else _DELIVER_NOW
            if verdict.deliver:
                self.outbox.put_control(Queued(self._due(verdict), body, flow))
            with trio.move_on_at(deadline):
                await pending.done.wait()
        finally:
            self._calls.pop(call_id, None)  # gone already if the connection closed
        outcome = pending.outcome
        if outcome is None:
            raise RpcTimeout(f"no answer from {self.label} within {remaining_ms} ms")
        if isinstance(outcome, RpcFailed):
            raise outcome
        return outcome

    def send_call(self, request: Message, *, deadline: float, on_outcome: Outcome) -> None:
        """Send `request` without waiting: `on_outcome(response or RpcFailed)` is called
        exactly once, later, from this connection's tasks: with the response, a
        RemoteError, RpcTimeout at `deadline` (trio time), or ConnectionLost when the
        connection closes first. It must not raise or block.

        Raises PeerUnreachable (the connection is closed: not sent, and `on_outcome` is
        not called) and LimitExceeded (the request does not fit in a frame). This saves
        the caller a task and a cancel scope per request (`call` needs both)."""
        call_id, body, _ = self._request_frame(request, deadline)
        self._calls[call_id] = _PendingCall(on_outcome)
        heapq.heappush(self._expiry, (deadline, call_id))
        if deadline < self._writer_deadline:
            self.outbox.wake()  # its timer has to fire sooner
        verdict = self._faults() if self._faults is not None else _DELIVER_NOW
        if verdict.deliver:
            self.outbox.put_control(Queued(self._due(verdict), body, 0))

    def _request_frame(self, request: Message, deadline: float) -> tuple[int, bytes, int]:
        """(call id, encoded request frame, ms left) for a call; raises PeerUnreachable
        (closed) and LimitExceeded (too large), before anything is recorded."""
        if not self.open:
            raise PeerUnreachable(f"connection to {self.label} is closed")
        remaining_ms = max(1, int((deadline - trio.current_time()) * 1000))
        call_id = next(self._call_ids)
        body = encode(RpcRequest(call_id, remaining_ms, request))
        if len(body) > self._limits.max_frame_bytes:
            raise LimitExceeded("request", self._limits.max_frame_bytes, len(body))
        return call_id, body, remaining_ms

    @staticmethod
    def _due(verdict: Verdict) -> float:
        return trio.current_time() + verdict.delay_ms / 1000 if verdict.delay_ms else 0.0


def _what(frame: Frame) -> str:
    """A frame's class, and its content's ("a RaftFrame of AppendEntries")."""
    inner = frame.message if isinstance(frame, RaftFrame) else None
    inner = frame.body if isinstance(frame, RpcRequest | RpcResponse) else inner
    name = type(frame).__name__
    return f"a {name} of {type(inner).__name__}" if inner is not None else f"a {name}"


def describe(error: BaseException | None) -> str:
    """A one-line reason for logs and stats."""
    if error is None:
        return "closed"
    if isinstance(error, ClusterError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
