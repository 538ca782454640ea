"""The client API: the configuration database over the network, through one session.

Get one with `raftcluster.connect(...)` (raftcluster/client/connect.py). Every write goes
through the client core's session (raftcluster/client/core.py): it is numbered
(session, sequence) and retried with the same numbers on a timeout or a leader change,
on whichever node leads, so the state machine applies it at most once. Reads are
linearizable unless `consistency="stale"`.

Each call ends in one of three ways:
- its result (a frozen attrs value of `statemachine.kv`);
- a definite failure, after which nothing was changed: a `Rejected` subclass from the
  state machine (`Compacted`, `FutureRevision`, `BadRequest`...), `Unavailable` (no
  quorum or leader reachable before the deadline), `NotLeader` (the leader the nodes name
  is not among the client's endpoints), or a configuration error (`AuthenticationFailed`
  for a wrong secret, `HandshakeFailed` for a wrong cluster id);
- `OutcomeUnknown` (writes only): the deadline passed and the write may have been
  applied, once. Reading tells which.
docs/client.md describes each method.
"""

from __future__ import annotations

from typing import TypeVar

import trio

from raftcluster.client.cluster_status import ClusterStatus, NodeReport
from raftcluster.client.events import GroupEvents
from raftcluster.client.groups import Groups
from raftcluster.client.links import FATAL_REFUSALS, Links
from raftcluster.client.membership import Membership
from raftcluster.client.nodes import Nodes
from raftcluster.client.runner import CoreRunner
from raftcluster.client.txn import TxnBuilder
from raftcluster.client.values import Consistency, Data, is_stale, range_end, to_bytes
from raftcluster.client.watch import Watch
from raftcluster.errors import ClientClosed, NotLeader, OutcomeUnknown, Unavailable
from raftcluster.node.protocol import Changed, GetStatus, NodeStatus, WaitChanges
from raftcluster.transport import HandshakeFailed, RpcFailed
from statemachine.codec import Message
from statemachine.errors import ClusterError
from statemachine.kv.commands import Changes, Compact, Compare, DeleteRange, Put, Range, Txn
from statemachine.kv.results import (
    ChangesResult,
    CompactResult,
    DeleteRangeResult,
    KeyValue,
    PutResult,
    RangeResult,
    TxnResult,
)
from statemachine.results import expect

R = TypeVar("R", bound=Message)

_WAIT_GRACE_MS = 2_000  # a long poll's call outlives its wait by this much


