"""pysyncobj as a chaos target: unmodified pysyncobj `SyncObj` nodes under the simulator.

    from chaos.sim.pysyncobj_engine import simulate_pysyncobj
    result = simulate_pysyncobj(SimConfig(seed=3, nodes=3, duration_ms=30_000))
    result.verdict, result.violation["findings"], result.linearizability

Every node is a real `pysyncobj.SyncObj` (0.3.17, not modified) holding a small
replicated key-value store (`_KvStore`, a `SyncObjConsumer` of our own). This module is
the whole adaptation; the rest of the simulator (network, faults, nemeses, clocks,
workloads, checker) is reused as it is:

- **Tick**: `SyncObjConf(autoTick=False)`; the loop calls `doTick(0)` on a node every
  `tick_ms` of its own clock (pysyncobj's `autoTickPeriod`) and after anything reaches it
  (messages, client commands), as its tick thread would after a poll returns.
- **Transport**: `_SimTransport`, a `pysyncobj.transport.Transport` whose `send` hands the
  message to the simulated `Network`; deliveries call pysyncobj's own receive callback.
  "Connected" follows reachability: a peer is connected while both links to it are uncut
  and it is running (a TCP connection would notice a cut later, after its timeout).
- **Clock and randomness**: pysyncobj reads `monotonicTime` and `random.random()` through
  globals of `pysyncobj.syncobj`. For the length of a run `_Patched` points them at the
  engine, which answers for the node being stepped: its `NodeClock` (in seconds) and its
  own generator drawn from the seed. They are restored when the run ends; only one
  thread runs, so no other code sees them.
- **Journal**: the in-memory journal, wrapped (`_WatchedJournal`, through the
  `createJournal` global) to see truncations; snapshots are serialized in memory
  (`fullDumpFile=None`, `useFork=False`).

**Nothing is unpickled that crossed a process boundary.** pysyncobj pickles its commands
and snapshots itself, inside `SyncObj`, and unpickles them in the same objects. Every
node runs in this one process, and the transport passes pysyncobj's message dicts between
them as the Python objects they are: no message is serialized, so none is ever decoded
from bytes, and this module imports no pickle. (Over TCP, pysyncobj unpickles every
frame before it knows the peer; that is a finding of docs/chaos-pysyncobj.md, not something this
adapter does.)

What is checked, besides the linearizability of the clients' history (the `kv` model):

- `committed-entry-truncated`: a node deleted log entries at or below its own commit
  index (Raft never removes committed entries);
- `acknowledged-write-lost`: a write whose callback reported success at log index i, where
  the cluster kept another command (the one most nodes applied at i);
- `applied-entries-diverge`: two nodes applied different commands at the same index;
- `stale-read`: a node that believes it leads answered a read without a write acknowledged
  at an index it has not applied;
- `applied-index-regressed`: a node's last applied index went back;
- `two-leaders-in-a-term`: two nodes led the same term (seen after each node's tick);
- `node-exception`: pysyncobj raised (the node goes on, as its tick thread would);
- after healing: a leader, a probe write acknowledged, and every node at the same applied
  index with the same store (`liveness`, `convergence`).

The run records every finding (the first of each kind in detail) rather than stopping at
the first, since pysyncobj trips some of them in nearly every run.

Limits: a crash stops a node and a restart resumes it with its memory intact (the
in-memory journal loses everything, which pysyncobj does not claim to survive); so a
crash here is a long pause whose messages are lost. Connection loss is noticed at once.
The network may reorder and duplicate messages, which one TCP connection would not (a
reconnection would). Time stands still within a step, so sends are capped per step
(`MAX_SENDS_PER_LINK_PER_STEP`). Clients are not partitioned from nodes. Only the `kv`
workload runs. docs/chaos-pysyncobj.md.
"""

from __future__ import annotations

