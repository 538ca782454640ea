"""Session time comes from the leader: clients whose clocks run up to an hour ahead leave
honest sessions alone (raftcluster/node/session_time.py)."""

from __future__ import annotations

from chaos.sim import KvWorkload, ScriptedFaults, SimConfig, Simulator
from raftcluster.raft.types import EntryKind
from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode
from statemachine.sessions.messages import EndReason, OpenSession, SessionEnded

HOUR_MS = 3_600_000


def test_client_clocks_an_hour_off_expire_no_honest_session() -> None:
    config = SimConfig(
        seed=11, nodes=3, duration_ms=12_000, max_client_clock_skew_ms=HOUR_MS,
        snapshot_every_entries=10**8,  # keep the whole log, to replay it below
    )  # fmt: skip
    sim = Simulator(config, ScriptedFaults([]), KvWorkload(clients=4))
    result = sim.run()
    assert result.ok, result.violation
    offsets = [clock.local(0) for clock in sim.client_clocks.values()]
    assert max(offsets) - min(offsets) > HOUR_MS // 10  # the clients disagree by minutes
    replica = sim.engine.replicas()[sim.engine.leader()]
    entries = replica.core.log_entries()
    assert entries[0].index == 1  # nothing compacted: the replay sees every entry
    replay = ClusterState()
    opened, expired = 0, []
    for entry in entries:
        if entry.kind != EntryKind.NORMAL or not entry.data:
            continue
        opened += isinstance(decode(entry.data, Message), OpenSession)
        applied = replay.apply(entry.index, entry.data)
        ended = (decode(e, Message) for e in applied.events)
        expired += [
            e for e in ended if isinstance(e, SessionEnded) and e.reason == EndReason.EXPIRED
        ]
    assert opened >= 4  # every client opened a session, kept alive with the leader's time
    assert expired == []