class Client:
    """A connection to one cluster, with one session for its writes. Use
    ``async with raftcluster.connect(...) as client``; safe to share between tasks (calls
    run concurrently and are pipelined on one connection per node)."""

    def __init__(
        self,
        runner: CoreRunner,
        watch_links: Links,
        *,
        request_timeout_ms: int,
        attempt_timeout_ms: int,
        watch_wait_ms: int,
    ) -> None:
        self._runner = runner
        self._watch_links = watch_links
        self._request_timeout_ms = request_timeout_ms
        self._attempt_timeout_ms = attempt_timeout_ms
        self._watch_wait_ms = watch_wait_ms
        self._wait_turn = 0
        self._closed = False

    # -- about the connection ----------------------------------------------------------

    @property
    def leader(self) -> int:
        """The node this client believes leads (0: not known yet)."""
        return self._runner.leader

    @property
    def session(self) -> int:
        """The id of the client's session (0 until the first write opens one)."""
        return self._runner.core.session

    @property
    def node_ids(self) -> tuple[int, ...]:
        """The ids of the nodes the client knows addresses for."""
        return self._runner.nodes

    # -- the cluster service -------------------------------------------------------------

    @property
    def groups(self) -> Groups:
        """The cluster service's resource groups: create, change, move, list, why,
        simulate, apply a group file (raftcluster/client/groups.py)."""
        return Groups(self)

    @property
    def nodes(self) -> Nodes:
        """The cluster service's members: list, status, drain, resume
        (raftcluster/client/nodes.py)."""
        return Nodes(self)

    @property
    def membership(self) -> Membership:
        """The cluster's Raft members: list, add, promote, remove, replace, transfer
        leadership (raftcluster/client/membership.py)."""
        return Membership(self._runner, self.status, self._request_timeout_ms)

    def events(self, from_revision: int = 1) -> GroupEvents:
        """The cluster service's events from `from_revision` on, as an async iterator of
        `GroupEvent`s in revision order, each once, across reconnections and leader
        changes; it polls when caught up (50 ms to 500 ms) and never ends on its own;
        `EventsCompacted` when the events it needs are no longer kept. See `GroupEvents`."""
        return GroupEvents(self, from_revision)

    @property
    def attempts_in_doubt(self) -> int:
        """Requests sent again (same session and sequence) after an attempt ended without
        an answer (timed out, connection lost): a count for monitoring and tests."""
        return self._runner.attempts_in_doubt

    # -- the key-value store -------------------------------------------------------------

    async def put(
        self, key: Data, value: Data, *, prev_kv: bool = False, timeout_ms: int | None = None
    ) -> PutResult:
        """Set `key` to `value` (bytes, or str as UTF-8); with `prev_kv` the result carries
        the pair replaced. Raises OutcomeUnknown, Unavailable, NotLeader, BadRequest.
        Cancellation: the write may still be applied (once); its outcome is unknown."""
        command = Put(to_bytes(key, "key"), to_bytes(value, "value"), prev_kv)
        return expect(await self.write(command, timeout_ms=timeout_ms), PutResult)

    async def get(
        self,
        key: Data,
        *,
        revision: int = 0,
        consistency: Consistency = "linearizable",
        timeout_ms: int | None = None,
    ) -> KeyValue | None:
        """The pair at `key` (None if it does not exist), at `revision` (0: the newest).
        Raises Compacted, FutureRevision, Unavailable. Cancellation leaves nothing behind."""
        result = await self.range(
            key, revision=revision, consistency=consistency, timeout_ms=timeout_ms
        )
        return result.kvs[0] if result.kvs else None

    async def range(
        self,
        key: Data,
        end: Data | None = None,
        *,
        prefix: bool = False,
        limit: int = 0,
        revision: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
        consistency: Consistency = "linearizable",
        timeout_ms: int | None = None,
    ) -> RangeResult:
        """The pairs of `key`, of [key, end), or of every key starting with `key`
        (`prefix`), in key order, at `revision` (0: the newest). `limit` caps the pairs
        returned (`more` says some were left out; `count` counts them all); `count_only`
        returns none, `keys_only` no values. Raises Compacted, FutureRevision,
        Unavailable. Cancellation leaves nothing behind."""
        raw = to_bytes(key, "key")
        query = Range(raw, range_end(raw, end, prefix), revision, limit, count_only, keys_only)
        return expect(
            await self.read(query, consistency=consistency, timeout_ms=timeout_ms), RangeResult
        )

    async def delete(
        self,
        key: Data,
        end: Data | None = None,
        *,
        prefix: bool = False,
        prev_kv: bool = False,
        timeout_ms: int | None = None,
    ) -> DeleteRangeResult:
        """Delete `key`, the keys of [key, end), or every key starting with `key`
        (`prefix`); `deleted` says how many. Raises as `put` does. Cancellation: the
        delete may still be applied (once); its outcome is unknown."""
        raw = to_bytes(key, "key")
        command = DeleteRange(raw, range_end(raw, end, prefix), prev_kv)
        return expect(await self.write(command, timeout_ms=timeout_ms), DeleteRangeResult)

    def txn(self, *compares: Compare) -> TxnBuilder:
        """A transaction to build and `commit()`: ``client.txn(txn.version("k") == 0)
        .then(txn.put("k", "v")).otherwise(txn.get("k")).commit()`` (raftcluster.txn)."""
        return TxnBuilder(self._commit).when(*compares)

    async def commit(self, txn: Txn, *, timeout_ms: int | None = None) -> TxnResult:
        """Apply `txn` atomically in one revision, through the session. Raises as `put`
        does (a refused txn changed nothing). Cancellation: it may still be applied
        (once); its outcome is unknown."""
        return expect(await self.write(txn, timeout_ms=timeout_ms), TxnResult)

    async def _commit(self, txn: Txn, timeout_ms: int | None) -> TxnResult:
        return await self.commit(txn, timeout_ms=timeout_ms)

    async def compact(self, revision: int, *, timeout_ms: int | None = None) -> CompactResult:
        """Forget the history before `revision`: reads and watches below it then fail
        with Compacted. Raises Compacted (already compacted that far), FutureRevision,
        and as `put` does. Cancellation: it may still be applied; the outcome is unknown."""
        return expect(await self.write(Compact(revision), timeout_ms=timeout_ms), CompactResult)

    def watch(
        self,
        key: Data,
        end: Data | None = None,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> Watch:
        """The changes to `key`, [key, end) or the keys starting with `key` (`prefix`),
        as an async iterator of `KvEvent`s, from `start_revision` (0: from the revision
        current when the watch starts: its first iteration, or `await watch.start()`).
        Every change is delivered once, in order, across reconnections and leader
        changes; `Compacted` when the history it needs is gone. See `Watch`."""
        raw = to_bytes(key, "key")
        return Watch(
            self,
            raw,
            range_end(raw, end, prefix),
            start_revision=start_revision,
            prev_kv=prev_kv,
            wait_ms=self._watch_wait_ms,
        )

    async def status(self, *, timeout_ms: int = 2_000) -> ClusterStatus:
        """Every node's own status (role, term, leader, indexes), asked at once, each
        within `timeout_ms`; a node that does not answer is reported with the reason.
        Cancellation leaves nothing behind."""
        self._check_open()
        nodes = self._runner.nodes
        reports: list[NodeReport] = [NodeReport(n, error="no answer") for n in nodes]

        async def ask(i: int) -> None:
            reports[i] = await self._node_status(nodes[i], timeout_ms)

        async with trio.open_nursery() as nursery:
            for i in range(len(nodes)):
                nursery.start_soon(ask, i)
        return ClusterStatus(tuple(reports))

    async def _node_status(self, node: int, timeout_ms: int) -> NodeReport:
        try:
            reply = await self._runner.call(node, GetStatus(), timeout_ms=timeout_ms)
        except HandshakeFailed as e:
            if e.reason in FATAL_REFUSALS:
                raise
            return NodeReport(node, error=str(e))
        except RpcFailed as e:
            return NodeReport(node, error=str(e))
        if isinstance(reply, NodeStatus):
            return NodeReport(node, status=reply)
        return NodeReport(node, error=f"unexpected answer {type(reply).__name__}")

    # -- any state machine command or query ------------------------------------------

    async def write(self, command: Message, *, timeout_ms: int | None = None) -> Message:
        """Apply any state machine `command` through the session, at most once; its result
        (a `Failure` result is raised as its typed exception). Cancellation: the command
        keeps being retried in the background until settled or its deadline, so it may
        still be applied (once); its outcome is unknown to the caller."""
        self._check_open()
        done = await self._runner.write(command, timeout_ms=self._timeout(timeout_ms))
        return self._outcome(done.result, done.error)

    async def read(
        self,
        query: Message,
        *,
        consistency: Consistency = "linearizable",
        timeout_ms: int | None = None,
    ) -> Message:
        """Answer any read-only state machine `query`: linearizable (it reflects every write
        acknowledged before the call), or `"stale"` (one node's state as it is: fast, may
        miss recent writes). Raises Unavailable and the query's typed failures.
        Cancellation leaves nothing behind."""
        self._check_open()
        stale = is_stale(consistency)
        done = await self._runner.read(query, stale=stale, timeout_ms=self._timeout(timeout_ms))
        return self._outcome(done.result, done.error)

    # -- what a Watch asks for ----------------------------------------------------------

    async def read_changes(self, request: Changes) -> ChangesResult:
        """A linearizable page of changes (for `Watch`). Cancellation leaves nothing."""
        return expect(await self.read(request), ChangesResult)

    async def wait_changes(self, after_revision: int, wait_ms: int) -> int | None:
        """Long-poll one node (the leader if known, else the next in turn) until its
        revision passes `after_revision` or `wait_ms` passes; its revision then, or None if
        it could not be asked (the watch then reads again). Long polls use connections of
        their own, so they never hold up other requests. Cancellation leaves nothing."""
        self._check_open()
        node = self._wait_node()
        links = self._watch_links
        try:
            with trio.fail_after(self._attempt_timeout_ms / 1000):
                connection = await links.get(node)
            request = WaitChanges(after_revision, wait_ms)
            reply = await connection.call(request, timeout_ms=wait_ms + _WAIT_GRACE_MS)
        except HandshakeFailed as e:
            if e.reason in FATAL_REFUSALS:
                raise
            return self._no_wait()
        except (RpcFailed, trio.TooSlowError):  # unreachable, timed out, lost: next node
            links.release(node)
            return self._no_wait()
        return reply.revision if isinstance(reply, Changed) else self._no_wait()

    def _wait_node(self) -> int:
        nodes = self._runner.nodes
        if self._runner.leader in nodes:
            return self._runner.leader
        return nodes[self._wait_turn % len(nodes)]

    def _no_wait(self) -> int | None:
        """No revision learned; the next long poll goes to the next node."""
        self._wait_turn += 1
        return None

    # -- outcomes ------------------------------------------------------------------------

    def _timeout(self, timeout_ms: int | None) -> int:
        return self._request_timeout_ms if timeout_ms is None else timeout_ms

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("this client is closed; connect again")

    def _outcome(self, result: Message | None, error: ClusterError | None) -> Message:
        if error is None:
            assert result is not None
            return result
        raise self._explain(error)

    def _explain(self, error: ClusterError) -> ClusterError:
        """`error`, with what the client saw of each node when that helps decide what to do."""
        if isinstance(error, NotLeader) or not isinstance(error, Unavailable | OutcomeUnknown):
            return error
        runner = self._runner
        leader = runner.unknown_leader
        if isinstance(error, Unavailable) and leader:
            return NotLeader(
                f"{error}: the nodes say node {leader} leads, but this client has no address "
                "for it; add its address to the endpoints, or connect with the cluster file",
                leader=leader,
            )
        seen = runner.describe_problems()
        hint = (
            "; check that a majority of the nodes is up (raftcluster status)"
            if isinstance(error, Unavailable)
            else "; read the key to learn whether it was applied"
        )
        detail = f" ({seen})" if seen else ""
        return type(error)(f"{error}{detail}{hint}")
