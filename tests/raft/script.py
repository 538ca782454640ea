"""A tiny command language to drive Raft cores by hand, for golden interaction tests.

Each node has its own clock, disk, state machine and inbox. Nothing happens unless a
command says so: Readies are handled by `process-ready`, messages are delivered by
`deliver`, time moves by `tick`. Commands (node lists default to every node):

    create 1 2 3 [learners=4,5] [prevote=0] [checkquorum=0] [election=MS] [heartbeat=MS]
           [inflight=N] [max-entries=N] [chunk=BYTES] [lag=N] [commit-notice=MS]
                                (commit-notice is 0 unless given, unlike the core's
                                default: a leader tells followers a new commit index
                                at once, so each exchange shows in full;
                                commit_notice.txt shows the delay)
    add-node 4 [options]        a node with an empty log, not in any configuration
    tick MS [N...]              advance these nodes' clocks
    tick-election [N...]        advance by twice the election timeout (past any jitter)
    tick-heartbeat [N...]       advance by one heartbeat interval
    campaign N
    link-down N PEER            N's every connection to PEER closed (peer_unreachable)
    process-ready [N...]        each node: print its Ready, persist, queue messages, apply
    deliver [N...]              each node: step every message in its inbox
    drop [N...]                 discard the inbox
    duplicate N                 N's inbox is delivered twice over: A B -> A B A B
    reverse N                   N's inbox is delivered newest first
    stabilize [N...]            process-ready and deliver among these nodes until quiet
    isolate N / heal            messages from or to an isolated node are dropped (when
                                sent and when delivered)
    propose N DATA [DATA...]    one batch
    conf-change N add-voter|add-learner|remove ID
    transfer N TO
    read-index N CONTEXT
    compact N                   snapshot the state machine at its applied index
    restart N                   crash (memory lost, disk kept) and start again
    status [N...] / log N / progress N / applied [N...]
    silent COMMAND              run it, print only "ok" (for set-up steps)
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from raftcluster.raft.config import RaftConfig
from raftcluster.raft.describe import (
    describe_bytes,
    describe_conf,
    describe_entry,
    describe_message,
    describe_ready,
)
from raftcluster.raft.messages import RaftMessage
from raftcluster.raft.types import ConfChangeOp
from statemachine.errors import ClusterError
from tests.raft.harness import Node

OPTIONS: dict[str, str] = {
    "prevote": "pre_vote",
    "checkquorum": "check_quorum",
    "election": "election_timeout_ms",
    "heartbeat": "heartbeat_interval_ms",
    "inflight": "max_inflight_msgs",
    "max-entries": "max_entries_per_msg",
    "chunk": "max_snapshot_chunk_bytes",
    "lag": "max_promotion_lag_entries",
    "commit-notice": "commit_notice_delay_ms",
}
CONF_OPS = {
    "add-voter": ConfChangeOp.ADD_VOTER,
    "add-learner": ConfChangeOp.ADD_LEARNER,
    "remove": ConfChangeOp.REMOVE_NODE,
}


class ScriptError(Exception):
    """The script itself is wrong (unknown command, bad arguments)."""


class Script:
    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        self.inbox: dict[int, list[RaftMessage]] = collections.defaultdict(list)
        self.isolated: set[int] = set()
        self.restarts = 0

    def run(self, line: str) -> list[str]:
        words = line.split()
        if words[0] == "silent":  # run for its effect, print only "ok" (set-up steps)
            self.run(" ".join(words[1:]))
            return ["ok"]
        handler: Callable[[list[str]], list[str]] | None = getattr(
            self, "cmd_" + words[0].replace("-", "_"), None
        )
        if handler is None:
            raise ScriptError(f"unknown command {words[0]!r}")
        try:
            out = handler(words[1:])
        except ClusterError as e:
            out = [f"error: {type(e).__name__}: {e}"]
        return out or ["ok"]

    # -- helpers ------------------------------------------------------------------------

    def _ids(self, args: list[str]) -> list[int]:
        ids = [int(a) for a in args] if args else sorted(self.nodes)
        for i in ids:
            if i not in self.nodes:
                raise ScriptError(f"no node {i}")
        return ids

    def _config(self, node_id: int, options: list[str], **fixed: object) -> RaftConfig:
        kwargs: dict[str, object] = {"commit_notice_delay_ms": 0, **fixed}
        for opt in options:
            key, _, value = opt.partition("=")
            if key not in OPTIONS:
                raise ScriptError(f"unknown option {key!r}")
            name = OPTIONS[key]
            kwargs[name] = bool(int(value)) if name in ("pre_vote", "check_quorum") else int(value)
        return RaftConfig(node_id=node_id, **kwargs)  # type: ignore[arg-type]

    def _tick(self, ids: list[int], ms: int) -> None:
        for i in ids:
            node = self.nodes[i]
            node.now_ms += ms
            node.core.tick(node.now_ms)

    def _process_ready(self, ids: list[int]) -> list[str]:
        out = []
        for i in ids:
            node = self.nodes[i]
            if not node.core.has_ready():
                continue
            rd, msgs = node.handle_ready()
            out.append(f"> {i} ready")
            sends = iter(msgs)  # describe_ready lists the messages in order
            for line in describe_ready(rd):
                if line.startswith("send: "):
                    m = next(sends)
                    if self._cut(m):
                        line += " (dropped)"
                    else:
                        self.inbox[m.dst].append(m)
                out.append("  " + line)
        return out

    def _cut(self, m: RaftMessage) -> bool:
        return m.src in self.isolated or m.dst in self.isolated or m.dst not in self.nodes

    def _deliver(self, ids: list[int]) -> list[str]:
        out = []
        for i in ids:
            msgs, self.inbox[i] = self.inbox[i], []
            if not msgs:
                continue
            out.append(f"> {i} receive")
            for m in msgs:
                if self._cut(m):
                    out.append(f"  {describe_message(m)} (dropped)")
                    continue
                out.append(f"  {describe_message(m)}")
                self.nodes[i].core.step(m)
        return out

    # -- commands -----------------------------------------------------------------------

    def cmd_create(self, args: list[str]) -> list[str]:
        ids = [int(a) for a in args if "=" not in a]
        learners = tuple(
            int(x) for a in args if a.startswith("learners=") for x in a[9:].split(",")
        )
        options = [a for a in args if "=" in a and not a.startswith("learners=")]
        for i in ids + list(learners):
            cfg = self._config(i, options, peers=tuple(ids), learners=learners)
            self.nodes[i] = Node.start(cfg, seed=i)
        return []

    def cmd_add_node(self, args: list[str]) -> list[str]:
        i = int(args[0])
        self.nodes[i] = Node.start(self._config(i, args[1:]), seed=i)
        return []

    def cmd_tick(self, args: list[str]) -> list[str]:
        self._tick(self._ids(args[1:]), int(args[0]))
        return []

    def cmd_tick_election(self, args: list[str]) -> list[str]:
        for i in self._ids(args):
            self._tick([i], 2 * self.nodes[i].config.election_timeout_ms)
        return []

    def cmd_tick_heartbeat(self, args: list[str]) -> list[str]:
        for i in self._ids(args):
            self._tick([i], self.nodes[i].config.heartbeat_interval_ms)
        return []

    def cmd_campaign(self, args: list[str]) -> list[str]:
        self.nodes[self._ids(args)[0]].core.campaign()
        return []

    def cmd_link_down(self, args: list[str]) -> list[str]:
        node = self.nodes[self._ids(args[:1])[0]]
        node.core.peer_unreachable(int(args[1]), node.now_ms)
        return []

    def cmd_process_ready(self, args: list[str]) -> list[str]:
        return self._process_ready(self._ids(args))

    def cmd_deliver(self, args: list[str]) -> list[str]:
        return self._deliver(self._ids(args))

    def cmd_drop(self, args: list[str]) -> list[str]:
        out = []
        for i in self._ids(args):
            out += [f"  {describe_message(m)} (dropped)" for m in self.inbox[i]]
            self.inbox[i] = []
        return out

    def cmd_duplicate(self, args: list[str]) -> list[str]:
        i = self._ids(args)[0]
        self.inbox[i] = self.inbox[i] * 2
        return []

    def cmd_reverse(self, args: list[str]) -> list[str]:
        i = self._ids(args)[0]
        self.inbox[i].reverse()
        return []

    def cmd_stabilize(self, args: list[str]) -> list[str]:
        ids = self._ids(args)
        out: list[str] = []
        for _ in range(1000):
            step = self._process_ready(ids) + self._deliver(ids)
            if not step:
                return out
            out += step
        raise ScriptError("no quiescence after 1000 rounds")

    def cmd_isolate(self, args: list[str]) -> list[str]:
        self.isolated.update(self._ids(args))
        return []

    def cmd_heal(self, args: list[str]) -> list[str]:
        self.isolated.clear()
        return []

    def cmd_propose(self, args: list[str]) -> list[str]:
        core = self.nodes[self._ids(args[:1])[0]].core
        positions = core.propose_batch([a.encode() for a in args[1:]])
        return [f"proposed {p.term}/{p.index}" for p in positions]

    def cmd_conf_change(self, args: list[str]) -> list[str]:
        core = self.nodes[self._ids(args[:1])[0]].core
        if args[1] not in CONF_OPS:
            raise ScriptError(f"unknown membership step {args[1]!r}")
        p = core.propose_conf_change(CONF_OPS[args[1]], int(args[2]))
        return [f"proposed {p.term}/{p.index}"]

    def cmd_transfer(self, args: list[str]) -> list[str]:
        self.nodes[self._ids(args[:1])[0]].core.transfer_leadership(int(args[1]))
        return []

    def cmd_read_index(self, args: list[str]) -> list[str]:
        self.nodes[self._ids(args[:1])[0]].core.read_index(args[1].encode())
        return []

    def cmd_compact(self, args: list[str]) -> list[str]:
        snap = self.nodes[self._ids(args)[0]].compact()
        return [f"snapshot {snap.meta.term}/{snap.meta.index} {describe_conf(snap.meta.conf)}"]

    def cmd_restart(self, args: list[str]) -> list[str]:
        for i in self._ids(args):
            self.restarts += 1
            self.nodes[i] = self.nodes[i].restart(seed=1000 * self.restarts + i)
            self.inbox[i] = []
        return []

    def cmd_status(self, args: list[str]) -> list[str]:
        out = []
        for i in self._ids(args):
            s = self.nodes[i].core.status()
            out.append(
                f"{i}: {s.role.name.lower()} term={s.term} leader={s.leader} vote={s.vote} "
                f"commit={s.commit} applied={s.applied} log={s.first_index}..{s.last_index} "
                f"{describe_conf(s.conf)}"
            )
        return out

    def cmd_log(self, args: list[str]) -> list[str]:
        node = self.nodes[self._ids(args)[0]]
        snap = node.disk.snapshot
        out = [f"snapshot {snap.meta.term}/{snap.meta.index}"] if snap is not None else []
        return out + [describe_entry(e) for e in node.core.log_entries()] or ["(empty)"]

    def cmd_progress(self, args: list[str]) -> list[str]:
        core = self.nodes[self._ids(args)[0]].core
        return [f"{n}: {p}" for n, p in core.describe_progress().items()] or ["(not a leader)"]

    def cmd_applied(self, args: list[str]) -> list[str]:
        out = []
        for i in self._ids(args):
            node = self.nodes[i]
            data = " ".join(describe_bytes(d) for _, d in node.applied)
            out.append(f"{i}: index={node.applied_index} [{data}]")
        return out
