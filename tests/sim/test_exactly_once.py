"""Exactly-once from the appliers' view: a session request executed at a second log index
is a violation; a retry answered from the session table is not."""

from __future__ import annotations

import pytest

from chaos.sim import SimConfig, simulate
from chaos.sim.exactly_once import ExactlyOnce
from chaos.sim.invariants import SafetyViolation, Where
from statemachine.cluster import ClusterState
from statemachine.codec import decode, encode
from statemachine.errors import Code
from statemachine.kv import Put
from statemachine.results import Failure
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


# -- what clients send and are answered (a client pipelining on one session) -----------


def request(session: int, seq: int, ack: int, value: bytes) -> bytes:
    return encode(SessionRequest(session, seq, ack, Put(b"k", value)))


def test_a_sequence_sent_with_two_commands_is_a_violation() -> None:
    check = ExactlyOnce(fail)
    check.on_sent(1000, request(5, 1, 0, b"a"))
    check.on_sent(1000, request(5, 1, 0, b"a"))  # a retry: the same bytes
    check.on_sent(1000, request(6, 1, 0, b"b"))  # the same seq in another session
    with pytest.raises(SafetyViolation) as caught:
        check.on_sent(1000, request(5, 1, 0, b"c"))
    assert caught.value.invariant == "exactly-once"
    assert "session 5's request 1 with two different commands" in caught.value.detail


def test_a_retry_after_its_sequence_was_acknowledged_is_a_violation() -> None:
    check = ExactlyOnce(fail)
    first, second, third = request(5, 1, 0, b"a"), request(5, 2, 0, b"b"), request(5, 3, 2, b"c")
    for sent in (first, second, third):
        check.on_sent(1000, sent)
    check.on_sent(1000, third)  # retrying the newest is fine
    with pytest.raises(SafetyViolation) as caught:
        check.on_sent(1000, second)  # ack 2 told the table to forget its reply
    assert "request 2 again after acknowledging every reply up to 2" in caught.value.detail


def test_an_answer_must_be_the_reply_its_execution_kept() -> None:
    check = ExactlyOnce(fail)
    state = observed(check, node=1)
    session = opened(state)
    one, two = request(session, 1, 0, b"a"), request(session, 2, 0, b"b")
    for sent in (one, two):
        check.on_sent(1000, sent)
    first, second = state.apply(2, one).result, state.apply(3, two).result
    assert first != second  # (the revisions differ)
    check.on_answer(1, 1000, one, first)
    check.on_answer(1, 1000, one, state.apply(4, one).result)  # a retry, from the table
    check.on_answer(1, 1000, two, encode(Failure.of(Code.REPLY_DISCARDED, "gone")))
    assert check.answers_checked == 3
    with pytest.raises(SafetyViolation) as caught:
        check.on_answer(1, 1000, two, first)
    assert caught.value.nodes == (1,)
    assert "index 3 kept another reply" in caught.value.detail
    never = request(session, 3, 0, b"c")
    with pytest.raises(SafetyViolation) as caught:
        check.on_answer(2, 1000, never, first)
    assert "it was never executed" in caught.value.detail
