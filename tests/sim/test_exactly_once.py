"""Exactly-once from the appliers' view: a session request executed at a second log index
is a violation; a retry answered from the session table is not."""

from __future__ import annotations

import pytest

from chaos.sim import SimConfig, simulate
from chaos.sim.exactly_once import ExactlyOnce
from chaos.sim.invariants import SafetyViolation, Where
from statemachine.cluster import ClusterState
from statemachine.codec import decode, encode
from statemachine.kv import Put
from statemachine.sessions.messages import OpenSession, SessionOpened, SessionRequest
from statemachine.sessions.table import SessionTable


def fail(invariant: str, message: str, nodes: tuple[int, ...]) -> SafetyViolation:
    return SafetyViolation(invariant, message, Where(0, 0), nodes)


def observed(observer: ExactlyOnce, node: int) -> ClusterState:
    return ClusterState(observer=observer.observer(node))


def opened(state: ClusterState) -> int:
    result = decode(state.apply(1, encode(OpenSession(0, 10_000))).result, SessionOpened)
    return result.session


def test_a_retry_is_answered_from_the_table_and_replays_agree() -> None:
    observer = ExactlyOnce(fail)
    state = observed(observer, node=1)
    session = opened(state)
    request = encode(SessionRequest(session, 1, 0, Put(b"k", b"v")))
    first = state.apply(2, request)
    again = state.apply(3, request)  # the same request, proposed again after a timeout
    assert first.result == again.result
    assert observer.executed == {(session, 1): (2, 1)}
    # Another replica (or this one after a restart) executes it at the same index.
    other = observed(observer, node=2)
    opened(other)
    other.apply(2, request)
    assert observer.executions == 2


def test_a_request_executed_twice_is_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SessionTable, "admit", lambda self, session, seq, ack: None)
    observer = ExactlyOnce(fail)
    state = observed(observer, node=3)
    session = opened(state)
    request = encode(SessionRequest(session, 1, 0, Put(b"k", b"v")))
    state.apply(2, request)
    with pytest.raises(SafetyViolation) as caught:
        state.apply(3, request)
    assert caught.value.invariant == "exactly-once"
    assert "index 3" in caught.value.detail and "index 2" in caught.value.detail


def test_a_session_table_that_forgets_retries_is_caught_in_the_simulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checks a session table makes, but never the answer from its kept replies: a
    write retried after a timeout or a change of leader runs twice. Retries that reach
    the log twice need faults; a few short seeds of the random mix have them."""
    admit = SessionTable.admit

    def forgets(self: SessionTable, session: int, seq: int, ack: int) -> bytes | None:
        admit(self, session, seq, ack)
        return None

    monkeypatch.setattr(SessionTable, "admit", forgets)
    for seed in range(10):
        config = SimConfig(seed=seed, nodes=3, duration_ms=20_000)
        result = simulate(config, check_timeout_s=None)
        assert result.error is None, result.error
        if not result.ok:
            assert result.violation is not None
            assert result.violation["invariant"] == "exactly-once", result.violation
            assert result.checks["exactly_once"] == "failed"
            assert result.checks["invariants"] == "ok"
            return
    pytest.fail("10 seeds with a forgetful session table and no double execution seen")
