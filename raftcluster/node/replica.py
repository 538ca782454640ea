"""The node core: a Raft core, its storage and the cluster state, with no I/O scheduling.

A `Replica` does everything a node does except deciding when things happen: the trio
runtime and the simulator both drive it, with the same calls.

Inputs (each returns at once; none blocks or reads a clock):
    tick(now_ms)                                   time passes (the node's clock)
    receive(message)                               a RaftMessage from a peer
    peer_unreachable(peer)                         every connection to a peer closed
    client_request(client, request_id, req, now)   a ClientRequest (raftcluster.node.protocol)

The Ready cycle, in three calls so that a shell can run the blocking one elsewhere:
    work = replica.prepare()      take what the Raft core has ready (and a snapshot to save)
    replica.persist(work)         the only call that does storage I/O: a new term and vote,
                                  the snapshot(s), the entries, the hard state with the new
                                  commit index, then one sync if `work.must_sync` (a new
                                  commit index alone is written, not synced: a later sync
                                  carries it). It touches nothing but the
                                  storage and `work`, so a shell may run it in a worker
                                  thread while other inputs come in.
    out = replica.complete(work)  restore/apply committed entries, serve reads, settle
                                  requests, advance the core; `out.messages` may be sent
                                  now (they depend only on what `persist` made durable)
Snapshots (snapshotting.py): `take_snapshot_job()` hands the shell a copy of the state to
encode and write (`job.run()`); `snapshot_written(job, written)` gives the result back,
and the next cycle compacts and records it.
`has_ready()` says whether a cycle has anything to do; `cycle()` runs all three.
Replies to clients collect in an outbox: `complete()` returns them in `out.replies`, and
`take_replies()` drains them at any time (a NotLeader answer need not wait for a cycle);
replies waiting make `has_ready()` true, so none is left behind.
`next_deadline_ms()` is when `tick` next has work.

Every output is a plain value. Randomness comes only from the injected `random.Random`.
See docs/engine.md for the cycle, the guarantees and the settings.
"""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Callable, Hashable, Sequence

import attrs

from raftcluster.node.config import ReplicaConfig
from raftcluster.node.pending import Pending, PendingTable, Waiting
from raftcluster.node.protocol import (
    Changed,
    ChangeMembership,
    ClientReply,
    ClientRequest,
    Consistency,
    GetStatus,
    LeaderTransferred,
    MembershipChanged,
    MembershipOp,
    MemberStatus,
    NodeStatus,
    NotLeader,
    Query,
    QueryResult,
    RefuseCode,
    Refused,
    Submit,
    TransferLeadership,
    WaitChanges,
    Written,
)
from raftcluster.node.services import LeaderService, QuorumContact, SessionExpiry
from raftcluster.node.session_time import leader_stamped
from raftcluster.node.snapshotting import SnapshotJob, WrittenSnapshot
from raftcluster.raft import errors as raft_errors
from raftcluster.raft.core import RaftCore
from raftcluster.raft.messages import RaftMessage
from raftcluster.raft.ready import LogPosition, ReadState, Ready, Role
from raftcluster.raft.types import (
    ConfChange,
    ConfChangeOp,
    DurableState,
    Entry,
    EntryKind,
    HardState,
    Member,
    Snapshot,
)
from raftcluster.storage.interface import Storage
from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode, encode
from statemachine.errors import DecodeError, InvalidArgument, LimitExceeded
from statemachine.kv.part import KvPart
from statemachine.sessions.messages import CloseSession, KeepAlive, OpenSession, SessionRequest
from statemachine.snapshot_copy import copy_state

# What a client may propose: session commands only, so every write is applied at most once
# and nobody but the leader's services proposes ExpireSessions.
CLIENT_COMMANDS: tuple[type[Message], ...] = (OpenSession, KeepAlive, CloseSession, SessionRequest)

_MEMBERSHIP_OPS = {
    MembershipOp.ADD_LEARNER: ConfChangeOp.ADD_LEARNER,
    MembershipOp.PROMOTE: ConfChangeOp.ADD_VOTER,
    MembershipOp.REMOVE: ConfChangeOp.REMOVE_NODE,
}


