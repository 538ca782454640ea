"""Client sessions with the Hypothesis kit: replicas fed one log must agree.

The `sessions` part's commands, drawn by `raftcluster.testing.commands_of` from its
message classes (session ids and sequence numbers from a few values, so that sessions
are opened, kept alive, retried, acknowledged, expired and closed), with `SessionRequest`
envelopes around kv puts. No model here (tests/test_sessions.py holds the rules): the
kit checks that `execute`, `apply(bytes)`, replicas catching up by log and by snapshot,
and a replica restarted from its own snapshot all agree, byte for byte.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

from raftcluster.testing import ReplicasMachine, commands_of, messages, queries_of
from statemachine.kv import Put
from statemachine.sessions import part as sessions_part
from statemachine.sessions.messages import SessionRequest
from statemachine.sessions.table import SessionLimits

LIMITS = SessionLimits()
SESSIONS = sessions_part.spec(LIMITS)
ids = st.integers(1, 4)  # OpenSession hands out ids from 1: a few collide with them
times = st.integers(0, 50_000)
small = {"session": ids, "now_ms": times, "ttl_ms": st.integers(1, 20_000)}
puts = messages(Put, key=st.sampled_from([b"a", b"b"]), value=st.binary(max_size=3))
requests = messages(
    SessionRequest, session=ids, seq=st.integers(1, 6), ack=st.integers(0, 6), command=puts
)


class SessionsMachine(ReplicasMachine):
    commands = st.one_of(commands_of(SESSIONS, **small), requests)
    queries = queries_of(SESSIONS, session=ids)


SessionsMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestSessionsReplicasAgree = SessionsMachine.TestCase