import logging
import os
import random
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import attrs
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj import syncobj as _syncobj
from pysyncobj.journal import MemoryJournal
from pysyncobj.node import Node
from pysyncobj.transport import Transport
from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

import chaos
import raftcluster
import statemachine
from chaos.sim.applied_checks import AppliedLogChecks
from chaos.sim.clock import NodeClock
from chaos.sim.config import SimConfig
from chaos.sim.engine import Membership, Timing
from chaos.sim.events import (
    Acknowledged,
    LinkReset,
    NodeCrashed,
    NodeStarted,
    OperationDone,
    ReadServed,
    Submitted,
)
from chaos.sim.faults import ChangeMembership, DiskFault, Fault
from chaos.sim.invariants import SafetyViolation
from chaos.sim.nemesis import Nemesis
from chaos.sim.network import Envelope
from chaos.sim.result import Counters, SimResult
from chaos.sim.simulator import Simulator
from chaos.sim.workload import KvWorkload, Workload
from raftcluster.client.core import Completion
from raftcluster.errors import OutcomeUnknown, Unavailable
from statemachine.errors import InvalidArgument
from statemachine.kv import KeyValue, Put, Range, RangeResult

# Messages one node may send one peer within one step: a TCP send buffer's worth. Beyond
# it the connection is reset (pysyncobj sees the peer disconnect, and reconnect at the
# next step). pysyncobj bounds some send loops only by time (100 ms of a real clock, which
# does not move within a simulated step): one would otherwise never end.
MAX_SENDS_PER_LINK_PER_STEP = 1_000
# Where pysyncobj's code and ours live: an exception is pysyncobj's (a finding) when the
# innermost of these frames is in pysyncobj, and ours (the run's error) otherwise.
_PYSYNCOBJ_DIR = os.path.dirname(_syncobj.__file__) + os.sep
_HARNESS_DIRS = tuple(
    os.path.dirname(str(m.__file__)) + os.sep for m in (chaos, raftcluster, statemachine)
)
# Failures that say the command was never appended: the operation did not happen.
DEFINITE_FAILURES = frozenset(
    {FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.NOT_LEADER,
     FAIL_REASON.REQUEST_DENIED}
)  # fmt: skip


@attrs.frozen
class PysyncobjSettings:
    """pysyncobj's own settings for the run (its defaults, except log compaction)."""

    tick_ms: int = 50  # autoTickPeriod
    raft_min_timeout_ms: int = 400
    raft_max_timeout_ms: int = 1_400
    append_entries_period_ms: int = 100
    leader_fallback_timeout_ms: int = 30_000
    # Small, so deposed leaders meet snapshots (the lost-write path).
    log_compaction_min_entries: int = 50

    def conf(self) -> Any:
        return SyncObjConf(
            autoTick=False,
            raftMinTimeout=self.raft_min_timeout_ms / 1000,
            raftMaxTimeout=self.raft_max_timeout_ms / 1000,
            appendEntriesPeriod=self.append_entries_period_ms / 1000,
            leaderFallbackTimeout=self.leader_fallback_timeout_ms / 1000,
            logCompactionMinEntries=self.log_compaction_min_entries,
            useFork=False,
            pollerType="select",
            fullDumpFile=None,
            journalFile=None,
        )


def simulate_pysyncobj(
    config: SimConfig,
    nemesis: Nemesis | None = None,
    workload: Workload | None = None,
    *,
    settings: PysyncobjSettings | None = None,
    check_timeout_s: float | None = 10.0,
) -> SimResult:
    """Run one seed against pysyncobj; with `check_timeout_s`, also check the history."""
    from chaos.sim.nemesis import RandomFaults

    nemesis = nemesis if nemesis is not None else RandomFaults()
    workload = workload if workload is not None else KvWorkload()
    if not isinstance(workload, KvWorkload):
        raise InvalidArgument("workload", "the pysyncobj engine runs the kv workload only")
    if "membership" in nemesis.name.split(","):
        raise InvalidArgument(
            "nemesis", "membership changes are not driven on the pysyncobj engine"
        )
    engine = PysyncobjEngine(settings or PysyncobjSettings())
    if config.parts:
        raise InvalidArgument("parts", "the pysyncobj engine runs the built-in kv part only")
    return Simulator(config, nemesis, workload, engine, check_timeout_s=check_timeout_s).run()