@attrs.frozen
class Reply:
    """An answer to send to `client` for its request `request_id`."""

    client: Hashable
    request_id: int
    message: ClientReply


@attrs.frozen
class AppliedEvent:
    """An event the state machine emitted while applying the entry at `index`."""

    index: int
    event: bytes  # encoded


@attrs.frozen
class Work:
    """One Ready cycle's work: what `persist` writes and `complete` finishes."""

    ready: Ready
    compacted: Snapshot | None = None  # a local snapshot to save before the Ready's writes
    # The new term and vote with the commit index already on disk, written before any
    # snapshot or entry: a crash may keep any prefix of the batch, and a disk holding
    # entries of a term above its hard state's is one the core refuses to start from.
    term_first: HardState | None = None
    # Whether `persist` syncs: entries, a snapshot, a new term or vote (see
    # `Ready.must_sync`). When False, `persist` only buffers (no I/O to wait for).
    # (Derived once here: the cycle, the persist and the simulator's checks all ask.)
    must_sync: bool = attrs.field(init=False)

    @must_sync.default
    def _must_sync(self) -> bool:
        return self.ready.must_sync or self.compacted is not None


@attrs.frozen
class Output:
    """What a completed cycle leaves the shell to do: send, reply, dispatch."""

    messages: tuple[RaftMessage, ...] = ()
    replies: tuple[Reply, ...] = ()
    events: tuple[AppliedEvent, ...] = ()
    conf_changes: tuple[ConfChange, ...] = ()  # applied membership steps, in order


@attrs.frozen
class ReplicaHooks:
    """Ways into a replica for fault-injection harnesses only (the simulator's planted
    bugs, `chaos/sim/planted.py`, which show that the checkers can fail). Production never
    sets them. Each is called where its name says and may take over what follows.

    `before_read(replica, query)`: a read that is not `stale` arrived; a reply returned
    answers it at once (skipping the ReadIndex round), None lets the replica go on."""

    before_read: Callable[[Replica, Query], ClientReply | None] | None = None


@attrs.define
class _ReadBatch:
    """Linearizable reads that share one ReadIndex request."""

    tickets: list[int]
    asked_ms: int
    index: int | None = None  # known once the ReadState arrives


