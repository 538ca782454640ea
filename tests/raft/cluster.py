"""A small in-test cluster: Raft cores on a lossy, reordering network, with safety checks.

`Checker` holds Raft's safety properties and is fed everything the nodes do:
    - election safety: at most one leader per term;
    - state machine safety: every node applies the same entry at each index, and an
      entry once committed never changes (a snapshot agrees with it too);
    - leader completeness: a leader holds every entry committed so far;
    - log matching: two logs that hold the same (index, term) agree up to there;
    - votes: a node never votes for two candidates in one term, its term never goes back;
    - persist before send: a vote or an acknowledgement is on disk before it is sent.

`RandomCluster` drives nodes with a seeded random generator (message delay and so
reordering, loss, duplication, partitions, crashes and restarts, compaction, membership
changes) and checks after every step; `heal_and_converge` then checks liveness.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable

import attrs

from raftcluster.raft.config import RaftConfig
from raftcluster.raft.errors import RaftError
from raftcluster.raft.messages import AppendResponse, RaftMessage, VoteRequest, VoteResponse
from raftcluster.raft.ready import Ready, Role
from raftcluster.raft.types import NONE, ConfChangeOp, Entry, HardState
from tests.raft.harness import Disk, Node


class SafetyViolation(AssertionError):
    pass


def require(condition: bool, message: str) -> None:
    if not condition:
        raise SafetyViolation(message)


class Checker:
    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> leader
        self.committed: dict[int, Entry] = {}  # index -> the entry applied there
        self.elections = 0
        self.checked_terms: set[int] = set()  # terms whose leader was checked complete

    def on_ready(self, node_id: int, before: HardState, rd: Ready) -> None:
        hs = rd.hard_state
        if hs is not None:
            require(hs.term >= before.term, f"node {node_id}: term went back {before} -> {hs}")
            if hs.term == before.term and before.vote != NONE:
                require(hs.vote == before.vote, f"node {node_id} voted twice in term {hs.term}")
        if rd.snapshot is not None:
            meta = rd.snapshot.meta
            known = self.committed.get(meta.index)
            require(
                known is None or known.term == meta.term, f"snapshot {meta} disagrees with {known}"
            )
        for e in rd.committed_entries:
            known = self.committed.setdefault(e.index, e)
            require(known == e, f"node {node_id} applies {e} where {known} was applied")

    def on_persisted(self, node_id: int, disk: Disk, rd: Ready) -> None:
        """Persist before send: what a message in `rd` promises is on disk already."""
        hs = disk.hard_state
        last = disk.entries[-1].index if disk.entries else 0
        if disk.snapshot is not None:
            last = max(last, disk.snapshot.meta.index)
        for m in rd.messages:
            if isinstance(m, VoteRequest | VoteResponse) and m.pre_vote:
                continue  # a pre-vote promises nothing, and may carry a future term
            require(m.term <= hs.term, f"node {node_id} sends {m} before persisting its term")
            if m.term < hs.term:
                continue  # superseded in this same Ready by a newer term, legitimately
            if isinstance(m, VoteResponse) and m.granted:
                require(hs.vote == m.dst, f"node {node_id} grants {m} with {hs} on disk")
            if isinstance(m, VoteRequest):
                require(hs.vote == node_id, f"node {node_id} campaigns with {hs} on disk")
            if isinstance(m, AppendResponse) and not m.reject:
                require(m.index <= last, f"node {node_id} acks {m} holding up to {last}")

    def on_state(self, nodes: Iterable[Node]) -> None:
        for node in nodes:
            core = node.core
            if core.role != Role.LEADER:
                continue
            leader = self.leaders.setdefault(core.term, core.id)
            require(leader == core.id, f"two leaders in term {core.term}: {leader}, {core.id}")
            if core.term not in self.checked_terms:
                self.checked_terms.add(core.term)
                self.elections += 1
                self.check_complete(node)

    def check_complete(self, node: Node) -> None:
        """Leader completeness: every committed entry is in this leader's log."""
        entries = {e.index: e for e in node.core.log_entries()}
        status = node.core.status()
        for index, e in self.committed.items():
            if index >= status.first_index:
                held = entries.get(index)
                require(held == e, f"leader {status.node_id} lacks committed {e} (has {held})")

    def check_logs(self, nodes: list[Node]) -> None:
        """Log matching and committed prefixes, over every pair of nodes."""
        logs = [{e.index: e for e in n.core.log_entries()} for n in nodes]
        for node, log in zip(nodes, logs, strict=True):
            for index in range(node.core.status().first_index, node.core.commit_index + 1):
                known = self.committed.get(index)
                require(
                    known is None or log[index] == known,
                    f"node {node.core.id}: committed {index} is {log[index]}, applied {known}",
                )
        for i, a in enumerate(logs):
            for b in logs[i + 1 :]:
                common = sorted(set(a) & set(b), reverse=True)
                matched = False
                for index in common:
                    if a[index].term == b[index].term:
                        matched = True
                    if matched:
                        require(a[index] == b[index], f"logs differ at {index} below a match")


