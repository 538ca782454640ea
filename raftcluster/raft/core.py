"""The Raft core: a synchronous, deterministic object with no I/O (the etcd-io/raft shape).

Inputs (each returns at once; none blocks, sleeps, reads a clock or touches a file):
    tick(now_ms)                    time passes (the only clock the core sees)
    step(message)                   a message from a peer arrived
    propose(data) / propose_batch   append commands (leader only)
    propose_conf_change(op, node)   one membership step (leader only)
    read_index(context)             a linearizable read (any node; followers forward it)
    transfer_leadership(to)         hand leadership to a caught-up voter (leader only)
    campaign()                      start an election now
    peer_unreachable(peer, now_ms)  every connection to `peer` closed (its process is gone)
    compact(index, data)            the state machine has a snapshot at `index`

Output: `ready()` returns a frozen `Ready` with everything to do since the last one;
the shell then, in this order,
    1. persists ready.snapshot, ready.entries (which may replace a stored suffix) and
       ready.hard_state, and syncs them (one fsync for the batch) if ready.must_sync
       (not for a change of the commit index alone: see `Ready`);
    2. sends ready.messages (only after step 1: a vote or an acknowledgement in them
       promises exactly what step 1 made durable; the core never emits such a message in
       a Ready that does not also carry the state it depends on);
    3. restores the state machine from ready.snapshot if there is one, applies
       ready.committed_entries in order, and serves each of ready.read_states once the
       state machine has applied up to its index;
    4. calls advance(ready).
`ready()` must not be called again before `advance()`; other inputs may come in between
(their effects go in the next Ready). `has_ready()` says whether there is anything to do,
and `next_deadline_ms()` when `tick` next has something to do.

Randomness (the election jitter) comes only from the injected `random.Random`, so a
seed reproduces a run exactly. See `membership.py` for how configuration changes are
made safe, `reads.py` for ReadIndex, `progress.py` for replication flow control.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from raftcluster.raft.config import RaftConfig
from raftcluster.raft.errors import ConfChangeRejected, NotLeader, RequestDropped
from raftcluster.raft.log import RaftLog, entry_size
from raftcluster.raft.membership import (
    ConfHistory,
    changed_conf,
    identity_current,
    is_member,
    make_conf,
)
from raftcluster.raft.messages import (
    MAX_READ_CONTEXT_BYTES,
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    RaftMessage,
    ReadIndexRequest,
    ReadIndexResponse,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from raftcluster.raft.progress import Inflights, Progress, ProgressState
from raftcluster.raft.quorum import VoteResult, committed_index, vote_result
from raftcluster.raft.reads import ReadQueue
from raftcluster.raft.ready import (
    LogPosition,
    PeerStatus,
    ReadState,
    Ready,
    Role,
    SoftState,
    Status,
)
from raftcluster.raft.types import (
    NONE,
    ConfChange,
    ConfChangeOp,
    ConfState,
    DurableState,
    Entry,
    EntryKind,
    HardState,
    Member,
    Snapshot,
    SnapshotMeta,
)
from statemachine.codec import encode
from statemachine.errors import InvalidArgument, LimitExceeded

_FOREVER_MS = 1 << 62  # a leader always hears itself
# What a leader sends (a tuple: `A | B` would build a union object at every isinstance call).
_FROM_LEADER = (AppendEntries, Heartbeat, InstallSnapshot)


class _IncomingSnapshot:
    """A snapshot a follower is receiving in chunks."""

    __slots__ = ("meta", "leader_term", "data")

    def __init__(self, meta: SnapshotMeta, leader_term: int) -> None:
        self.meta = meta
        self.leader_term = leader_term
        self.data = bytearray()


class RaftCore:
    def __init__(
        self, config: RaftConfig, durable: DurableState, rng: random.Random, now_ms: int = 0
    ) -> None:
        self.config = config
        self.id = config.node_id
        self._rng = rng
        self._now_ms = now_ms
        self._load(durable)
        self._role = Role.FOLLOWER
        self._leader = NONE
        self._votes: dict[int, bool] = {}
        self._progress: dict[int, Progress] = {}
        self._dirty: set[int] = set()  # leader: followers that may have something to send
        self._reads = ReadQueue(config.max_pending_reads)
        self._read_states: list[ReadState] = []
        self._msgs: list[RaftMessage] = []
        self._transferee = NONE
        self._transfer_deadline_ms = 0
        self._uncommitted_bytes = 0
        self._heartbeat_due_ms = 0
        # Leader: when followers not told a new commit index get a message for it alone
        # (None: nobody waits; see RaftConfig.commit_notice_delay_ms), and whether the
        # next flush sends them that message (the notice fell due).
        self._commit_notice_due_ms: int | None = None
        self._commit_notice_now = False
        self._became_leader_ms = 0
        self._quorum_due_ms: int | None = None  # `_check_quorum_due_ms`, until an input changes it
        self._quorum_heard_ms = _FOREVER_MS  # the k-th latest heard time that due time is from
        self._incoming: _IncomingSnapshot | None = None
        # Leader: older snapshots still being sent, by index, each kept until its transfer
        # ends or its follower is gone (so a compaction never restarts a transfer).
        self._sending: dict[int, Snapshot] = {}
        self._outstanding: Ready | None = None
        self._leader_lost_ms = -_FOREVER_MS  # when a link-down last made us drop our leader
        self._prev_soft = SoftState()
        self._reset_election_timer()

    def _load(self, durable: DurableState) -> None:
        hs, snap, entries = durable.hard_state, durable.snapshot, durable.entries
        cfg = self.config
        if snap is None and not entries and hs == HardState() and cfg.peers:
            self._bootstrap(make_conf(cfg.peers, cfg.learners, cfg.members))
            return
        meta = snap.meta if snap is not None else SnapshotMeta(0, 0, ConfState())
        _check_durable(meta, entries, hs)
        self._term, self._vote = hs.term, hs.vote
        self._log = RaftLog(meta.index, meta.term, entries, hs.commit)
        self._confs = ConfHistory(meta.conf, meta.index)
        self._confs.record(entries)
        self._snapshot = snap
        self._pending_restore: Snapshot | None = None
        self._applied = self._applying = meta.index  # the shell restores the snapshot itself
        self._prev_hard = hs

    def _bootstrap(self, conf: ConfState) -> None:
        # Every founding node writes this same entry at (1, 1), committed by construction,
        # so a node that joins later learns the founding configuration from the log.
        data = encode(ConfChange(ConfChangeOp.BOOTSTRAP, NONE, conf))
        self._term, self._vote = 1, NONE
        self._log = RaftLog(0, 0, (), 0)
        self._confs = ConfHistory(ConfState(), 0)
        self._snapshot = None
        self._pending_restore = None
        self._applied = self._applying = 0
        self._prev_hard = HardState()
        self._append_to_log([Entry(1, 1, EntryKind.CONF_CHANGE, data)])
        self._log.commit_to(1)

    # -- inspection -------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader(self) -> int:
        return self._leader

    @property
    def term(self) -> int:
        return self._term

    @property
    def commit_index(self) -> int:
        return self._log.committed

    @property
    def conf(self) -> ConfState:
        """The configuration in force: the latest one in the log, committed or not."""
        return self._confs.current()

    def status(self) -> Status:
        peers = tuple(
            PeerStatus(n, p.match, p.next, p.state.name.lower())
            for n, p in sorted(self._progress.items())
        )
        return Status(
            node_id=self.id,
            role=self._role,
            leader=self._leader,
            term=self._term,
            vote=self._vote,
            commit=self._log.committed,
            applied=self._applied,
            first_index=self._log.first_index(),
            last_index=self._log.last_index(),
            conf=self._confs.current(),
            peers=peers,
        )

    def term_at(self, index: int) -> int | None:
        """The term of the entry at `index`, if the log (or its snapshot) still knows it."""
        return self._log.term(index)

    def log_entries(self) -> tuple[Entry, ...]:
        """The entries held in memory (since the snapshot), for inspection and checks."""
        return tuple(self._log.slice(self._log.first_index(), self._log.last_index() + 1, 1 << 62))

    def describe_progress(self) -> dict[int, str]:
        return {n: p.describe() for n, p in sorted(self._progress.items())}

    # -- time -------------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        """Time is now `now_ms` (never earlier than before). Fires due timers."""
        assert now_ms >= self._now_ms, f"time went back: {now_ms} < {self._now_ms}"
        self._now_ms = now_ms
        if self._role == Role.LEADER:
            self._tick_leader()
        elif now_ms >= self._election_due_ms():
            self._reset_election_timer()
            if self._promotable():
                self._start_campaign(pre=self.config.pre_vote, transfer=False)

    def next_deadline_ms(self) -> int:
        """The earliest time at which `tick` will have something to do."""
        if self._role != Role.LEADER:
            return self._election_due_ms()
        due = self._heartbeat_due_ms
        if self.config.check_quorum:
            due = min(due, self._check_quorum_due_ms())
        if self._transferee != NONE:
            due = min(due, self._transfer_deadline_ms)
        if self._commit_notice_due_ms is not None:
            due = min(due, self._commit_notice_due_ms)
        return max(due, self._now_ms)

    def _election_due_ms(self) -> int:
        return self._election_start_ms + self._randomized_timeout_ms

    def _reset_election_timer(self) -> None:
        timeout = self.config.election_timeout_ms
        self._election_start_ms = self._now_ms
        self._randomized_timeout_ms = timeout + self._rng.randrange(timeout)

    def _in_lease(self) -> bool:
        """Has this node heard from a live leader within the minimum election timeout?"""
        if self._role == Role.LEADER:
            return True
        recent = self._now_ms - self._election_start_ms < self.config.election_timeout_ms
        return self._leader != NONE and recent

    def _tick_leader(self) -> None:
        now = self._now_ms
        if self.config.check_quorum and now >= self._check_quorum_due_ms():
            self._become_follower(self._term, NONE)  # cut off from a majority: step down
            return
        if self._transferee != NONE and now >= self._transfer_deadline_ms:
            self._transferee = NONE  # the target did not take over in time: carry on
        if now >= self._heartbeat_due_ms:
            self._heartbeat_due_ms = now + self.config.heartbeat_interval_ms
            self._broadcast_heartbeat()
        due = self._commit_notice_due_ms
        if due is not None and now >= due:
            self._commit_notice_due_ms = None
            self._commit_notice_now = True
            self._dirty.update(n for n, pr in self._progress.items() if pr.needs_commit)

    def _check_quorum_due_ms(self) -> int:
        """When the leader will have heard from no majority within an election timeout,
        unless it hears from someone before (never within its first timeout). Kept until
        a follower is heard from or the followers change (it is asked at every tick)."""
        if self._quorum_due_ms is None:
            self._quorum_due_ms = self._compute_quorum_due_ms()
        return self._quorum_due_ms

    def _compute_quorum_due_ms(self) -> int:
        heard = {n: p.last_heard_ms for n, p in self._progress.items()}
        heard[self.id] = _FOREVER_MS
        kth = committed_index(self._confs.current().voters, heard)
        self._quorum_heard_ms = kth
        return max(self._became_leader_ms, kth) + self.config.election_timeout_ms

    # -- proposals --------------------------------------------------------------------

    def propose(self, data: bytes) -> LogPosition:
        """Append one command. Raises NotLeader, RequestDropped or LimitExceeded."""
        return self.propose_batch((data,))[0]

    def propose_batch(self, items: Sequence[bytes]) -> tuple[LogPosition, ...]:
        """Append several commands at once: one log append, one persist, one message per
        follower. All or none are taken."""
        self._check_proposable()
        if not items:
            return ()
        first = self._log.last_index() + 1
        entries = [Entry(self._term, first + i, EntryKind.NORMAL, d) for i, d in enumerate(items)]
        size = sum(len(d) for d in items)
        if (
            self._uncommitted_bytes
            and self._uncommitted_bytes + size > self.config.max_uncommitted_bytes
        ):
            raise RequestDropped(
                f"{self._uncommitted_bytes} bytes are not yet committed; retry when they are"
            )
        self._leader_append(entries)
        return tuple(LogPosition(e.index, e.term) for e in entries)

    def propose_conf_change(
        self, op: ConfChangeOp, node_id: int, context: bytes = b"", member: Member | None = None
    ) -> LogPosition:
        """Propose one membership step (see `membership.py`): one at a time, a learner
        promoted only once `caught_up`, never the last voter removed; `member` records an
        added node's addresses and incarnation. Raises NotLeader, RequestDropped, or
        ConfChangeRejected saying why the step is not allowed now."""
        self._check_proposable()
        if self._log.term(self._log.committed) != self._term:
            raise ConfChangeRejected("the leader has not yet committed an entry of its term")
        pending = self._confs.latest_change_index()
        if pending > self._log.committed:
            raise ConfChangeRejected(
                f"a membership change is in progress (index {pending} is not committed yet)"
            )
        conf = self._confs.current()
        new_conf = changed_conf(conf, op, node_id, member)
        if op == ConfChangeOp.ADD_VOTER:
            self._check_caught_up(node_id)
        data = encode(ConfChange(op, node_id, new_conf, context))
        entry = Entry(self._term, self._log.last_index() + 1, EntryKind.CONF_CHANGE, data)
        self._leader_append([entry])
        return LogPosition(entry.index, entry.term)

    def caught_up(self, node_id: int) -> bool:
        """Leader: whether member `node_id` has caught up: its match index (what it
        acknowledged holding) reaches the latest configuration entry (it holds the
        configuration it would be promoted from: it has been heard from, however short
        the log) and is within `max_promotion_lag_entries` of the leader's last index.
        False on a node that does not lead."""
        pr = self._progress.get(node_id)
        lag = self.config.max_promotion_lag_entries
        if pr is None or pr.match < self._confs.latest_change_index():
            return False
        return pr.match + lag >= self._log.last_index()

    def _check_caught_up(self, node_id: int) -> None:
        if not self.caught_up(node_id):
            pr = self._progress.get(node_id)
            raise ConfChangeRejected(
                f"learner {node_id} holds up to {pr.match if pr else 0}, the leader's last "
                f"index is {self._log.last_index()}: promote it once it has caught up"
            )

    def match_index(self, node_id: int) -> int:
        """Leader: what `node_id` acknowledged holding (this node: its last index; 0 for a
        node it does not replicate to, and on a node that does not lead)."""
        if self._role != Role.LEADER:
            return 0
        if node_id == self.id:
            return self._log.last_index()
        pr = self._progress.get(node_id)
        return pr.match if pr is not None else 0

    def _check_proposable(self) -> None:
        if self._role != Role.LEADER:
            raise NotLeader(self.id, self._leader)
        if self._transferee != NONE:
            raise RequestDropped(f"leadership is being transferred to node {self._transferee}")
        if not is_member(self._confs.current(), self.id):
            raise RequestDropped("this leader is being removed from the cluster")

    def _leader_append(self, entries: list[Entry]) -> None:
        self._append_to_log(entries)
        self._uncommitted_bytes += sum(len(e.data) for e in entries)
        self._dirty.update(self._progress)
        if any(e.kind == EntryKind.CONF_CHANGE for e in entries):
            self._sync_progress()

    def _append_to_log(self, entries: Sequence[Entry]) -> None:
        """The one place entries enter the log: keeps the configuration history in step."""
        if not entries:
            return
        if entries[0].index <= self._log.last_index():
            assert self._role != Role.LEADER, "a leader never overwrites its log"
            self._confs.truncate_from(entries[0].index)
        self._log.append(entries)
        self._confs.record(entries)

    # -- membership -------------------------------------------------------------------

    def _promotable(self) -> bool:
        """Whether this node may campaign: a voter of its latest configuration, or of the
        committed one while its removal is still uncommitted. Such a node may hold the
        longest log (a leader that appended its own removal, then lost its quorum): the
        others, still in the older configuration, need its vote and cannot get it, so it
        must be able to win, lead the configuration without itself (its own vote does
        not count there), commit its removal and hand over (`_hand_over`)."""
        conf = self._confs.current()
        if self.id not in conf.voters:
            conf = self._confs.at(self._log.committed)
            if self.id not in conf.voters:
                return False
        return self._identity_current(conf)

    def _identity_current(self, conf: ConfState) -> bool:
        """Whether the log records this node's own incarnation for its id (see `Member`)."""
        return identity_current(conf, self.id, self.config.incarnation)

    def _sync_progress(self) -> None:
        """Leader: follow the configuration in force (it changed in our log)."""
        self._quorum_due_ms = None
        conf = self._confs.current()
        members = (set(conf.voters) | set(conf.learners)) - {self.id}
        for gone in set(self._progress) - members:
            del self._progress[gone]
            self._dirty.discard(gone)
        for new in sorted(members - set(self._progress)):
            self._progress[new] = self._new_progress()
            self._dirty.add(new)
        self._keep_snapshots_in_transfer()  # a removed follower's transfer ends
        if self._transferee != NONE and self._transferee not in conf.voters:
            self._transferee = NONE
        self._maybe_commit()

    def _new_progress(self) -> Progress:
        cfg = self.config
        inflights = Inflights(cfg.max_inflight_msgs, cfg.max_inflight_bytes)
        return Progress(self._log.last_index() + 1, inflights, self._now_ms)

    # -- reads and transfers ----------------------------------------------------------

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read. Its ReadState (with this context) comes out in a
        later Ready once leadership is confirmed. Nothing comes out if leadership is lost
        or a forwarded request is lost: the shell times the read out and retries.
        Raises NotLeader when no leader is known, RequestDropped when the queue is full."""
        if len(context) > MAX_READ_CONTEXT_BYTES:
            raise LimitExceeded("read_index.context", MAX_READ_CONTEXT_BYTES, len(context))
        if self._role == Role.LEADER:
            if self._reads.full():
                raise RequestDropped(f"{len(self._reads)} reads are already pending")
            self._reads.add(context, self.id)
            self._activate_reads()
        elif self._leader != NONE:
            self._send(ReadIndexRequest(self._term, self.id, self._leader, context))
        else:
            raise NotLeader(self.id, NONE)

    def _activate_reads(self) -> None:
        if self._log.term(self._log.committed) == self._term:
            self._reads.activate(self._log.committed)

    def _release_reads(self) -> None:
        if not self._reads.active:
            return  # nothing waits for a round (most heartbeat answers)
        voters = self._confs.current().voters
        rounds = {n: p.read_round for n, p in self._progress.items()}
        rounds[self.id] = self._reads.round
        for read in self._reads.release(committed_index(voters, rounds)):
            if read.requester == self.id:
                self._read_states.append(ReadState(read.index, read.context))
            else:
                reply = ReadIndexResponse(
                    self._term, self.id, read.requester, read.index, read.context
                )
                self._send(reply)

    def transfer_leadership(self, to: int) -> None:
        """Hand leadership to voter `to`: bring its log up to date, then tell it to campaign
        at once. Proposals are refused meanwhile; the attempt is abandoned after an
        election timeout. Raises NotLeader or RequestDropped."""
        if self._role != Role.LEADER:
            raise NotLeader(self.id, self._leader)
        if to == self.id:
            return
        if to not in self._confs.current().voters or to not in self._progress:
            raise RequestDropped(f"node {to} is not a voter")
        self._transferee = to
        self._transfer_deadline_ms = self._now_ms + self.config.election_timeout_ms
        if self._progress[to].match == self._log.last_index():
            self._send(TimeoutNow(self._term, self.id, to))
        else:
            self._dirty.add(to)

    def campaign(self) -> None:
        """Start an election now (with a pre-vote first if configured). A leader, or a node
        that is not a voter, ignores it."""
        if self._role != Role.LEADER and self._promotable():
            self._start_campaign(pre=self.config.pre_vote, transfer=False)

    def peer_unreachable(self, peer: int, now_ms: int) -> None:
        """Every connection to `peer` closed: the peer reset or closed them, as a crashed
        process's kernel does at once (a silence, which only a timeout tells, is not this).

        A follower whose leader that is takes the leader as lost: it forgets it, so it no
        longer counts it as live (it grants pre-votes: `_in_lease`), and campaigns,
        pre-vote first, after a short delay (`_link_down_delay_ms`) instead of the election
        timeout. Safe whatever the signal's truth: a pre-vote wins only with a majority
        that lost the leader too (by their own timeout or their own link-down), and a live
        leader ignores it (check-quorum); a message from the leader restores it and the
        usual timeout. Only with pre-vote on; at most once per election timeout, so that
        a flapping link does not keep the node campaigning. Anything else (a leader, a
        candidate, a link-down of another peer) is ignored."""
        self.tick(now_ms)
        if (
            not self.config.pre_vote
            or self._role != Role.FOLLOWER
            or peer == NONE
            or peer != self._leader
            or now_ms - self._leader_lost_ms < self.config.election_timeout_ms
        ):
            return
        self._leader_lost_ms = now_ms
        self._leader = NONE
        self._election_start_ms = now_ms
        self._randomized_timeout_ms = self._link_down_delay_ms(peer)

    def _link_down_delay_ms(self, lost: int) -> int:
        """The voters left campaign in turn, in id order, a heartbeat interval apart (the
        first at once), so that two of them do not split the vote: the next one tries
        only if the first could not win (its log was behind, or the others had not seen
        the link close yet). A learner keeps the usual timeout (it does not campaign)."""
        voters = sorted(v for v in self._confs.current().voters if v != lost)
        if self.id not in voters:
            return self._randomized_timeout_ms
        return voters.index(self.id) * self.config.heartbeat_interval_ms

    # -- snapshots --------------------------------------------------------------------

    def snapshot_meta(self, index: int) -> SnapshotMeta:
        """The position and configuration `compact(index, ...)` will record: the term of
        the applied entry at `index` and the configuration there (both fixed once applied).
        """
        return self._applied_meta(index, "snapshot_meta.index")

    def compact(self, index: int, data: bytes) -> Snapshot:
        """The state machine's snapshot `data` reflects every entry up to `index` (applied).

        Drops the log up to `index` and keeps the snapshot to send to followers that fall
        behind. Returns the Snapshot (with its term and configuration) for the shell to save
        with `Storage.save_snapshot`.
        """
        snap = Snapshot(self._applied_meta(index, "compact.index"), data)
        self._log.compact(index)
        self._confs.compact_to(index)
        if self._snapshot is not None:
            self._sending[self._snapshot.meta.index] = self._snapshot
        self._snapshot = snap
        self._keep_snapshots_in_transfer()
        return snap

    def _applied_meta(self, index: int, field: str) -> SnapshotMeta:
        """The snapshot position of applied `index` (above the current snapshot), or
        InvalidArgument naming `field`."""
        if not self._log.snapshot_index < index <= self._applied:
            raise InvalidArgument(
                field, f"{index} is not in ({self._log.snapshot_index}, applied={self._applied}]"
            )
        term = self._log.term(index)
        assert term is not None
        return SnapshotMeta(index, term, self._confs.at(index))

    def _keep_snapshots_in_transfer(self) -> None:
        """Forget the older snapshots no transfer in progress uses any more (finished,
        restarted with the newest, or its follower removed)."""
        if self._sending:
            leading = self._role == Role.LEADER
            used = {p.snapshot_index for p in self._progress.values() if leading and _sends_kept(p)}
            self._sending = {i: s for i, s in self._sending.items() if i in used}

    # -- Ready / Advance --------------------------------------------------------------

    def has_ready(self) -> bool:
        self._flush()
        prev, soft, log = self._prev_hard, self._prev_soft, self._log
        return bool(  # (field by field: asked often, and nothing to build)
            self._msgs
            or self._read_states
            or self._term != prev.term
            or self._vote != prev.vote
            or log.committed != prev.commit
            or self._role != soft.role
            or self._leader != soft.leader
            or log.unstable_from <= log.last_index()
            or self._pending_restore is not None
            or self._applying < self._log.committed
        )

    def ready(self) -> Ready:
        assert self._outstanding is None, "advance() the previous Ready first"
        self._flush()
        term, vote, commit = self._term, self._vote, self._log.committed
        prev = self._prev_hard
        assert term >= prev.term, f"term went back: {prev} -> term {term}"
        assert term > prev.term or prev.vote in (NONE, vote), f"two votes: {vote} in {term}"
        assert commit >= prev.commit, f"commit went back: {prev} -> commit {commit}"
        # The states are built only when they changed (field by field: asked every cycle).
        term_or_vote_changed = term != prev.term or vote != prev.vote
        changed = term_or_vote_changed or commit != prev.commit
        soft = None
        if self._role != self._prev_soft.role or self._leader != self._prev_soft.leader:
            soft = self._prev_soft = self._soft_state()
        log, msgs, reads = self._log, self._msgs, self._read_states
        rd = Ready(  # (each part asked for only when there is one: most Readies are small)
            soft_state=soft,
            hard_state=HardState(term, vote, commit) if changed else None,
            entries=log.unstable_entries() if log.unstable_from <= log.last_index() else (),
            snapshot=self._pending_restore,
            committed_entries=self._next_committed() if self._applying < commit else (),
            messages=tuple(msgs) if msgs else (),
            read_states=tuple(reads) if reads else (),
            term_or_vote_changed=term_or_vote_changed,
        )
        msgs.clear()
        reads.clear()
        if rd.committed_entries:
            self._applying = rd.committed_entries[-1].index
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """The shell has done everything `rd` asked for (persisted, sent, applied)."""
        assert rd is self._outstanding, "advance() takes the Ready last returned"
        self._outstanding = None
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.snapshot is not None:
            if self._pending_restore is rd.snapshot:
                self._pending_restore = None
            self._applied = max(self._applied, rd.snapshot.meta.index)
        if rd.entries:
            self._log.stable_to(rd.entries)
        if rd.committed_entries:
            self._applied = rd.committed_entries[-1].index
        assert self._applied <= self._applying <= self._log.committed
        if self._role == Role.LEADER and rd.entries:
            self._maybe_commit()  # our own copy counts once it is durable (nothing else moved)

    def _soft_state(self) -> SoftState:
        return SoftState(self._role, self._leader)

    def _next_committed(self) -> tuple[Entry, ...]:
        low, high = self._applying + 1, self._log.committed + 1
        if low >= high:
            return ()
        return tuple(self._log.slice(low, high, self.config.max_committed_bytes_per_ready))

    def _send(self, message: RaftMessage) -> None:
        self._msgs.append(message)

    # -- the message dispatcher -------------------------------------------------------

    def step(self, m: RaftMessage) -> None:
        """Take a message from a peer. Stale and unexpected messages are ignored."""
        if m.dst != self.id:
            raise InvalidArgument("step.message", f"addressed to {m.dst}, this is {self.id}")
        if m.src == self.id or not self._step_term(m):
            return
        if isinstance(m, VoteRequest):
            self._handle_vote_request(m)
        elif isinstance(m, VoteResponse):
            self._handle_vote_response(m)
        elif isinstance(m, _FROM_LEADER):
            self._from_leader(m)
        elif isinstance(m, TimeoutNow):
            if self._role != Role.LEADER and self._promotable():
                self._start_campaign(pre=False, transfer=True)
        elif isinstance(m, ReadIndexRequest):
            self._handle_read_request(m)
        elif isinstance(m, ReadIndexResponse):
            # Same term, so it comes from this term's one leader.
            self._read_states.append(ReadState(m.index, m.context))
        elif self._role == Role.LEADER:
            self._to_leader(m)

    def _step_term(self, m: RaftMessage) -> bool:
        """Order the message against our term. Returns whether to go on handling it."""
        if m.term > self._term:
            if isinstance(m, VoteRequest):
                if not m.transfer and self.config.check_quorum and self._in_lease():
                    return False  # a live leader exists: do not let this one disrupt it
                if not m.pre_vote:
                    # A follower keeps its election timer: Raft restarts it only for a
                    # vote granted (`_handle_vote_request`) or a leader heard. Restarted
                    # for every hopeless candidate, the one node whose log could win may
                    # never time out first (pre-vote off, a voter gone).
                    keep = self._role == Role.FOLLOWER
                    self._become_follower(m.term, NONE, restart_timer=not keep)
            elif isinstance(m, VoteResponse) and m.pre_vote and m.granted:
                pass  # a granted pre-vote carries the term we would campaign in
            elif isinstance(m, _FROM_LEADER):
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, NONE)
            return True
        if m.term < self._term:
            self._answer_stale(m)
            return False
        return True

    def _answer_stale(self, m: RaftMessage) -> None:
        """A message from an older term. A stale leader is told our term (so that a node
        whose term rose while it was cut off can make the cluster move on); a pre-vote
        is refused explicitly; anything else is dropped."""
        check = self.config.check_quorum or self.config.pre_vote
        if check and isinstance(m, _FROM_LEADER):
            self._send(AppendResponse(self._term, self.id, m.src, index=0, reject=True))
        elif isinstance(m, VoteRequest) and m.pre_vote:
            self._send(VoteResponse(self._term, self.id, m.src, pre_vote=True, granted=False))

    # -- elections --------------------------------------------------------------------

    def _start_campaign(self, pre: bool, transfer: bool) -> None:
        if pre:
            self._become_role(Role.PRE_CANDIDATE, NONE)
            term = self._term + 1
        else:
            self._become_role(Role.CANDIDATE, NONE)
            self._term += 1
            self._vote = self.id
            term = self._term
        self._votes = {self.id: True}
        if not self._count_votes(pre):
            conf = self._confs.current()
            for voter in conf.voters:
                if voter != self.id:
                    recorded = conf.member(voter)
                    self._send(
                        VoteRequest(
                            term,
                            self.id,
                            voter,
                            self._log.last_index(),
                            self._log.last_term(),
                            pre_vote=pre,
                            transfer=transfer,
                            incarnation=recorded.incarnation if recorded is not None else 0,
                        )
                    )

    def _count_votes(self, pre: bool) -> bool:
        """Act on the votes so far. Returns whether the election is decided."""
        result = vote_result(self._confs.current().voters, self._votes)
        if result == VoteResult.WON:
            if pre:
                self._start_campaign(pre=False, transfer=False)
            else:
                self._become_leader()
            return True
        if result == VoteResult.LOST:
            self._become_follower(self._term, NONE)
            return True
        return False

    def _handle_vote_request(self, m: VoteRequest) -> None:
        can_vote = (
            self._vote == m.src
            or (self._vote == NONE and self._leader == NONE)
            or (m.pre_vote and m.term > self._term)
        )
        # The candidate counts this vote as its configuration's member of our id: we vote
        # only if that member is us, this incarnation (see `Member`). For an incarnation
        # added later, the candidate's log then holds the entry that added it, so the vote
        # is in a later term than that entry's, past any term a former self voted in.
        identity = m.incarnation == self.config.incarnation
        if can_vote and identity and self._log.is_up_to_date(m.last_index, m.last_term):
            self._send(VoteResponse(m.term, self.id, m.src, pre_vote=m.pre_vote, granted=True))
            if not m.pre_vote:
                assert m.term == self._term
                self._vote = m.src
                self._reset_election_timer()
        else:
            self._send(VoteResponse(self._term, self.id, m.src, pre_vote=m.pre_vote))

    def _handle_vote_response(self, m: VoteResponse) -> None:
        if self._role == Role.PRE_CANDIDATE and m.pre_vote:
            # A grant carries the term we would campaign in, a refusal the voter's own term.
            expected = self._term + 1 if m.granted else self._term
        elif self._role == Role.CANDIDATE and not m.pre_vote:
            expected = self._term
        else:
            return
        if m.term != expected:
            return
        self._votes.setdefault(m.src, m.granted)  # the first answer of each voter counts
        self._count_votes(m.pre_vote)

    # -- role changes -----------------------------------------------------------------

    def _become_role(self, role: Role, leader: int, restart_timer: bool = True) -> None:
        if self._role == Role.LEADER and role != Role.LEADER:
            self._progress.clear()
            self._dirty.clear()
            self._reads.clear()  # a deposed leader never answers a read
            self._transferee = NONE
            self._commit_notice_due_ms = None
            self._commit_notice_now = False
        self._role = role
        self._leader = leader
        self._votes = {}
        if restart_timer:
            self._reset_election_timer()

    def _become_follower(self, term: int, leader: int, restart_timer: bool = True) -> None:
        if term > self._term:
            self._term, self._vote = term, NONE
            self._incoming = None
        self._become_role(Role.FOLLOWER, leader, restart_timer)

    def _become_leader(self) -> None:
        assert self._role == Role.CANDIDATE and self._vote == self.id
        assert self._log.last_term() <= self._term, "a log entry from a future term"
        self._become_role(Role.LEADER, self.id)
        self._became_leader_ms = self._now_ms
        self._quorum_due_ms = None
        self._heartbeat_due_ms = self._now_ms + self.config.heartbeat_interval_ms
        self._uncommitted_bytes = 0
        self._progress = {}
        self._sending = {}
        self._sync_progress()
        # The no-op of the term: commits every earlier entry and lets reads start.
        self._leader_append([Entry(self._term, self._log.last_index() + 1)])

    # -- follower side ----------------------------------------------------------------

    def _from_leader(self, m: AppendEntries | Heartbeat | InstallSnapshot) -> None:
        assert self._role != Role.LEADER, f"two leaders in term {self._term}"
        if self._role != Role.FOLLOWER or self._leader != m.src:
            self._become_follower(m.term, m.src)
        self._election_start_ms = self._now_ms  # heard from the leader: restart the timer
        if isinstance(m, AppendEntries):
            self._handle_append(m)
        elif isinstance(m, Heartbeat):
            self._log.commit_to(min(m.commit, self._log.last_index()))
            self._send(HeartbeatResponse(self._term, self.id, m.src, m.round))
        else:
            self._handle_snapshot_chunk(m)

    def _handle_append(self, m: AppendEntries) -> None:
        log = self._log
        prev_index, prev_term, entries = m.prev_index, m.prev_term, m.entries
        if prev_index < log.committed:
            # Our committed prefix matches the leader's log: look only at what lies beyond.
            skip = log.committed - prev_index
            for e in entries[:skip]:
                held = log.term(e.index)
                assert held is None or held == e.term, f"committed entry {e.index} differs"
            entries = entries[skip:]
            prev_index = log.committed
            held_term = log.term(prev_index)
            assert held_term is not None
            prev_term = held_term
        if not log.matches(prev_index, prev_term):
            hint = log.conflict_hint(min(prev_index, log.last_index()), prev_term)
            assert hint is not None, "the hint search stops at our commit index"
            self._send(
                AppendResponse(
                    self._term,
                    self.id,
                    m.src,
                    index=prev_index,
                    reject=True,
                    hint_index=hint[0],
                    hint_term=hint[1],
                )
            )
            return
        new = entries[log.find_conflict(entries) :]
        self._append_to_log(new)  # only from the first real conflict on: matches stay
        last_new = prev_index + len(entries)
        log.commit_to(min(m.commit, last_new))
        self._send(AppendResponse(self._term, self.id, m.src, index=last_new))

    def _handle_snapshot_chunk(self, m: InstallSnapshot) -> None:
        meta = m.meta
        if meta.index <= self._log.committed:
            self._incoming = None  # we already have all of it
            self._send(AppendResponse(self._term, self.id, m.src, index=self._log.committed))
            return
        inc = self._incoming
        # Chunks are joined only from one leader (term) and one snapshot: another leader's
        # snapshot at the same index holds the same state, but not necessarily the same bytes.
        same = inc is not None and inc.meta == meta and inc.leader_term == m.term
        if m.offset == 0 and not same:
            inc = self._incoming = _IncomingSnapshot(meta, m.term)
            same = True
        if inc is None or not same or m.offset != len(inc.data):
            have = len(inc.data) if inc is not None and same else 0
            self._send(SnapshotResponse(self._term, self.id, m.src, meta.index, have))
            return
        if len(inc.data) + len(m.data) > self.config.max_snapshot_bytes:
            self._incoming = None  # refuse to buffer it; the leader keeps retrying
            self._send(SnapshotResponse(self._term, self.id, m.src, meta.index, 0))
            return
        inc.data += m.data
        if not m.done:
            self._send(SnapshotResponse(self._term, self.id, m.src, meta.index, len(inc.data)))
            return
        self._incoming = None
        self._restore(Snapshot(meta, bytes(inc.data)), m.src)

    def _restore(self, snap: Snapshot, leader: int) -> None:
        meta = snap.meta
        if self._log.matches(meta.index, meta.term):
            # We hold that entry, so our log up to it is the leader's: just commit.
            self._log.commit_to(meta.index)
        else:
            self._log.restore(meta.index, meta.term)
            self._confs.reset(meta.conf, meta.index)
            self._snapshot = snap
            self._pending_restore = snap
            self._applying = meta.index  # the state machine jumps there with the restore
        self._send(AppendResponse(self._term, self.id, leader, index=meta.index))

    def _handle_read_request(self, m: ReadIndexRequest) -> None:
        if self._role != Role.LEADER or self._reads.full():
            return  # the follower times out and retries
        self._reads.add(m.context, m.src)
        self._activate_reads()

    # -- leader side ------------------------------------------------------------------

    def _to_leader(self, m: RaftMessage) -> None:
        pr = self._progress.get(m.src)
        if pr is None:
            return  # not (or no longer) a member
        heard_before, pr.last_heard_ms = pr.last_heard_ms, self._now_ms
        if heard_before <= self._quorum_heard_ms:
            # It was at or below the quorum's k-th latest: the due time may move. (One
            # heard later than that already counted; hearing it again changes nothing.)
            self._quorum_due_ms = None
        if isinstance(m, AppendResponse):
            if m.reject:
                self._handle_append_reject(m, pr)
            else:
                self._handle_append_ack(m, pr)
        elif isinstance(m, HeartbeatResponse):
            self._handle_heartbeat_response(m, pr)
        elif isinstance(m, SnapshotResponse):
            self._handle_snapshot_response(m, pr)

    def _handle_snapshot_response(self, m: SnapshotResponse, pr: Progress) -> None:
        if pr.state == ProgressState.SNAPSHOT and m.index == pr.snapshot_index:
            pr.snapshot_offset = m.offset  # the follower says what it holds
            pr.snapshot_sent_ms = None
            self._dirty.add(m.src)

    def _handle_append_reject(self, m: AppendResponse, pr: Progress) -> None:
        if pr.state == ProgressState.REPLICATE:
            current = m.index > pr.match
        else:
            current = pr.state == ProgressState.PROBE and m.index == pr.next - 1
        if not current:
            return  # an answer to an append we have already moved past
        found = self._log.conflict_hint(m.hint_index, m.hint_term)
        # No index we still hold can match: the follower needs the snapshot.
        resume = found[0] + 1 if found is not None else self._log.snapshot_index
        pr.become_probe()
        pr.next = max(min(m.index, resume), pr.match + 1)
        if m.hint_index < pr.match:
            # It denies holding what it acknowledged: its log was lost (a wiped node under
            # its old identity). Probing again at once would repeat this exchange in a
            # tight loop; the next heartbeat answer asks again.
            pr.probe_sent = True
            return
        self._dirty.add(m.src)

    def _handle_append_ack(self, m: AppendResponse, pr: Progress) -> None:
        if m.index < pr.match:
            return  # stale
        moved = pr.update_match(m.index)
        caught_up = pr.match >= self._log.snapshot_index  # can be served from the log
        if pr.state == ProgressState.PROBE or (pr.state == ProgressState.SNAPSHOT and caught_up):
            pr.become_replicate()
        self._dirty.add(m.src)
        if m.src == self._transferee and pr.match == self._log.last_index():
            self._send(TimeoutNow(self._term, self.id, m.src))
        if moved and pr.match > self._log.committed:
            # Last: a committed removal of this leader ends its term here. (A match at or
            # below the commit index cannot move the quorum's index above it.)
            self._maybe_commit()

    def _handle_heartbeat_response(self, m: HeartbeatResponse, pr: Progress) -> None:
        if m.round > pr.read_round:
            pr.read_round = m.round
            self._release_reads()
        now = self._now_ms
        if pr.state == ProgressState.PROBE:
            pr.probe_sent = False  # the follower is reachable: probe again
        elif pr.state == ProgressState.REPLICATE:
            oldest = pr.inflights.oldest_sent_ms()
            if oldest is not None and now - oldest >= self.config.stall_timeout_ms:
                pr.become_probe()  # an append or its answer was lost
        elif pr.snapshot_sent_ms is not None and (
            now - pr.snapshot_sent_ms >= self.config.heartbeat_interval_ms
        ):
            pr.snapshot_sent_ms = None  # a chunk or its answer was lost: resend
        if pr.match < self._log.last_index() or pr.state != ProgressState.REPLICATE:
            self._dirty.add(m.src)

    def _maybe_commit(self) -> None:
        match = {n: p.match for n, p in self._progress.items()}
        match[self.id] = self._log.persisted_index()
        index = committed_index(self._confs.current().voters, match)
        # Only an entry of our own term is committed by counting replicas (Raft 5.4.2).
        if index > self._log.committed and self._log.term(index) == self._term:
            old = self._log.committed
            self._log.commit_to(index)
            self._on_commit(old)

    def _on_commit(self, old: int) -> None:
        for e in self._log.slice(old + 1, self._log.committed + 1, 1 << 62):
            if e.term == self._term:
                self._uncommitted_bytes -= len(e.data)
        assert self._uncommitted_bytes >= 0
        for pr in self._progress.values():
            pr.needs_commit = True
        if self.config.commit_notice_delay_ms == 0:
            self._dirty.update(self._progress)
        elif self._commit_notice_due_ms is None:
            self._commit_notice_due_ms = self._now_ms + self.config.commit_notice_delay_ms
        self._activate_reads()
        if self.id not in self._confs.at(self._log.committed).voters:
            self._hand_over()

    def _hand_over(self) -> None:
        """Our removal (or demotion) is committed: the others carry on without us. Tell
        them the commit index, and let the most up-to-date voter campaign at once rather
        than wait out its election timeout."""
        self._commit_notice_now = True  # now, not after the delay
        self._dirty.update(self._progress)
        self._flush()
        voters = self._confs.current().voters
        best = max((p.match, n) for n, p in self._progress.items() if n in voters)
        if best[0] == self._log.last_index():
            self._send(TimeoutNow(self._term, self.id, best[1]))
        self._become_follower(self._term, NONE)

    def _broadcast_heartbeat(self) -> None:
        committed = self._log.committed
        for n, pr in sorted(self._progress.items()):
            commit = min(pr.match, committed)
            if commit == committed:
                pr.needs_commit = False  # this heartbeat tells it: no notice of its own
            self._send(Heartbeat(self._term, self.id, n, commit, self._reads.round))
        self._drop_needless_notice()

    def _drop_needless_notice(self) -> None:
        """Once every follower has been told the commit index (by an append or a
        heartbeat), a pending commit notice has nothing left to tell: drop its timer, so
        the shell is not woken for it."""
        if self._commit_notice_due_ms is not None and not any(
            pr.needs_commit for pr in self._progress.values()
        ):
            self._commit_notice_due_ms = None

    def _flush(self) -> None:
        """Leader: turn everything queued since the last Ready into messages, at most one
        batch per follower (this is where proposals are batched)."""
        if self._role != Role.LEADER:
            return
        assert self._dirty <= self._progress.keys(), "a follower to send to has no progress"
        if self._reads.needs_round():
            self._reads.start_round()
            self._heartbeat_due_ms = self._now_ms + self.config.heartbeat_interval_ms
            self._broadcast_heartbeat()
            self._release_reads()  # a single voter confirms its own round
        if self._dirty:
            for n in sorted(self._dirty):
                self._send_appends(n, self._progress[n])
            self._dirty.clear()
            self._drop_needless_notice()
        self._commit_notice_now = False

    def _tells_commit(self, pr: Progress) -> bool:
        """Whether a follower behind on the commit index gets a message for it alone now."""
        return pr.needs_commit and (
            self._commit_notice_now or self.config.commit_notice_delay_ms == 0
        )

    def _send_appends(self, to: int, pr: Progress) -> None:
        log = self._log
        while not pr.paused():
            if pr.state == ProgressState.SNAPSHOT or log.term(pr.next - 1) is None:
                self._send_snapshot_chunk(to, pr)
                return
            replicating = pr.state == ProgressState.REPLICATE
            if replicating and pr.next > log.last_index() and not self._tells_commit(pr):
                return  # up to date, and nothing to tell (most calls: skip the slice)
            entries = log.slice(
                pr.next,
                log.last_index() + 1,
                self.config.max_bytes_per_msg,
                self.config.max_entries_per_msg,
            )
            if replicating and not entries and not self._tells_commit(pr):
                return
            prev_term = log.term(pr.next - 1)
            assert prev_term is not None
            self._send(
                AppendEntries(
                    self._term, self.id, to, pr.next - 1, prev_term, log.committed, tuple(entries)
                )
            )
            pr.needs_commit = False
            if not replicating:
                pr.probe_sent = True
                return
            if not entries:
                return
            pr.next = entries[-1].index + 1
            pr.inflights.add(entries[-1].index, sum(map(entry_size, entries)), self._now_ms)

    def _send_snapshot_chunk(self, to: int, pr: Progress) -> None:
        snap = self._snapshot
        assert snap is not None, "the log is compacted, so there is a snapshot"
        kept = self._sending.get(pr.snapshot_index) if _sends_kept(pr) else None
        if kept is not None:
            snap = kept  # a transfer in progress finishes with the snapshot it started with
        elif pr.state != ProgressState.SNAPSHOT or pr.snapshot_index != snap.meta.index:
            pr.become_snapshot(snap.meta.index)  # (re)start with our newest snapshot
            self._keep_snapshots_in_transfer()
        offset = min(pr.snapshot_offset, len(snap.data))
        chunk = snap.data[offset : offset + self.config.max_snapshot_chunk_bytes]
        done = offset + len(chunk) >= len(snap.data)
        self._send(InstallSnapshot(self._term, self.id, to, snap.meta, offset, chunk, done))
        pr.snapshot_sent_ms = self._now_ms


def _sends_kept(pr: Progress) -> bool:
    """Whether `pr` is in the middle of a transfer (which an older snapshot may serve)."""
    return pr.state == ProgressState.SNAPSHOT and pr.match < pr.snapshot_index


def _check_durable(meta: SnapshotMeta, entries: Sequence[Entry], hs: HardState) -> None:
    """What storage loaded must be a log: refuse it clearly rather than run on it."""
    expected = meta.index + 1
    for e in entries:
        if e.index != expected:
            raise InvalidArgument(
                "DurableState.entries", f"expected index {expected}, got {e.index}"
            )
        expected += 1
    last = meta.index + len(entries)
    if hs.commit > last:
        raise InvalidArgument("DurableState.hard_state", f"commit {hs.commit} beyond last {last}")
    if hs.term < (entries[-1].term if entries else meta.term):
        raise InvalidArgument("DurableState.hard_state", f"term {hs.term} below the log's")
