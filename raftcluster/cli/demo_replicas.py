"""`raftcluster demo --in-process`: the replicated state machine alone, in this process.

Three `ClusterState` replicas apply the same log of encoded commands, as three nodes
would apply committed Raft entries: puts through a client session, a transaction, a
retried request answered from the session cache, a watch over the change history, a
compaction, and a fourth replica started from a snapshot. Every replica must end with
the same snapshot bytes; the demo exits 1 if they do not.
"""

from __future__ import annotations

import argparse
import hashlib
from typing import Any

from raftcluster.cli.output import emit
from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode, encode
from statemachine.kv import (
    Changes,
    ChangesResult,
    Compact,
    CompactResult,
    Compare,
    CompareOp,
    Put,
    PutResult,
    Range,
    RangeResult,
    Txn,
    TxnResult,
)
from statemachine.results import Failure, expect, to_exception
from statemachine.sessions import OpenSession, SessionOpened, SessionRequest


class Replicas:
    """Replicas fed the same log; every entry must give the same bytes on each."""

    def __init__(self, count: int) -> None:
        self.replicas = [ClusterState() for _ in range(count)]
        self.index = 0
        self.lines: list[str] = []

    def commit(self, command: Message) -> Message:
        """Append one entry and apply it on every replica; return the (common) result."""
        self.index += 1
        entry = encode(command)
        outcomes = [replica.apply(self.index, entry) for replica in self.replicas]
        assert all(o == outcomes[0] for o in outcomes), f"replicas disagree at {self.index}"
        return decode(outcomes[0].result, Message)

    def say(self, line: str) -> None:
        self.lines.append(line)

    def hashes(self) -> list[str]:
        return [hashlib.sha256(r.snapshot()).hexdigest()[:16] for r in self.replicas]


def _script(log: Replicas) -> dict[str, Any]:
    session = expect(log.commit(OpenSession(now_ms=0, ttl_ms=60_000)), SessionOpened).session
    log.say(f"entry {log.index}: opened client session {session}")
    settings = {b"config/db/host": b"10.0.0.5", b"config/db/port": b"5432", b"config/web/n": b"3"}
    for seq, (key, value) in enumerate(settings.items(), 1):
        reply = expect(
            log.commit(SessionRequest(session, seq, seq - 1, Put(key, value))), PutResult
        )
        log.say(
            f"entry {log.index}: put {key.decode()}={value.decode()} -> revision {reply.revision}"
        )
    move = SessionRequest(
        session,
        4,
        3,
        Txn(
            (Compare.value(b"config/db/host", CompareOp.EQUAL, b"10.0.0.5"),),
            (Put(b"config/db/host", b"10.0.0.6"), Put(b"config/db/moved", b"yes")),
        ),
    )
    first = expect(log.commit(move), TxnResult)
    log.say(
        f"entry {log.index}: txn if host == 10.0.0.5 then move it: succeeded={first.succeeded}, "
        f"two writes in revision {first.revision}"
    )
    retry = expect(log.commit(move), TxnResult)
    head = expect(log.replicas[0].read(Range(b"config/db/host")), RangeResult)
    deduplicated = retry == first and head.kvs[0].version == 2 and head.revision == first.revision
    log.say(
        f"entry {log.index}: the client retried the txn (reply lost): answered from the "
        f"session cache, applied once: {deduplicated} (host version {head.kvs[0].version})"
    )
    watch = expect(
        log.replicas[0].read(Changes.prefix(b"config/db/", start_revision=2)), ChangesResult
    )
    for event in watch.events:
        kv = event.kv
        log.say(f"  watch config/db/: {event.kind.name} {kv.key.decode()} at {kv.mod_revision}")
    expect(log.commit(Compact(first.revision)), CompactResult)
    old = log.replicas[0].read(Range(b"config/db/host", revision=2))
    assert isinstance(old, Failure), old
    log.say(
        f"entry {log.index}: compacted to {first.revision}; reading revision 2 now raises "
        f"{type(to_exception(old)).__name__}: {old.message}"
    )
    late = ClusterState()
    late.restore(log.replicas[0].snapshot())
    log.replicas.append(late)
    log.say(f"a fourth replica starts from replica 1's snapshot ({len(late.snapshot())} bytes)")
    reply = expect(log.commit(SessionRequest(session, 5, 4, Put(b"config/web/n", b"5"))), PutResult)
    log.say(f"entry {log.index}: put config/web/n=5 on all four -> revision {reply.revision}")
    hashes = log.hashes()
    agree = len(set(hashes)) == 1
    log.say(f"snapshot sha256 per replica: {' '.join(hashes)} -> identical: {agree}")
    return {
        "entries": log.index,
        "deduplicated": deduplicated,
        "snapshot_hashes": hashes,
        "identical": agree,
    }


def run_in_process(args: argparse.Namespace) -> int:
    log = Replicas(3)
    summary = _script(log)
    summary["lines"] = log.lines
    emit(args, summary, lambda s: "\n".join(s["lines"]))
    return 0 if summary["identical"] and summary["deduplicated"] else 1
