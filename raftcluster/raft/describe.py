"""One-line, stable text for entries, messages and Ready batches (tests, traces, logs)."""

from __future__ import annotations

from raftcluster.raft.messages import (
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
from raftcluster.raft.ready import Ready
from raftcluster.raft.types import ConfChange, ConfState, Entry, EntryKind, SnapshotMeta
from statemachine.codec import decode
from statemachine.errors import DecodeError

MAX_SHOWN_BYTES = 24


def describe_bytes(data: bytes) -> str:
    shown = data[:MAX_SHOWN_BYTES].decode("utf-8", "backslashreplace")
    return repr(shown + ("..." if len(data) > MAX_SHOWN_BYTES else ""))


def describe_conf(conf: ConfState) -> str:
    voters = ",".join(map(str, conf.voters))
    learners = ",".join(map(str, conf.learners))
    return f"voters=({voters})" + (f" learners=({learners})" if learners else "")


def describe_entry(e: Entry) -> str:
    if e.kind == EntryKind.CONF_CHANGE:
        try:
            cc = decode(e.data, ConfChange)
        except DecodeError:
            return f"{e.term}/{e.index} conf <undecodable>"
        node = f" {cc.node_id}" if cc.node_id else ""
        return f"{e.term}/{e.index} conf {cc.op.name.lower()}{node} -> {describe_conf(cc.conf)}"
    return f"{e.term}/{e.index} {describe_bytes(e.data)}" if e.data else f"{e.term}/{e.index}"


def describe_meta(meta: SnapshotMeta) -> str:
    return f"{meta.term}/{meta.index} {describe_conf(meta.conf)}"


def describe_message(m: RaftMessage) -> str:
    head = f"{m.src}->{m.dst} t{m.term}"
    if isinstance(m, AppendEntries):
        body = f"App prev={m.prev_term}/{m.prev_index} commit={m.commit}"
        if m.entries:
            body += " [" + ", ".join(describe_entry(e) for e in m.entries) + "]"
    elif isinstance(m, AppendResponse):
        body = f"AppResp index={m.index}"
        if m.reject:
            body += f" reject hint={m.hint_term}/{m.hint_index}"
    elif isinstance(m, Heartbeat):
        body = f"Heartbeat commit={m.commit}" + (f" round={m.round}" if m.round else "")
    elif isinstance(m, HeartbeatResponse):
        body = "HeartbeatResp" + (f" round={m.round}" if m.round else "")
    elif isinstance(m, VoteRequest):
        kind = "PreVote" if m.pre_vote else "Vote"
        body = f"{kind} last={m.last_term}/{m.last_index}" + (" transfer" if m.transfer else "")
    elif isinstance(m, VoteResponse):
        kind = "PreVoteResp" if m.pre_vote else "VoteResp"
        body = f"{kind} {'granted' if m.granted else 'rejected'}"
    elif isinstance(m, InstallSnapshot):
        body = f"Snap {describe_meta(m.meta)} offset={m.offset} len={len(m.data)}"
        body += " done" if m.done else ""
    elif isinstance(m, SnapshotResponse):
        body = f"SnapResp index={m.index} offset={m.offset}"
    elif isinstance(m, TimeoutNow):
        body = "TimeoutNow"
    elif isinstance(m, ReadIndexRequest):
        body = f"ReadIndex ctx={describe_bytes(m.context)}"
    elif isinstance(m, ReadIndexResponse):
        body = f"ReadIndexResp index={m.index} ctx={describe_bytes(m.context)}"
    else:
        body = type(m).__name__
    return f"{head} {body}"


def describe_ready(rd: Ready) -> list[str]:
    """The Ready as lines, in the order the shell handles it; empty parts are left out."""
    lines = []
    if rd.soft_state is not None:
        s = rd.soft_state
        lines.append(f"soft: {s.role.name.lower()} leader={s.leader}")
    if rd.hard_state is not None:
        h = rd.hard_state
        lines.append(f"hard: term={h.term} vote={h.vote} commit={h.commit}")
    if rd.snapshot is not None:
        lines.append(f"snapshot: {describe_meta(rd.snapshot.meta)} len={len(rd.snapshot.data)}")
    lines += [f"entry: {describe_entry(e)}" for e in rd.entries]
    lines += [f"send: {describe_message(m)}" for m in rd.messages]
    lines += [f"apply: {describe_entry(e)}" for e in rd.committed_entries]
    lines += [f"read: index={r.index} ctx={describe_bytes(r.context)}" for r in rd.read_states]
    return lines