# -- what pysyncobj runs -------------------------------------------------------------------


class _KvStore(SyncObjConsumer):  # type: ignore[misc]
    """The replicated state: a dict of strings. `put` returns the index it was applied at."""

    def __init__(self, on_apply: Callable[[int, str, str], None], counters: Counters) -> None:
        # Set before SyncObjConsumer's constructor, so kept out of snapshots.
        self._on_apply = on_apply
        self._counters = counters
        super().__init__()
        self.data: dict[str, str] = {}

    def _serialize(self) -> Any:
        self._counters.snapshots_taken += 1
        return super()._serialize()

    def _deserialize(self, data: Any) -> None:
        self._counters.snapshots_installed += 1
        super()._deserialize(data)

    @replicated  # type: ignore[untyped-decorator]
    def put(self, key: str, value: str) -> int:
        index = int(self._syncObj.raftLastApplied) + 1  # raised after this returns
        self.data[key] = value
        self._on_apply(index, key, value)
        return index

    def get(self, key: str) -> str:
        return self.data.get(key, "")


class _WatchedJournal(MemoryJournal):  # type: ignore[misc]
    """pysyncobj's in-memory journal, telling the engine which indexes it deletes."""

    def __init__(self, on_truncate: Callable[[int], None]) -> None:
        super().__init__()
        self._on_truncate = on_truncate

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # pysyncobj's name
        if entryFrom < len(self):
            self._on_truncate(self[entryFrom][1])
        super().deleteEntriesFrom(entryFrom)


class _SimTransport(Transport):  # type: ignore[misc]
    """A pysyncobj Transport over the simulated network: `send` is all it does."""

    def __init__(self, engine: PysyncobjEngine, node_id: int) -> None:
        super().__init__(None, None, None)
        self._engine = engine
        self._node_id = node_id

    def send(self, node: Any, message: Any) -> bool:
        return self._engine.send(self._node_id, int(node.id), message)


# -- the nodes and clients ---------------------------------------------------------------


class _Node:
    def __init__(self, node_id: int, clock: NodeClock, rng: random.Random) -> None:
        self.id = node_id
        self.clock = clock
        self.rng = rng
        self.obj: Any = None  # the SyncObj, from the first start on
        self.store: _KvStore | None = None
        self.transport: _SimTransport | None = None
        self.stopped = True
        self.wake_ms = 0
        self.dirty = False  # something reached it this instant: it ticks now
        self.connected: set[int] = set()


@attrs.define
class _Op:
    handle: int
    client: int
    node: int  # where the client submitted it
    deadline_ms: int
    done: bool = False


class _ClientAdapter:
    """Stands in for a `ClientCore`: what a workload calls, done the pysyncobj way.

    A client is an application attached to one node: writes are submitted there (pysyncobj
    forwards them to the leader it knows), and reads are served from the store of the
    node that node believes leads (pysyncobj's reads are local; reading at the leader is
    the most a client can do for freshness).

    No session: a workload keeps one process on it (`pipelines`). Several at once would
    work (each operation has its own handle), but find nothing more, and would move the
    recorded findings' seeds (tests/regressions)."""

    pipelines = False

    def __init__(self, engine: PysyncobjEngine, index: int, node: int) -> None:
        self._engine = engine
        self.index = index
        self.node = node

    def write(self, command: Any, now_ms: int, timeout_ms: int | None = None) -> int:
        if not isinstance(command, Put):
            raise InvalidArgument("command", "the pysyncobj engine runs only kv puts")
        return self._engine.submit(self, command.key.decode(), command.value.decode())

    def read(self, query: Any, now_ms: int, **_: Any) -> int:
        if not isinstance(query, Range) or query.range_end:
            raise InvalidArgument("query", "the pysyncobj engine runs only single-key reads")
        return self._engine.read(self, query.key.decode())


