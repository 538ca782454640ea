"""A small in-process cluster of `Replica`s for tests: in-order delivery, cuts, crashes.

Everything is synchronous and deterministic: `run(ms)` advances one clock shared by all
nodes in steps, ticks every live node, delivers every message sent (in order, except
across cut links, where it is dropped), and runs Ready cycles until nothing is left.
Client replies collect per client in `replies`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence

import attrs

from raftcluster.client.core import ClientCore, Completion, Send
from raftcluster.node.config import ReplicaConfig
from raftcluster.node.protocol import ClientReply, ClientRequest, Submit, Written
from raftcluster.node.replica import Output, Replica, Reply
from raftcluster.node.services import LeaderService
from raftcluster.raft.config import RaftConfig
from raftcluster.raft.messages import RaftMessage
from raftcluster.raft.ready import Role
from raftcluster.storage.memory import MemoryStorage
from statemachine.codec import Message, decode, encode

FAST = {"election_timeout_ms": 300, "heartbeat_interval_ms": 50}


def make_config(node_id: int, peers: tuple[int, ...], **options: object) -> ReplicaConfig:
    raft_fields = {a.name for a in attrs.fields(RaftConfig)}
    raft_options = {k: v for k, v in options.items() if k in raft_fields}
    replica_options = {k: v for k, v in options.items() if k not in raft_options}
    raft = RaftConfig(node_id=node_id, peers=peers, **{**FAST, **raft_options})  # type: ignore[arg-type]
    return ReplicaConfig(raft=raft, **replica_options)  # type: ignore[arg-type]


class LocalCluster:
    STEP_MS = 10

    def __init__(
        self,
        n: int = 3,
        seed: int = 0,
        spare: int = 0,
        services: Callable[[], Sequence[LeaderService]] | None = None,
        **options: object,
    ) -> None:
        self.options = options
        self.services = services
        self.peers = tuple(range(1, n + 1))
        self.rng = random.Random(seed)
        self.now_ms = 0
        self.storages: dict[int, MemoryStorage] = {}
        self.replicas: dict[int, Replica] = {}
        for i in range(1, n + spare + 1):
            self.storages[i] = MemoryStorage()
            self.start(i, self.peers if i in self.peers else ())
        self.network: list[RaftMessage] = []
        self.cut: set[tuple[int, int]] = set()
        self.down: set[int] = set()
        self.replies: dict[Hashable, list[tuple[int, ClientReply]]] = {}
        self.answered: list[tuple[int, Reply]] = []  # (node, reply) in order
        self.outputs: list[tuple[int, Output]] = []

    def start(self, i: int, peers: tuple[int, ...] | None = None) -> Replica:
        if peers is None:
            peers = self.replicas[i].config.raft.peers
        config = make_config(i, peers, **self.options)
        rng = random.Random(self.rng.randrange(2**32))
        services = self.services() if self.services is not None else None
        replica = Replica(config, self.storages[i], rng, self.now_ms, services=services)
        self.replicas[i] = replica
        return replica

    # -- faults ---------------------------------------------------------------------------

    def isolate(self, i: int) -> None:
        for j in self.replicas:
            if j != i:
                self.cut |= {(i, j), (j, i)}

    def heal(self) -> None:
        self.cut.clear()

    def crash(self, i: int, keep_writes: int = 0) -> None:
        self.storages[i].crash(keep_writes)
        self.down.add(i)

    def restart(self, i: int) -> Replica:
        self.down.discard(i)
        return self.start(i)

    # -- running --------------------------------------------------------------------------

    def live(self) -> list[int]:
        return [i for i in sorted(self.replicas) if i not in self.down]

    def settle(self) -> None:
        """Run Ready cycles and deliver messages until nothing moves."""
        for _ in range(10_000):
            moved = False
            for i in self.live():
                replica = self.replicas[i]
                self.collect(i, replica.take_replies())
                while replica.has_ready():
                    out = replica.cycle()
                    self.outputs.append((i, out))
                    self.network.extend(out.messages)
                    self.collect(i, out.replies)
                    moved = True
            messages, self.network = self.network, []
            for m in messages:
                if m.dst in self.down or (m.src, m.dst) in self.cut:
                    continue
                self.replicas[m.dst].receive(m)
                moved = True
            if not moved:
                return
        raise AssertionError("the cluster never settled")

    def collect(self, node: int, replies: tuple[Reply, ...]) -> None:
        for r in replies:
            self.replies.setdefault(r.client, []).append((r.request_id, r.message))
            self.answered.append((node, r))

    def run(self, ms: int) -> None:
        end = self.now_ms + ms
        while self.now_ms < end:
            self.now_ms += self.STEP_MS
            for i in self.live():
                self.replicas[i].tick(self.now_ms)
            self.settle()

    def leader(self) -> int:
        leaders = [i for i in self.live() if self.replicas[i].core.role == Role.LEADER]
        if not leaders:
            return 0
        return max(leaders, key=lambda i: self.replicas[i].core.term)

    def elect(self, limit_ms: int = 5_000) -> int:
        end = self.now_ms + limit_ms
        while self.now_ms < end:
            self.run(self.STEP_MS)
            if self.leader():
                return self.leader()
        raise AssertionError("no leader")

    # -- clients --------------------------------------------------------------------------

    def request(
        self, node: int, request: ClientRequest, client: Hashable = "c", rid: int = 0
    ) -> None:
        if rid == 0:
            rid = sum(len(v) for v in self.replies.values()) + 1000 + self.rng.randrange(1 << 30)
        self.replicas[node].client_request(client, rid, request, self.now_ms)
        self.settle()

    def ask(
        self, node: int, request: ClientRequest, within_ms: int = 3_000, client: Hashable = "c"
    ) -> ClientReply:
        """Send and run until the answer comes back."""
        rid = self.rng.randrange(1, 1 << 40)
        self.request(node, request, client, rid)
        end = self.now_ms + within_ms
        while True:
            for got_rid, reply in self.replies.get(client, []):
                if got_rid == rid:
                    return reply
            if self.now_ms >= end:
                raise AssertionError(f"no answer to {request!r} from node {node}")
            self.run(self.STEP_MS)

    def write(self, node: int, command: Message, client: Hashable = "c") -> Message:
        reply = self.ask(node, Submit(encode(command)), client=client)
        assert isinstance(reply, Written), reply
        return decode(reply.result, Message)


class ClientDriver:
    """Carries one `ClientCore`'s requests to a `LocalCluster` and the replies back.

    `unreachable` nodes lose the requests sent to them; `drop_replies` counts replies to
    lose on the way back (the first ones).
    """

    def __init__(self, cluster: LocalCluster, core: ClientCore, name: str = "client") -> None:
        self.cluster = cluster
        self.core = core
        self.name = name
        self.unreachable: set[int] = set()
        self.drop_replies = 0
        self.sent: list[Send] = []
        self.completions: dict[int, Completion] = {}

    def step(self) -> None:
        cluster = self.cluster
        self.core.tick(cluster.now_ms)
        for send in self.core.take_sends():
            self.sent.append(send)
            if send.node in cluster.down or send.node in self.unreachable:
                continue
            cluster.replicas[send.node].client_request(
                self.name, send.request_id, send.request, cluster.now_ms
            )
        cluster.settle()
        answered, cluster.answered = cluster.answered, []
        for node, reply in answered:
            if reply.client != self.name:
                continue
            if self.drop_replies > 0:
                self.drop_replies -= 1
                continue
            self.core.receive(node, reply.request_id, reply.message, cluster.now_ms)
        for done in self.core.take_completions():
            self.completions[done.handle] = done

    def run(self, ms: int) -> None:
        end = self.cluster.now_ms + ms
        while self.cluster.now_ms < end:
            self.step()
            self.cluster.run(self.cluster.STEP_MS)
        self.step()

    def wait(self, handle: int, limit_ms: int = 30_000) -> Completion:
        end = self.cluster.now_ms + limit_ms
        while handle not in self.completions:
            assert self.cluster.now_ms < end, f"operation {handle} never completed"
            self.step()
            self.cluster.run(self.cluster.STEP_MS)
        return self.completions[handle]
