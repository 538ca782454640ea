"""A blocking façade for code that does not run trio: threads, Flask, asyncio services.

    with raftcluster.connect_sync(cluster="mycluster") as client:
        client.put("k", "v")
        client.get("k")

`connect_sync` starts one background thread that runs trio and, inside it, an ordinary
`Client` (`raftcluster.connect`). Each call of a `SyncClient` method runs the matching
`Client` call on that thread (`trio.from_thread.run`) and blocks the calling thread until
it finishes; any number of threads may call at once (their calls run concurrently and
share the client's connections and session). From an asyncio service, call it through
`await asyncio.to_thread(client.get, "k")` so that the event loop is not blocked.
Do not call it from trio code: use `raftcluster.connect` there.

`close()` (or leaving the `with` block) cancels the calls still running (they raise
`ClientClosed`; a write among them may still be applied, its outcome unknown), closes
the session and the connections, and joins the thread. The thread is a daemon, so a
forgotten client does not keep the interpreter alive.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import random
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import trio

from raftcluster.client.api import Client
from raftcluster.client.cluster_status import ClusterStatus
from raftcluster.client.connect import ClientOptions, connect
from raftcluster.client.sync_groups import SyncGroupEvents, SyncGroups, SyncNodes
from raftcluster.client.sync_membership import SyncMembership
from raftcluster.client.txn import TxnBuilder
from raftcluster.client.values import Consistency, Data
from raftcluster.client.watch import Watch
from raftcluster.config import ClusterFile
from raftcluster.errors import ClientClosed
from raftcluster.transport import Address, TlsConfig
from statemachine.codec import Message
from statemachine.kv.commands import Compare, Txn
from statemachine.kv.results import (
    CompactResult,
    DeleteRangeResult,
    KeyValue,
    KvEvent,
    PutResult,
    RangeResult,
    TxnResult,
)

T = TypeVar("T")
log = logging.getLogger("raftcluster.client")

_JOIN_TIMEOUT_S = 10.0


class _Portal:
    """The trio thread, and the calls running in it on behalf of other threads."""

    def __init__(self) -> None:
        self.token: trio.lowlevel.TrioToken | None = None
        self.stop: trio.Event | None = None
        self.closed = False
        self._scopes: set[trio.CancelScope] = set()
        self.thread: threading.Thread | None = None

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` in the trio thread; block until it is done."""
        if self.closed or self.token is None:
            raise ClientClosed("this client is closed; connect again")
        call = functools.partial(self._guarded, fn, *args, **kwargs)
        try:
            return trio.from_thread.run(call, trio_token=self.token)
        except trio.RunFinishedError:
            raise ClientClosed("this client is closed; connect again") from None

    async def _guarded(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Cancellation (by `close`): raises ClientClosed; what the cancelled call leaves is
        what its own docstring says (a write may still be applied)."""
        if self.closed:
            raise ClientClosed("this client is closed; connect again")
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                return await fn(*args, **kwargs)
            finally:
                self._scopes.discard(scope)
        raise ClientClosed(
            "the client closed while this call was running; a write may have been applied"
        )

    def shutdown(self) -> None:
        """Called in the trio thread: cancel the calls running, let the client close."""
        self.closed = True
        for scope in list(self._scopes):
            scope.cancel()
        if self.stop is not None:
            self.stop.set()


class SyncClient:
    """The blocking twin of `Client`: the same methods, arguments, results and errors.
    Thread-safe. Get one from `raftcluster.connect_sync(...)`."""

    def __init__(self, portal: _Portal, client: Client) -> None:
        self._portal = portal
        self._client = client
        self._lock = threading.Lock()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel the calls still running (they raise ClientClosed), close the session and
        the connections, and wait for the background thread to end. Idempotent."""
        with self._lock:
            portal = self._portal
            if portal.token is not None and not portal.closed:
                with contextlib.suppress(trio.RunFinishedError):  # the thread already ended
                    trio.from_thread.run_sync(portal.shutdown, trio_token=portal.token)
            portal.closed = True
            thread = portal.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)

    @property
    def leader(self) -> int:
        return self._client.leader

    @property
    def session(self) -> int:
        return self._client.session

    @property
    def node_ids(self) -> tuple[int, ...]:
        return self._client.node_ids

    def put(
        self, key: Data, value: Data, *, prev_kv: bool = False, timeout_ms: int | None = None
    ) -> PutResult:
        return self._portal.run(
            self._client.put, key, value, prev_kv=prev_kv, timeout_ms=timeout_ms
        )

    def get(
        self,
        key: Data,
        *,
        revision: int = 0,
        consistency: Consistency = "linearizable",
        timeout_ms: int | None = None,
    ) -> KeyValue | None:
        return self._portal.run(
            self._client.get,
            key,
            revision=revision,
            consistency=consistency,
            timeout_ms=timeout_ms,
        )

    def range(
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
        return self._portal.run(
            self._client.range,
            key,
            end,
            prefix=prefix,
            limit=limit,
            revision=revision,
            count_only=count_only,
            keys_only=keys_only,
            consistency=consistency,
            timeout_ms=timeout_ms,
        )

    def delete(
        self,
        key: Data,
        end: Data | None = None,
        *,
        prefix: bool = False,
        prev_kv: bool = False,
        timeout_ms: int | None = None,
    ) -> DeleteRangeResult:
        return self._portal.run(
            self._client.delete, key, end, prefix=prefix, prev_kv=prev_kv, timeout_ms=timeout_ms
        )

    def txn(self, *compares: Compare) -> TxnBuilder:
        """A transaction to build; its `commit()` is a coroutine, so commit it with
        `client.commit(builder.build())` here."""
        return TxnBuilder().when(*compares)

    def commit(self, txn: Txn | TxnBuilder, *, timeout_ms: int | None = None) -> TxnResult:
        built = txn.build() if isinstance(txn, TxnBuilder) else txn
        return self._portal.run(self._client.commit, built, timeout_ms=timeout_ms)

    def compact(self, revision: int, *, timeout_ms: int | None = None) -> CompactResult:
        return self._portal.run(self._client.compact, revision, timeout_ms=timeout_ms)

    def watch(
        self,
        key: Data,
        end: Data | None = None,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> SyncWatch:
        """A blocking iterator of the changes (see `Client.watch`); its start is fixed when
        it is created."""
        watch = self._client.watch(
            key, end, prefix=prefix, start_revision=start_revision, prev_kv=prev_kv
        )
        self._portal.run(watch.start)
        return SyncWatch(self._portal, watch)

    def status(self, *, timeout_ms: int = 2_000) -> ClusterStatus:
        return self._portal.run(self._client.status, timeout_ms=timeout_ms)

    @property
    def groups(self) -> SyncGroups:
        """The cluster service's groups (see `Client.groups`), blocking."""
        return SyncGroups(self._portal, self._client.groups)

    @property
    def nodes(self) -> SyncNodes:
        """The cluster service's members (see `Client.nodes`), blocking."""
        return SyncNodes(self._portal, self._client.nodes)

    @property
    def membership(self) -> SyncMembership:
        """The cluster's Raft members (see `Client.membership`), blocking."""
        return SyncMembership(self._portal, self._client.membership)

    def events(self, from_revision: int = 1) -> SyncGroupEvents:
        """A blocking iterator of the cluster service's events (see `Client.events`)."""
        return SyncGroupEvents(self._portal, self._client.events(from_revision))

    def write(self, command: Message, *, timeout_ms: int | None = None) -> Message:
        return self._portal.run(self._client.write, command, timeout_ms=timeout_ms)

    def read(
        self,
        query: Message,
        *,
        consistency: Consistency = "linearizable",
        timeout_ms: int | None = None,
    ) -> Message:
        return self._portal.run(
            self._client.read, query, consistency=consistency, timeout_ms=timeout_ms
        )


class SyncWatch:
    """``for event in client.watch(...)``: blocks until the next change. Never ends on
    its own; raises Compacted as `Watch` does, and ClientClosed once the client closes."""

    def __init__(self, portal: _Portal, watch: Watch) -> None:
        self._portal = portal
        self._watch = watch

    @property
    def next_revision(self) -> int:
        return self._watch.next_revision

    def __iter__(self) -> Iterator[KvEvent]:
        return self

    def __next__(self) -> KvEvent:
        return self._portal.run(self._watch.__anext__)


def connect_sync(
    cluster: str | os.PathLike[str] | ClusterFile | None = None,
    *,
    endpoints: Sequence[str | Address] | None = None,
    secret: bytes | None = None,
    secret_file: str | os.PathLike[str] | None = None,
    cluster_id: str | None = None,
    options: ClientOptions | None = None,
    rng: random.Random | None = None,
    key_file: str | os.PathLike[str] | None = None,
    tls: TlsConfig | None = None,
) -> SyncClient:
    """A `SyncClient` of one cluster (the arguments of `raftcluster.connect`). Blocks
    until a node has authenticated the client, and raises what entering `connect`
    raises. Close it (or use it as a context manager)."""
    portal = _Portal()
    handoff: queue.Queue[Client | BaseException] = queue.Queue(maxsize=1)

    async def serve() -> None:
        try:
            async with connect(
                cluster,
                endpoints=endpoints,
                secret=secret,
                secret_file=secret_file,
                cluster_id=cluster_id,
                options=options,
                rng=rng,
                key_file=key_file,
                tls=tls,
            ) as client:
                portal.stop = trio.Event()
                portal.token = trio.lowlevel.current_trio_token()
                handoff.put(client)
                await portal.stop.wait()
        except BaseException as e:  # boundary: hand the failure to the connecting thread
            if handoff.empty() and portal.token is None:
                handoff.put(e)
                return
            raise

    def main() -> None:
        try:
            trio.run(serve)
        except BaseException:  # boundary: the thread's end; nobody else would see it
            log.exception("the client thread ended with an error")
        finally:
            portal.closed = True

    thread = threading.Thread(target=main, name="raftcluster-client", daemon=True)
    portal.thread = thread
    thread.start()
    first = handoff.get()
    if isinstance(first, BaseException):
        thread.join(_JOIN_TIMEOUT_S)
        raise first
    return SyncClient(portal, first)