@attrs.frozen
class Faults:
    """Probabilities per message (loss, dup) or per step (the rest)."""

    loss: float = 0.05
    dup: float = 0.03
    max_delay_ms: int = 40
    partition: float = 0.002
    heal: float = 0.01
    crash: float = 0.001
    compact: float = 0.005
    conf_change: float = 0.002
    propose: float = 0.3
    read: float = 0.05


@attrs.define
class Stats:
    steps: int = 0
    messages: int = 0
    proposed: int = 0
    crashes: int = 0
    partitions: int = 0
    conf_changes: int = 0
    reads: int = 0
    reads_served: int = 0


class RandomCluster:
    STEP_MS = 5

    def __init__(
        self,
        seed: int,
        voters: int = 3,
        spare: int = 2,
        faults: Faults | None = None,
        **options: object,
    ) -> None:
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.options = {"election_timeout_ms": 300, "heartbeat_interval_ms": 50, **options}
        peers = tuple(range(1, voters + 1))
        self.ids = list(range(1, voters + spare + 1))
        self.nodes: dict[int, Node] = {}
        for i in self.ids:
            cfg = RaftConfig(node_id=i, peers=peers if i in peers else (), **self.options)  # type: ignore[arg-type]
            self.nodes[i] = Node.start(cfg, seed=self.rng.randrange(2**32))
        self.now_ms = 0
        self.in_flight: list[tuple[int, int, RaftMessage]] = []  # (deliver_at, seq, message)
        self.seq = 0
        self.cut: set[frozenset[int]] = set()  # pairs that cannot talk
        self.checker = Checker()
        self.read_floor: dict[bytes, int] = {}
        self.stats = Stats()

    # -- the network ----------------------------------------------------------------------

    def send(self, m: RaftMessage) -> None:
        self.stats.messages += 1
        if frozenset((m.src, m.dst)) in self.cut or self.rng.random() < self.faults.loss:
            return
        copies = 2 if self.rng.random() < self.faults.dup else 1
        for _ in range(copies):
            delay = self.rng.randint(1, self.faults.max_delay_ms)
            self.seq += 1
            heapq.heappush(self.in_flight, (self.now_ms + delay, self.seq, m))

    def deliver_due(self) -> None:
        while self.in_flight and self.in_flight[0][0] <= self.now_ms:
            _, _, m = heapq.heappop(self.in_flight)
            if frozenset((m.src, m.dst)) not in self.cut:
                self.nodes[m.dst].core.step(m)

    # -- the nodes ------------------------------------------------------------------------

    def handle_readies(self) -> None:
        for i in self.ids:
            node = self.nodes[i]
            while node.core.has_ready():
                before = node.disk.hard_state
                rd, msgs = node.handle_ready()
                self.checker.on_ready(i, before, rd)
                self.checker.on_persisted(i, node.disk, rd)
                for r in rd.read_states:
                    floor = self.read_floor[r.context]  # duplicates are possible: the network
                    require(r.index >= floor, f"stale read {r} on {i}: {floor} was committed")
                    self.stats.reads_served += 1
                for m in msgs:
                    self.send(m)

    def leader(self) -> Node | None:
        leaders = [n for n in self.nodes.values() if n.core.role == Role.LEADER]
        return max(leaders, key=lambda n: n.core.term) if leaders else None

    def step(self) -> None:
        self.stats.steps += 1
        self.now_ms += self.STEP_MS
        for i in self.ids:
            self.nodes[i].now_ms = self.now_ms
            self.nodes[i].core.tick(self.now_ms)
        self.deliver_due()
        self.random_input()
        self.handle_readies()
        self.checker.on_state(self.nodes.values())

    def random_input(self) -> None:
        f, rng = self.faults, self.rng
        leader = self.leader()
        if leader is not None and rng.random() < f.propose:
            batch = [f"{self.stats.proposed + k}".encode() for k in range(rng.randint(1, 3))]
            try:
                leader.core.propose_batch(batch)
                self.stats.proposed += len(batch)
            except RaftError:
                pass  # transfer in progress, or being removed: a client would retry
        if rng.random() < f.read:
            self.read(self.nodes[rng.choice(self.ids)])
        if rng.random() < f.partition:
            self.partition()
        if rng.random() < f.heal:
            self.cut.clear()
        if rng.random() < f.crash:
            self.crash(rng.choice(self.ids))
        if rng.random() < f.compact:
            node = self.nodes[rng.choice(self.ids)]
            if node.applied_index > node.core.status().first_index:
                node.compact()
        if leader is not None and rng.random() < f.conf_change:
            self.change_membership(leader)

    def read(self, node: Node) -> None:
        context = f"r{self.stats.reads}".encode()
        try:
            node.core.read_index(context)
        except RaftError:
            return
        self.stats.reads += 1
        # Linearizable: the read must see every write committed before it was asked.
        self.read_floor[context] = max(n.core.commit_index for n in self.nodes.values())

    def partition(self) -> None:
        self.stats.partitions += 1
        side = {i for i in self.ids if self.rng.random() < 0.5}
        self.cut = {frozenset((a, b)) for a in side for b in self.ids if b not in side}

    def crash(self, i: int) -> None:
        self.stats.crashes += 1
        self.nodes[i] = self.nodes[i].restart(seed=self.rng.randrange(2**32))

    def change_membership(self, leader: Node) -> None:
        conf = leader.core.conf
        # Often the leader itself: removing a leader is the delicate case.
        node_id = leader.core.id if self.rng.random() < 0.3 else self.rng.choice(self.ids)
        if node_id in conf.learners:
            op = ConfChangeOp.ADD_VOTER
        elif node_id in conf.voters:
            if len(conf.voters) <= 3:
                return  # keep a majority able to survive one fault
            op = ConfChangeOp.REMOVE_NODE if self.rng.random() < 0.7 else ConfChangeOp.ADD_LEARNER
        else:
            op = ConfChangeOp.ADD_LEARNER
        try:
            leader.core.propose_conf_change(op, node_id)
            self.stats.conf_changes += 1
        except RaftError:
            pass

    # -- running --------------------------------------------------------------------------

    def run(self, duration_ms: int, log_check_every: int = 100) -> None:
        end = self.now_ms + duration_ms
        while self.now_ms < end:
            self.step()
            if self.stats.steps % log_check_every == 0:
                self.checker.check_logs(list(self.nodes.values()))
        self.checker.check_logs(list(self.nodes.values()))

    def heal_and_converge(self, limit_ms: int = 20_000) -> Node:
        """No more faults: a leader must emerge and every member must apply its log."""
        self.faults = Faults(
            loss=0, dup=0, partition=0, heal=0, crash=0, compact=0, conf_change=0, propose=0,
            read=0, max_delay_ms=self.faults.max_delay_ms,
        )  # fmt: skip
        self.cut.clear()
        end = self.now_ms + limit_ms
        marker: tuple[int, int] | None = None  # (index, term) of a proposal to see applied
        while self.now_ms < end:
            self.step()
            leader = self.leader()
            if leader is None:
                continue
            if marker is None or leader.core.term != marker[1]:
                try:  # (again, if leadership changed: the first one may be lost)
                    p = leader.core.propose(b"final")
                    marker = (p.index, p.term)
                except RaftError:
                    continue
            applied = self.checker.committed.get(marker[0])
            if applied is None or applied.term != marker[1]:
                continue
            members = set(leader.core.conf.voters) | set(leader.core.conf.learners)
            if all(self.nodes[i].applied_index >= marker[0] for i in members):
                self.checker.check_logs(list(self.nodes.values()))
                return leader
        raise SafetyViolation(f"no convergence within {limit_ms} ms after healing")