# -- the engine --------------------------------------------------------------------------


class PysyncobjEngine:
    name = "pysyncobj"
    version = str(PYSYNCOBJ_VERSION)
    checks_sessions = False  # pysyncobj has no client sessions
    read_rounds = False  # nor ReadIndex (so its random mix draws as before late-answers)

    def __init__(self, settings: PysyncobjSettings | None = None) -> None:
        self.settings_ = settings or PysyncobjSettings()
        self.sim: Simulator = cast("Simulator", None)
        self.nodes: dict[int, _Node] = {}
        self._pnodes: dict[int, Node] = {}
        self.clients: list[_ClientAdapter] = []
        self._current: _Node | None = None
        self._ops: dict[int, _Op] = {}
        self._next_handle = 0
        self._completions: list[tuple[_ClientAdapter, Completion]] = []
        self._probe: _Op | None = None
        self._link_sends: dict[tuple[int, int], int] = {}  # within the current step
        self._link_step = -1
        self._patched: _Patched | None = None
        self.overflows = 0  # connections reset by MAX_SENDS_PER_LINK_PER_STEP

    def attach(self, sim: Simulator) -> None:
        self.sim = sim
        self.checks = AppliedLogChecks(sim)
        self._pnodes = {i: Node(i) for i in sim.ids}
        for i in sim.ids:
            rng = random.Random(sim.rng_nodes.getrandbits(64))
            self.nodes[i] = _Node(i, sim.node_clock(i), rng)

    def settings(self) -> Mapping[str, int | bool | str]:
        return attrs.asdict(self.settings_)

    def timing(self) -> Timing:
        return Timing(None, None)  # pysyncobj promises no bound we hold it to

    def client_handles(self, count: int) -> Sequence[Any]:
        ids = self.sim.ids
        self.clients = [_ClientAdapter(self, k, ids[k % len(ids)]) for k in range(count)]
        return self.clients

    # -- pysyncobj's clock, generator and journal --------------------------------------

    @contextmanager
    def _as(self, node: _Node) -> Iterator[None]:
        """Run pysyncobj code as `node`: its clock and its generator."""
        previous, self._current = self._current, node
        try:
            yield
        finally:
            self._current = previous

    @contextmanager
    def _running(self, node: _Node) -> Iterator[None]:
        """`_as(node)`, where an exception raised inside pysyncobj is a finding and the run
        goes on, as pysyncobj's tick thread logs it and ticks again. One raised in the
        harness's own code (a callback of ours) ends the run as an error."""
        with self._as(node):
            try:
                yield
            except Exception as e:  # noqa: BLE001 - the code under test failed: a finding
                where = _pysyncobj_frame(traceback.extract_tb(e.__traceback__))
                if where is None:
                    raise
                frames = traceback.extract_tb(e.__traceback__)
                where = ([f for f in frames if f.filename.endswith("syncobj.py")] or [where])[-1]
                self.checks.find(
                    "node-exception",
                    f"node {node.id}: {type(e).__name__}: {e} (in pysyncobj "
                    f"{os.path.basename(where.filename)}:{where.lineno} {where.name})",
                    (node.id,),
                    traceback="".join(traceback.format_exception(e, limit=-6)),
                )

    def now_s(self) -> float:
        node = self._current
        assert node is not None, "pysyncobj read the clock outside a node's step"
        return node.clock.local(self.sim.now) / 1000

    def random(self) -> float:
        node = self._current
        assert node is not None, "pysyncobj drew a random number outside a node's step"
        return node.rng.random()

    def make_journal(self, journal_file: Any) -> _WatchedJournal:
        node = self._current
        assert node is not None and journal_file is None
        return _WatchedJournal(lambda index: self._on_truncate(node, index))

    def _on_truncate(self, node: _Node, first_index: int) -> None:
        obj = node.obj  # set: pysyncobj truncates only on messages, after construction
        commit, applied = int(obj.raftCommitIndex), int(obj.raftLastApplied)
        self.checks.on_truncate(node.id, bool(obj._isLeader()), first_index, commit, applied)

    # -- nodes ---------------------------------------------------------------------------

    def running(self, node: int) -> bool:
        return not self.nodes[node].stopped

    def start(self, node: int) -> None:
        """The first time, a new SyncObj; after a crash, the same object goes on (its
        in-memory journal is all it has: a crash here is a long pause)."""
        if self._patched is None:  # from the first start to `finish`, which undoes it
            self._patched = _Patched(self)
            self._patched.__enter__()
        n = self.nodes[node]
        if n.obj is None:
            with self._as(n):
                n.store = _KvStore(
                    lambda i, k, v: self.checks.on_apply(n.id, i, k, v), self.sim.counters
                )
                n.transport = _SimTransport(self, n.id)
                others = [p for i, p in self._pnodes.items() if i != n.id]
                n.obj = SyncObj(
                    self._pnodes[n.id],
                    others,
                    conf=self.settings_.conf(),
                    consumers=[n.store],
                    transport=n.transport,
                )
        n.stopped = False
        n.wake_ms = self.sim.now
        n.dirty = True
        self.sim.record(NodeStarted(self.sim.now, node, 0))
        self._update_links()

    def crash(self, node: int, during_persist: bool) -> None:
        n = self.nodes[node]
        if n.stopped:
            return
        sim = self.sim
        n.stopped = True
        sim.counters.crashes += 1
        sim.record(NodeCrashed(sim.now, node))
        sim.node_stopped(node)
        for op in [o for o in self._ops.values() if o.node == node]:
            self._complete(op, error=OutcomeUnknown(f"node {node} went down"))
        self._update_links()

    def deliver(self, envelope: Envelope) -> None:
        if envelope.damage is not None:
            return  # a damaged frame: its connection would drop it
        node = self.nodes[envelope.dst]
        assert node.transport is not None
        with self._running(node):
            node.transport._onMessageReceived(self._pnodes[envelope.src], envelope.payload)
        node.dirty = True

    def next_wake_ms(self) -> int | None:
        sim = self.sim
        times = [
            sim.now if n.dirty else n.wake_ms
            for n in self.nodes.values()
            if not n.stopped and not sim.paused(n.id)
        ]
        times.extend(op.deadline_ms for op in self._ops.values())
        if sim.healed_at is not None and self._probe is None and self._probe_open():
            times.append(sim.now)
        return min(times) if times else None

    def due(self, now_ms: int) -> list[int]:
        sim = self.sim
        return [
            n.id
            for n in self.nodes.values()
            if not n.stopped and not sim.paused(n.id) and (n.dirty or n.wake_ms <= now_ms)
        ]

    def step_node(self, node: int) -> None:
        n = self.nodes[node]
        n.dirty = False
        with self._running(n):
            n.obj.doTick(0.0)
        n.wake_ms = n.clock.virtual(
            n.clock.local(self.sim.now) + self.settings_.tick_ms, self.sim.now + 1
        )
        if n.obj._isLeader():
            self.checks.on_leader(n.id, int(n.obj.raftCurrentTerm))

    def role(self, node: int) -> tuple[str, int] | None:
        n = self.nodes[node]
        if n.stopped or n.obj is None:
            return None
        role = "leader" if n.obj._isLeader() else "follower"
        return role, int(n.obj.raftCurrentTerm)

    def leader(self) -> int:
        best = (0, 0)
        for node in self.nodes.values():
            obj = node.obj
            if not node.stopped and obj is not None and obj._isLeader():
                best = max(best, (int(obj.raftCurrentTerm), node.id))
        return best[1]

    def membership(self) -> Membership:
        return Membership(self.sim.ids, changeable=False)  # (see `inject`)

    def voters(self, node: int) -> tuple[int, ...]:
        return self.sim.ids

    def serving(self, node: int) -> bool:
        n = self.nodes[node]
        return not n.stopped and bool(n.obj._isLeader())

    def _update_links(self) -> None:
        """Tell each running node which peers it is connected to now: a peer is while both
        links to it are uncut and it runs (and its link was not reset within this step)."""
        cuts = self.sim.network.cuts
        for node in self.nodes.values():
            if node.stopped or node.transport is None:
                continue
            for peer in self.nodes.values():
                if peer is node:
                    continue
                up = not peer.stopped and (node.id, peer.id) not in cuts
                up = up and (peer.id, node.id) not in cuts
                up = (
                    up
                    and self._link_sends.get((node.id, peer.id), 0) <= MAX_SENDS_PER_LINK_PER_STEP
                )
                if up == (peer.id in node.connected):
                    continue
                with self._running(node):
                    if up:
                        node.connected.add(peer.id)
                        node.transport._onNodeConnected(self._pnodes[peer.id])
                    else:
                        node.connected.discard(peer.id)
                        node.transport._onNodeDisconnected(self._pnodes[peer.id])
                node.dirty = True

    # -- the network ---------------------------------------------------------------------

    def send(self, src: int, dst: int, message: Any) -> bool:
        sim = self.sim
        if self._link_step != sim.step:
            self._link_step = sim.step
            self._link_sends.clear()
        sent = self._link_sends.get((src, dst), 0) + 1
        self._link_sends[(src, dst)] = sent
        if sent > MAX_SENDS_PER_LINK_PER_STEP:
            self._reset_link(src, dst)
            return False
        kind = message.get("type", "?") if isinstance(message, dict) else "?"
        term = message.get("term", -1) if isinstance(message, dict) else -1
        # A message storm raises out of here, through pysyncobj's frames, to the loop.
        sim.send(src, dst, message, what=str(kind), term=term, duplicable=True)
        return True

    def _reset_link(self, src: int, dst: int) -> None:
        node = self.nodes[src]
        if dst not in node.connected:
            return
        self.overflows += 1
        self.sim.record(LinkReset(self.sim.now, src, dst))
        node.connected.discard(dst)
        assert node.transport is not None
        node.transport._onNodeDisconnected(self._pnodes[dst])

    # -- clients -------------------------------------------------------------------------

    def _new_op(self, client: int, node: int) -> _Op:
        self._next_handle += 1
        sim = self.sim
        op = _Op(self._next_handle, client, node, sim.now + sim.config.client_op_timeout_ms)
        self._ops[op.handle] = op
        return op

    def submit(self, client: _ClientAdapter, key: str, value: str) -> int:
        op = self._new_op(client.index, client.node)
        node = self.nodes[client.node]
        if node.stopped:
            self._complete(op, error=Unavailable(f"node {node.id} is down"))
            return op.handle
        self._put(node, op, key, value)
        self.sim.record(Submitted(self.sim.now, client.index, node.id, op.handle, key, value))
        return op.handle

    def _put(self, node: _Node, op: _Op, key: str, value: str) -> None:
        with self._running(node):
            node.store.put(  # type: ignore[union-attr]
                key, value, callback=lambda res, err: self._on_result(op, key, value, res, err)
            )
        node.dirty = True

    def read(self, client: _ClientAdapter, key: str) -> int:
        op = self._new_op(client.index, client.node)
        contact = server = self.nodes[client.node]
        if self._runnable(contact):
            leader = contact.obj._getLeader()
            if leader is not None:
                server = self.nodes[int(leader.id)]
        if not self._runnable(server) or server.store is None:
            self._complete(op, error=Unavailable(f"node {server.id} does not answer"))
            return op.handle
        value = server.store.get(key)
        leads = bool(server.obj._isLeader())
        sim = self.sim
        sim.record(ReadServed(sim.now, client.index, server.id, leads, key, value))
        if leads:
            term, applied = int(server.obj.raftCurrentTerm), int(server.obj.raftLastApplied)
            self.checks.on_read(server.id, term, applied, key, value)
        kv = KeyValue(key.encode(), 1, 1, 1, value.encode()) if value else None
        result = RangeResult(revision=0, kvs=(kv,) if kv else (), more=False, count=int(bool(kv)))
        self._complete(op, result=result)
        return op.handle

    def _runnable(self, node: _Node) -> bool:
        return not node.stopped and not self.sim.paused(node.id)

    def _on_result(self, op: _Op, key: str, value: str, res: Any, err: int) -> None:
        sim = self.sim
        if err == FAIL_REASON.SUCCESS:
            index = int(res)
            assert self._current is not None, "pysyncobj answered outside a node's step"
            self.checks.on_ack(self._current.id, index, key, value)
            sim.record(Acknowledged(sim.now, op.handle, index))
            if self._probe is op:
                sim.heal_marks.setdefault("probe_ms", sim.now)
            self._complete(op, index=index)
        elif err in DEFINITE_FAILURES:
            self._complete(op, error=Unavailable(f"pysyncobj: failure {err}"))
        else:
            self._complete(op, error=OutcomeUnknown(f"pysyncobj: failure {err}"))

    def _complete(
        self, op: _Op, result: Any = None, error: Exception | None = None, index: int = 0
    ) -> None:
        if op.done:
            return  # a late callback for an operation already timed out or cut off
        op.done = True
        del self._ops[op.handle]
        done = Completion(op.handle, result, cast(Any, error), index)
        sim = self.sim
        sim.counters.on_completion(done)
        outcome = "ok" if error is None else type(error).__name__
        sim.record(OperationDone(sim.now, op.client, op.handle, outcome))
        if op is self._probe:
            if error is not None:  # not yet: try again at the next step, until the bound
                self._probe = None
            return
        self._completions.append((self.clients[op.client], done))

    def step_clients(self) -> None:
        sim = self.sim
        for op in [o for o in self._ops.values() if o.deadline_ms <= sim.now]:
            self._complete(op, error=OutcomeUnknown("no answer within the operation timeout"))
        if sim.healed_at is not None and self._probe is None and self._probe_open():
            self._submit_probe()
        while self._completions:
            pending, self._completions = self._completions, []
            for client, done in pending:
                sim.workload.completed(client.index, done, sim.now)

    def _probe_open(self) -> bool:
        sim = self.sim
        assert sim.healed_at is not None
        return "probe_ms" not in sim.heal_marks and sim.now < (
            sim.healed_at + sim.config.heal_timeout_ms
        )

    def _submit_probe(self) -> None:
        sim = self.sim
        node = self.nodes[1 + (sim.step % len(self.nodes))]
        op = self._new_op(-1, node.id)
        self._probe = op
        self._put(node, op, "probe", f"heal-{sim.now}")

    # -- faults, healing, the end ----------------------------------------------------------

    def inject(self, fault: Fault) -> bool:
        if isinstance(fault, DiskFault):
            # Its journal is in memory (a crash here is a long pause): a disk fault has
            # nothing to act on. Counted, so the report says what was not applied.
            counts = self.sim.counters.disk
            counts["not_applicable"] = counts.get("not_applicable", 0) + 1
            return True
        if isinstance(fault, ChangeMembership):
            # pysyncobj's dynamic membership is a different API from ours; refused up front
            # (`simulate_pysyncobj`), so reaching here is a harness bug.
            raise TypeError(f"membership changes are not driven on pysyncobj: {fault!r}")
        return False

    def heal(self) -> None:
        for node in self.nodes.values():
            if node.stopped:
                self.start(node.id)
        self._update_links()

    def healed(self) -> tuple[str, str] | None:
        marks = self.sim.heal_marks
        if "leader_ms" not in marks:
            return "liveness", "no leader was elected"
        if "probe_ms" not in marks:
            return "liveness", "no write was acknowledged"
        if not self._converged():
            return "liveness", "replicas differ"
        return None

    def _converged(self) -> bool:
        indexes = {
            (int(n.obj.raftLastApplied), int(n.obj.raftCommitIndex)) for n in self.nodes.values()
        }
        if len(indexes) != 1:
            return False
        applied, commit = indexes.pop()
        if applied != commit:
            return False
        stores = {tuple(sorted(n.store.data.items())) for n in self.nodes.values() if n.store}
        if len(stores) != 1:
            self.checks.find(
                "convergence",
                f"the nodes' stores differ at applied index {applied}",
                tuple(self.nodes),
            )
        return True

    def after_step(self) -> None:
        self._update_links()
        for node in self.nodes.values():
            if node.obj is not None:
                self.checks.on_applied_index(node.id, int(node.obj.raftLastApplied))

    def check_final(self) -> None:
        pass

    def finish(self, raised: SafetyViolation | None) -> dict[str, Any] | None:
        """Destroy the nodes, put pysyncobj's globals back, and report every finding (a
        violation the loop raised, liveness say, is one of them)."""
        try:
            if raised is not None:
                kind = raised.invariant.replace(" ", "-")
                self.checks.find(kind, raised.detail, raised.nodes, raised.time_ms, raised.step)
            for node in self.nodes.values():
                if node.obj is not None:
                    with self._as(node):
                        node.obj.destroy()
        finally:
            if self._patched is not None:
                self._patched.__exit__(None, None, None)
                self._patched = None
        self.checks.classify_divergence()
        c, checks = self.sim.counters, self.checks
        c.elections = len(checks.leaders)
        c.leaders = len(set(checks.leaders.values()))
        c.committed_entries = c.proposals_committed = len(checks.applied)
        c.acknowledged_writes = sum(len(ops) for ops in checks.acked.values())
        return checks.violation()