class Replica:
    def __init__(
        self,
        config: ReplicaConfig,
        storage: Storage,
        rng: random.Random,
        now_ms: int = 0,
        *,
        state: ClusterState | None = None,
        services: Sequence[LeaderService] | None = None,
        hooks: ReplicaHooks | None = None,
        durable: DurableState | None = None,
    ) -> None:
        """`durable`: what `storage.load()` returned, if the shell loaded it already (to
        decide how the node may start); else the replica loads it."""
        self.config = config
        self._hooks = hooks if hooks is not None else ReplicaHooks()
        self.node_id = config.node_id
        self._storage = storage
        self._now_ms = now_ms
        self._state = state if state is not None else ClusterState()
        if durable is None:
            durable = storage.load()
        snapshot_index = 0
        if durable.snapshot is not None:
            self._state.restore(durable.snapshot.data)
            snapshot_index = durable.snapshot.meta.index
        self._core = RaftCore(config.raft, durable, rng, now_ms)
        self._stored_hard_state = durable.hard_state  # the last one handed to persist
        self._applied = snapshot_index
        self._snapshot_index = snapshot_index
        self._to_save: Snapshot | None = None
        # Snapshots off the event loop (snapshotting.py): a job copied and not yet taken
        # by the shell, the index of the one out being run (0: none), its result back.
        self._snapshot_job: SnapshotJob | None = None
        self._encoding = 0
        self._encoded: tuple[SnapshotJob, WrittenSnapshot] | None = None
        self._work: Work | None = None
        self._pending = PendingTable(config.max_pending_requests)
        self._writes: dict[int, int] = {}  # log index -> ticket of the write proposed there
        # Read contexts carry a nonce of this incarnation: an answer meant for a previous
        # incarnation (still in the network after a restart) can never match a new read.
        self._read_nonce = rng.getrandbits(64)
        self._read_seq = 0
        self._unasked: list[int] = []  # tickets of reads not yet in a ReadIndex request
        self._batches: dict[bytes, _ReadBatch] = {}
        self._watches: list[int] = []
        self._watched_revision = self._revision()
        self._transfers: list[int] = []
        self._outbox: list[Reply] = []
        self._contact = QuorumContact(self.node_id)
        if services is None:
            services = (SessionExpiry(config.session_expiry_interval_ms, now_ms),)
        self._services = tuple(services)
        self._service_inflight: dict[str, int] = {}  # service name -> index proposed at

    # -- inspection -------------------------------------------------------------------

    @property
    def core(self) -> RaftCore:
        return self._core

    @property
    def state(self) -> ClusterState:
        return self._state

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def snapshot_index(self) -> int:
        return self._snapshot_index

    @property
    def pending_requests(self) -> int:
        return len(self._pending)

    def status(self) -> NodeStatus:
        s = self._core.status()
        return NodeStatus(
            node_id=s.node_id,
            role=s.role.name.lower(),
            term=s.term,
            leader=s.leader,
            commit_index=s.commit,
            applied_index=self._applied,
            voters=s.conf.voters,
            learners=s.conf.learners,
            snapshot_index=self._snapshot_index,
            last_index=s.last_index,
            members=self._members(),
        )

    def _members(self) -> tuple[MemberStatus, ...]:
        """Every member of the configuration in force, as the log records it."""
        core = self._core
        conf = core.conf
        out = []
        for node_id in sorted(conf.voters + conf.learners):
            recorded = conf.member(node_id) or Member(node_id)
            out.append(
                MemberStatus(
                    node_id=node_id,
                    role="voter" if node_id in conf.voters else "learner",
                    addresses=recorded.addresses,
                    incarnation=recorded.incarnation,
                    match_index=core.match_index(node_id),
                    caught_up=node_id == self.node_id or core.caught_up(node_id),
                    promote_when_caught_up=recorded.promote_when_caught_up,
                )
            )
        return tuple(out)

    # -- inputs -----------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        """Time is now `now_ms` on this node's clock (never earlier than before)."""
        self._now_ms = max(self._now_ms, now_ms)
        self._core.tick(self._now_ms)
        self._expire()
        self._retry_reads()
        self._run_services()
        self._promote_caught_up()

    def receive(self, message: RaftMessage) -> None:
        """A message from a peer (addressed to this node; the transport checked that)."""
        self._contact.heard(message.src, self._now_ms)
        self._core.step(message)

    def peer_unreachable(self, peer: int) -> None:
        """Every connection to node `peer` closed (`RaftCore.peer_unreachable`): a
        follower whose leader that is campaigns soon instead of after its timeout."""
        self._core.peer_unreachable(peer, self._now_ms)

    def client_request(
        self, client: Hashable, request_id: int, request: ClientRequest, now_ms: int
    ) -> None:
        """A request from `client`; its answer comes out later as a `Reply` (in a cycle's
        output or from `take_replies`). A duplicate of a request still pending is ignored.
        """
        self._now_ms = max(self._now_ms, now_ms)
        if self._pending.is_pending(client, request_id):
            return
        if isinstance(request, Submit):
            self._submit(client, request_id, request)
        elif isinstance(request, Query):
            self._query(client, request_id, request)
        elif isinstance(request, GetStatus):
            self._reply(client, request_id, self.status())
        elif isinstance(request, WaitChanges):
            self._wait_changes(client, request_id, request)
        elif isinstance(request, ChangeMembership):
            self._change_membership(client, request_id, request)
        elif isinstance(request, TransferLeadership):
            self._transfer(client, request_id, request)
        else:
            kind = type(request).__name__
            self._refuse(client, request_id, RefuseCode.BAD_REQUEST, f"unknown request {kind}")

    def take_replies(self) -> tuple[Reply, ...]:
        if not self._outbox:
            return ()  # (asked after every input)
        out = tuple(self._outbox)
        self._outbox.clear()
        return out

    def next_deadline_ms(self) -> int:
        """The earliest time at which `tick` has something to do."""
        due = self._core.next_deadline_ms()
        pending = self._pending.next_deadline_ms()
        if pending is not None:
            due = min(due, pending)
        retry = self.config.read_retry_after_ms
        for batch in self._batches.values():
            if batch.index is None:
                due = min(due, batch.asked_ms + retry)
        if self._core.role == Role.LEADER:
            for service in self._services:
                service_due = service.next_due_ms()
                if service_due > self._now_ms:  # an overdue but blocked service waits for events
                    due = min(due, service_due)
        return due

    # -- the Ready cycle --------------------------------------------------------------

    def has_ready(self) -> bool:
        """Whether a cycle has anything to do: the core's Ready, a snapshot to save, or
        replies waiting (a cycle's `complete` returns them; `work.must_sync` is False
        when there is nothing to sync)."""
        if self._unasked:
            self._ask_reads()
        return (
            self._core.has_ready()
            or self._to_save is not None
            or self._encoded is not None
            or bool(self._outbox)
        )

    def prepare(self) -> Work:
        """Take the core's Ready (and a local snapshot to save). `persist` it next."""
        assert self._work is None, "complete() the previous work first"
        self._compact_encoded()
        self._ask_reads()
        rd = self._core.ready()
        work = Work(rd, self._to_save, self._term_first(rd))
        self._to_save = None
        if rd.hard_state is not None:
            self._stored_hard_state = rd.hard_state
        self._work = work
        return work

    def _term_first(self, rd: Ready) -> HardState | None:
        hs, stored = rd.hard_state, self._stored_hard_state
        if hs is None or (hs.term, hs.vote) == (stored.term, stored.vote):
            return None
        if not rd.entries and rd.snapshot is None and self._to_save is None:
            return None  # the hard state is the batch's only write
        return HardState(hs.term, hs.vote, stored.commit)

    def persist(self, work: Work) -> None:
        """Make `work` durable, storage I/O only, in an order such that a crash after any
        prefix of these writes leaves a disk the node can start from: the new term and
        vote (with the old commit index), the snapshots, the entries, then the hard state
        with the new commit index (never above the log), then one sync if `must_sync`.
        Without a sync (only the commit index changed) the writes stay buffered in the
        storage, and a crash may lose them: the node then restarts with an older commit
        index and learns the newer one again from the leader."""
        storage = self._storage
        rd = work.ready
        if work.term_first is not None:
            storage.set_hard_state(work.term_first)
        if work.compacted is not None:
            storage.save_snapshot(work.compacted)
        if rd.snapshot is not None:
            storage.save_snapshot(rd.snapshot)
        if rd.entries:
            storage.append(rd.entries)
        if rd.hard_state is not None:
            storage.set_hard_state(rd.hard_state)
        if work.must_sync:
            storage.sync()

    def complete(self, work: Work) -> Output:
        """Apply and answer what `work` made possible, then advance the core.

        Raises `UnknownEntry` for a committed entry this replica cannot apply (it runs
        other state machine parts than the leader): the replica must not be used after."""
        assert work is self._work, "complete() takes the work last prepared"
        self._work = None
        rd = work.ready
        events: list[AppliedEvent] = []
        confs: list[ConfChange] = []
        if rd.snapshot is not None:
            self._restore(rd.snapshot)
        for entry in rd.committed_entries:
            self._apply(entry, events, confs)
        for read_state in rd.read_states:
            self._read_index_known(read_state)
        self._core.advance(rd)
        # (Each guarded here: most cycles carry only messages, and one runs per input.)
        if self._batches:
            self._serve_reads()
        if self._watches:
            self._serve_watches()
        if self._transfers:
            self._settle_transfers()
        self._maybe_snapshot()
        return Output(
            rd.messages,
            self.take_replies(),
            tuple(events) if events else (),
            tuple(confs) if confs else (),
        )

    def cycle(self) -> Output:
        """prepare, persist and complete in a row, and run a snapshot job at once (the
        next cycle compacts there): a synchronous shell's way (test harnesses)."""
        work = self.prepare()
        self.persist(work)
        out = self.complete(work)
        job = self.take_snapshot_job()
        if job is not None:
            self.snapshot_written(job, job.run())
        return out

    # -- snapshots (snapshotting.py) ----------------------------------------------------

    def take_snapshot_job(self) -> SnapshotJob | None:
        """The state copied for a snapshot, for the shell to run (once), or None."""
        job, self._snapshot_job = self._snapshot_job, None
        return job

    def snapshot_written(self, job: SnapshotJob, written: WrittenSnapshot) -> None:
        """`job` ran (its file is durable): the next cycle compacts the log at `job.index`
        and records the snapshot."""
        assert job.index == self._encoding and self._encoded is None, "one job at a time"
        self._encoded = (job, written)

    def _compact_encoded(self) -> None:
        if self._encoded is None:
            return
        (job, written), self._encoded = self._encoded, None
        self._encoding = 0
        if job.index <= self._snapshot_index:
            return  # a leader's snapshot went past it meanwhile
        # Only now, the file being durable (`job.run`), may the snapshot be recorded and
        # the log compacted: `persist` then writes just the record (the storage found the
        # staged file), and the storage drops covered segments once that record is synced.
        snapshot = self._core.compact(job.index, written.snapshot.data)
        assert snapshot.meta == written.snapshot.meta, "the job's position is the core's"
        self._to_save = snapshot
        self._snapshot_index = job.index

    # -- applying ---------------------------------------------------------------------

    def _apply(self, entry: Entry, events: list[AppliedEvent], confs: list[ConfChange]) -> None:
        assert entry.index == self._applied + 1, f"apply {entry.index} after {self._applied}"
        result = b""
        conf: ConfChange | None = None
        if entry.kind == EntryKind.CONF_CHANGE:
            conf = decode(entry.data, ConfChange)  # our own log: the core decoded it already
            confs.append(conf)
        elif entry.data:
            applied = self._state.apply_committed(entry.index, entry.data)  # UnknownEntry
            result = applied.result
            events.extend(AppliedEvent(entry.index, e) for e in applied.events)
        self._applied = entry.index
        ticket = self._writes.pop(entry.index, None)
        if ticket is not None:
            self._settle_write(ticket, entry, result, conf)

    def _settle_write(
        self, ticket: int, entry: Entry, result: bytes, conf: ConfChange | None
    ) -> None:
        pending = self._pending.pop(ticket)
        assert pending is not None, "a settled write left its index behind"
        if entry.term != pending.term:
            message = (
                f"index {entry.index} was committed with an entry of term {entry.term}, "
                f"not the write proposed in term {pending.term}: it was not applied"
            )
            self._answer(pending, Refused.of(RefuseCode.NOT_COMMITTED, message))
        elif conf is not None:
            self._answer(
                pending, MembershipChanged(entry.index, conf.conf.voters, conf.conf.learners)
            )
        else:
            self._answer(pending, Written(entry.index, result))

    def _restore(self, snapshot: Snapshot) -> None:
        index = snapshot.meta.index
        self._state.restore(snapshot.data)
        self._applied = self._snapshot_index = index
        for covered in sorted(i for i in self._writes if i <= index):
            pending = self._pending.pop(self._writes.pop(covered))
            assert pending is not None
            message = f"a snapshot covered index {covered}; retry the same request to learn"
            self._answer(pending, Refused.of(RefuseCode.OUTCOME_UNKNOWN, message))

    def _maybe_snapshot(self) -> None:
        if (
            self._encoding
            or self._applied - self._snapshot_index < self.config.snapshot_every_entries
        ):
            return
        meta = self._core.snapshot_meta(self._applied)
        self._snapshot_job = SnapshotJob(meta, copy_state(self._state), self._storage)
        self._encoding = self._applied

    # -- writes -----------------------------------------------------------------------

    def _submit(self, client: Hashable, request_id: int, request: Submit) -> None:
        checked = _check_client_command(request.command, self._state)
        if isinstance(checked, str):
            self._refuse(client, request_id, RefuseCode.BAD_REQUEST, checked)
            return
        command = leader_stamped(checked, request.command, self._now_ms)
        self._propose(client, request_id, request, lambda: self._core.propose(command))

    def _change_membership(
        self, client: Hashable, request_id: int, request: ChangeMembership
    ) -> None:
        op = _MEMBERSHIP_OPS[request.op]
        member = None
        if request.op == MembershipOp.ADD_LEARNER:
            conf = self._core.conf
            if request.node_id in conf.voters + conf.learners:
                role = "voter" if request.node_id in conf.voters else "learner"
                why = f"node {request.node_id} is already a {role}: choose another id"
                self._refuse(client, request_id, RefuseCode.CONF_CHANGE_REJECTED, why)
                return
            try:
                member = Member(
                    request.node_id,
                    request.addresses,
                    request.incarnation,
                    request.promote_when_caught_up,
                )
            except InvalidArgument as e:
                self._refuse(client, request_id, RefuseCode.BAD_REQUEST, str(e))
                return
        self._propose(
            client,
            request_id,
            request,
            lambda: self._core.propose_conf_change(op, request.node_id, member=member),
        )

    def _promote_caught_up(self) -> None:
        """Leader: promote the learners added with `promote_when_caught_up` once they have
        caught up (one step at a time: a refusal, another change uncommitted, waits for a
        later tick)."""
        core = self._core
        if core.role != Role.LEADER:
            return
        conf = core.conf
        if not conf.learners:
            return
        for member in conf.members:
            node_id = member.node_id
            wanted = member.promote_when_caught_up and node_id in conf.learners
            if wanted and core.caught_up(node_id):
                # Not now (a change in progress): a later tick tries again.
                with contextlib.suppress(raft_errors.RaftError):
                    core.propose_conf_change(ConfChangeOp.ADD_VOTER, node_id)
                return

    def _propose(
        self,
        client: Hashable,
        request_id: int,
        request: ClientRequest,
        call: Callable[[], LogPosition],
    ) -> None:
        if not self._admit(client, request_id):
            return
        try:
            position = call()
        except raft_errors.NotLeader as e:
            self._reply(client, request_id, NotLeader(e.leader))
            return
        except raft_errors.ConfChangeRejected as e:
            self._refuse(client, request_id, RefuseCode.CONF_CHANGE_REJECTED, e.reason)
            return
        except raft_errors.RequestDropped as e:
            self._refuse(client, request_id, RefuseCode.UNAVAILABLE, e.reason)
            return
        except LimitExceeded as e:
            self._refuse(client, request_id, RefuseCode.BAD_REQUEST, str(e))
            return
        pending = self._pending.add(
            client,
            request_id,
            request,
            Waiting.WRITE,
            self._deadline(self.config.request_timeout_ms),
        )
        pending.index, pending.term = position.index, position.term
        replaced = self._writes.get(position.index)
        if replaced is not None:
            # A write of an earlier term at this index: our log no longer holds it, and a new
            # leader holds every committed entry, so it was never committed.
            old = self._pending.pop(replaced)
            assert old is not None
            message = f"index {position.index} now holds an entry of term {position.term}"
            self._answer(old, Refused.of(RefuseCode.NOT_COMMITTED, message))
        self._writes[position.index] = pending.ticket

    def _admit(self, client: Hashable, request_id: int) -> bool:
        """Leader and room for one more pending request? Otherwise answer and say no."""
        core = self._core
        if core.role != Role.LEADER:
            self._reply(client, request_id, NotLeader(core.leader))
            return False
        if self._pending.full():
            self._refuse_overloaded(client, request_id)
            return False
        return True

    # -- reads ------------------------------------------------------------------------

    def _query(self, client: Hashable, request_id: int, request: Query) -> None:
        if request.consistency == Consistency.STALE:
            self._reply(client, request_id, self.read_now(request))
            return
        before_read = self._hooks.before_read
        if before_read is not None:
            taken = before_read(self, request)
            if taken is not None:
                self._reply(client, request_id, taken)
                return
        core = self._core
        if core.role != Role.LEADER and core.leader == 0:
            self._reply(client, request_id, NotLeader(0))
            return
        if self._pending.full():
            self._refuse_overloaded(client, request_id)
            return
        pending = self._pending.add(
            client, request_id, request, Waiting.READ, self._deadline(self.config.read_timeout_ms)
        )
        self._unasked.append(pending.ticket)

    def read_now(self, request: Query) -> QueryResult:
        """`request` answered from the local state as applied now (no leadership check)."""
        return QueryResult(self._applied, self._state.query(request.query))

    def _ask_reads(self) -> None:
        """One ReadIndex request for every read that came in since the last one."""
        if not self._unasked:
            return
        tickets, self._unasked = self._unasked, []
        self._read_seq += 1
        context = struct.pack(">QQ", self._read_nonce, self._read_seq)
        try:
            self._core.read_index(context)
        except raft_errors.NotLeader as e:
            self._answer_all(tickets, NotLeader(e.leader))
            return
        except raft_errors.RequestDropped as e:
            self._answer_all(tickets, Refused.of(RefuseCode.OVERLOADED, e.reason))
            return
        self._batches[context] = _ReadBatch(tickets, self._now_ms)

    def _read_index_known(self, read_state: ReadState) -> None:
        batch = self._batches.get(read_state.context)
        if batch is not None and batch.index is None:  # a duplicate answer changes nothing
            batch.index = read_state.index

    def _serve_reads(self) -> None:
        if not self._batches:
            return
        done = [
            c for c, b in self._batches.items() if b.index is not None and b.index <= self._applied
        ]
        for context in done:
            for ticket in self._batches.pop(context).tickets:
                pending = self._pending.pop(ticket)
                if pending is not None:  # else it timed out already
                    assert isinstance(pending.request, Query)
                    self._answer(pending, self.read_now(pending.request))

    def _retry_reads(self) -> None:
        """Ask again for batches with no answer: the request or its answer may be lost, or
        the leader that took it stepped down (it never answers then)."""
        if not self._batches:
            return
        cutoff = self._now_ms - self.config.read_retry_after_ms
        stale = [c for c, b in self._batches.items() if b.index is None and b.asked_ms <= cutoff]
        for context in stale:
            live = [t for t in self._batches.pop(context).tickets if self._pending.get(t)]
            self._unasked.extend(live)

    # -- watches and transfers --------------------------------------------------------

    def _wait_changes(self, client: Hashable, request_id: int, request: WaitChanges) -> None:
        revision = self._revision()
        if revision > request.after_revision:
            self._reply(client, request_id, Changed(revision))
            return
        if self._pending.full():
            self._refuse_overloaded(client, request_id)
            return
        wait_ms = min(request.wait_ms, self.config.max_watch_wait_ms)
        pending = self._pending.add(
            client, request_id, request, Waiting.WATCH, self._deadline(wait_ms)
        )
        self._watches.append(pending.ticket)

    def _serve_watches(self) -> None:
        revision = self._revision()
        if revision == self._watched_revision:
            return
        self._watched_revision = revision
        waiting = []
        for ticket in self._watches:
            pending = self._pending.get(ticket)
            if pending is None:
                continue
            assert isinstance(pending.request, WaitChanges)
            if revision > pending.request.after_revision:
                self._pending.pop(ticket)
                self._answer(pending, Changed(revision))
            else:
                waiting.append(ticket)
        self._watches = waiting

    def _transfer(self, client: Hashable, request_id: int, request: TransferLeadership) -> None:
        if not self._admit(client, request_id):
            return
        if request.to == self.node_id:
            self._reply(client, request_id, LeaderTransferred(self.node_id))
            return
        try:
            self._core.transfer_leadership(request.to)
        except raft_errors.NotLeader as e:
            self._reply(client, request_id, NotLeader(e.leader))
            return
        except raft_errors.RequestDropped as e:
            self._refuse(client, request_id, RefuseCode.UNAVAILABLE, e.reason)
            return
        pending = self._pending.add(
            client,
            request_id,
            request,
            Waiting.TRANSFER,
            self._deadline(self.config.request_timeout_ms),
        )
        self._transfers.append(pending.ticket)

    def _settle_transfers(self) -> None:
        core = self._core
        if not self._transfers or core.role == Role.LEADER or core.leader == 0:
            return  # still leading, or the election it started is not decided yet
        tickets, self._transfers = self._transfers, []
        self._answer_all(tickets, LeaderTransferred(core.leader))

    # -- timers and leader services ---------------------------------------------------

    def _expire(self) -> None:
        for pending in self._pending.expire(self._now_ms):
            if pending.kind == Waiting.WATCH:
                self._answer(pending, Changed(self._revision()))
                continue
            message = f"node {self.node_id} could not answer within the request's deadline"
            if pending.kind == Waiting.WRITE:
                if self._writes.get(pending.index) == pending.ticket:
                    del self._writes[pending.index]
                message += "; the write may still be applied"
            self._answer(pending, Refused.of(RefuseCode.TIMED_OUT, message))

    def leads_with_quorum(self) -> bool:
        """This node leads, heard from a quorum within half an election timeout, and has
        applied an entry of its own term: what it decides from its clock and its applied
        state (its leader services; the cluster service's answers to heartbeats, which
        renew a node's lease) still speaks for the cluster. Well before check-quorum
        deposes a cut-off leader, it stops deciding anything; and a new leader first
        applies what its predecessors committed (a `NodeDown` among it, which a lease
        granted from the older state would contradict)."""
        core = self._core
        if core.role != Role.LEADER or core.term_at(self._applied) != core.term:
            return False
        window = self.config.raft.election_timeout_ms // 2
        return self._contact.has_quorum(core.conf.voters, self._now_ms, window)

    def _run_services(self) -> None:
        now = self._now_ms
        # (Which are due first: it runs at every tick, and the quorum check costs more.)
        due = [service for service in self._services if now >= service.next_due_ms()]
        if not due or not self.leads_with_quorum():
            return
        core = self._core
        for service in due:
            if self._service_inflight.get(service.name, 0) > self._applied:
                continue
            for command in service.run(now):
                try:
                    position = core.propose(encode(command))
                except raft_errors.RaftError:
                    break  # transfer in progress, or being removed: next time
                self._service_inflight[service.name] = position.index

    # -- helpers ----------------------------------------------------------------------

    def _revision(self) -> int:
        kv = self._state.part("kv")
        assert isinstance(kv, KvPart)
        return kv.store.revision

    def _deadline(self, timeout_ms: int) -> int:
        return self._now_ms + timeout_ms

    def _reply(self, client: Hashable, request_id: int, message: ClientReply) -> None:
        self._outbox.append(Reply(client, request_id, message))

    def _refuse(self, client: Hashable, request_id: int, code: RefuseCode, why: str) -> None:
        self._reply(client, request_id, Refused.of(code, why))

    def _refuse_overloaded(self, client: Hashable, request_id: int) -> None:
        limit = self.config.max_pending_requests
        why = f"node {self.node_id} holds {limit} pending requests; retry later"
        self._refuse(client, request_id, RefuseCode.OVERLOADED, why)

    def _answer(self, pending: Pending, message: ClientReply) -> None:
        self._reply(pending.client, pending.request_id, message)

    def _answer_all(self, tickets: list[int], message: ClientReply) -> None:
        for ticket in tickets:
            pending = self._pending.pop(ticket)
            if pending is not None:
                self._answer(pending, message)


def _check_client_command(command: bytes, state: ClusterState) -> Message | str:
    """The decoded `command` if a client may propose it, else why it may not (every
    replica with the same parts must be able to apply it: `ClusterState.apply_committed`)."""
    try:
        decoded = decode(command, Message)
    except DecodeError as e:
        return f"the command does not decode: {e}"
    if not isinstance(decoded, CLIENT_COMMANDS):
        allowed = ", ".join(c.__name__ for c in CLIENT_COMMANDS)
        return f"a client may propose only {allowed}, not {type(decoded).__name__}"
    problem = state.check_command(decoded)
    return decoded if problem is None else problem