def _pysyncobj_frame(frames: traceback.StackSummary) -> traceback.FrameSummary | None:
    """The innermost frame in pysyncobj, if no frame of ours is further in."""
    for frame in reversed(frames):
        if frame.filename.startswith(_PYSYNCOBJ_DIR):
            return frame
        if frame.filename.startswith(_HARNESS_DIRS):
            return None
    return None


class _Patched:
    """Points pysyncobj's clock, generator, journal factory and logger at the engine for
    the length of a run, and puts them back after."""

    def __init__(self, engine: PysyncobjEngine) -> None:
        self._engine = engine
        self._saved: dict[str, Any] = {}
        self._level = logging.NOTSET

    def __enter__(self) -> None:
        engine = self._engine
        self._saved = {
            name: getattr(_syncobj, name) for name in ("monotonicTime", "random", "createJournal")
        }
        _syncobj.monotonicTime = engine.now_s
        _syncobj.random = _RandomShim(engine)
        _syncobj.createJournal = engine.make_journal
        # pysyncobj logs the faults it notices itself (truncating applied entries); the
        # findings report them, so its logger stays quiet during a run.
        log = logging.getLogger("pysyncobj")
        self._level = log.level
        log.setLevel(logging.CRITICAL + 1)

    def __exit__(self, *exc: object) -> None:
        for name, value in self._saved.items():
            setattr(_syncobj, name, value)
        logging.getLogger("pysyncobj").setLevel(self._level)


class _RandomShim:
    """Stands in for the `random` module inside pysyncobj.syncobj (it calls only
    `random.random()`): the stepping node's own generator."""

    def __init__(self, engine: PysyncobjEngine) -> None:
        self._engine = engine

    def random(self) -> float:
        return self._engine.random()
