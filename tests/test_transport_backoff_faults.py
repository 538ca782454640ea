"""Pure parts: the backoff schedule, the fault layer's decisions, the limits' validation."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftcluster.transport import Backoff, FaultLayer, PeerFaults
from raftcluster.transport.config import Limits
from statemachine.errors import InvalidArgument

backoffs = st.builds(
    lambda initial, extra, multiplier, jitter: Backoff(
        initial, initial + extra, multiplier, jitter
    ),
    st.integers(1, 5000),
    st.integers(0, 60000),
    st.floats(1.0, 10.0),
    st.floats(0.0, 1.0),
)


@given(backoffs, st.integers(0, 10_000), st.integers())
def test_delays_stay_within_the_jittered_envelope(backoff: Backoff, attempt: int, seed: int):
    delay = backoff.delay_ms(attempt, random.Random(seed))
    envelope = backoff.envelope_ms(attempt)
    assert envelope * (1 - backoff.jitter) - 1e-9 <= delay <= envelope <= backoff.max_ms
    assert delay >= backoff.initial_ms * (1 - backoff.jitter) - 1e-9


@given(backoffs, st.integers(0, 200))
def test_envelope_grows_until_the_cap(backoff: Backoff, attempt: int) -> None:
    assert backoff.envelope_ms(attempt) <= backoff.envelope_ms(attempt + 1)
    if backoff.multiplier >= 2.0 and attempt >= 64:
        assert backoff.envelope_ms(attempt) == backoff.max_ms


@given(backoffs, st.integers())
def test_same_seed_same_delays(backoff: Backoff, seed: int) -> None:
    first = [backoff.delay_ms(a, random.Random(seed)) for a in range(10)]
    again = [backoff.delay_ms(a, random.Random(seed)) for a in range(10)]
    assert first == again


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_ms": 0}, {"initial_ms": 10, "max_ms": 5}, {"multiplier": 0.5}, {"jitter": 1.5}],
)
def test_bad_backoffs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument):
        Backoff(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", [f.name for f in attrs.fields(Limits)])
def test_every_transport_limit_must_be_positive(field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        Limits(**{field: 0})  # type: ignore[arg-type]
    assert refused.value.field == f"Limits.{field}"


def test_no_faults_by_default_and_no_randomness_drawn() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    layer = FaultLayer(rng)
    assert all(layer.decide(peer).deliver and layer.decide(peer).delay_ms == 0 for peer in range(5))
    assert rng.getstate() == state


def test_blocked_and_certain_drops_always_drop() -> None:
    layer = FaultLayer(random.Random(1))
    layer.set(2, PeerFaults(blocked=True))
    layer.set(3, PeerFaults(drop_probability=1.0))
    assert not any(layer.decide(2).deliver or layer.decide(3).deliver for _ in range(100))
    assert layer.decide(4).deliver
    layer.clear(2)
    assert layer.decide(2).deliver and not layer.decide(3).deliver
    layer.clear()
    assert layer.decide(3).deliver and layer.active() == {}


@given(st.floats(0.01, 0.99), st.integers())
def test_drops_follow_the_injected_generator(probability: float, seed: int) -> None:
    layer = FaultLayer(random.Random(seed))
    layer.set(2, PeerFaults(drop_probability=probability, delay_ms=7))
    verdicts = [layer.decide(2) for _ in range(50)]
    model = random.Random(seed)
    assert [v.deliver for v in verdicts] == [model.random() >= probability for _ in range(50)]
    assert all(v.delay_ms == 7 for v in verdicts if v.deliver)


def test_setting_no_fault_removes_the_entry_and_values_are_checked() -> None:
    layer = FaultLayer(random.Random(0))
    layer.set(2, PeerFaults(delay_ms=5))
    layer.set(2, PeerFaults())
    assert layer.active() == {}
    with pytest.raises(InvalidArgument):
        PeerFaults(drop_probability=1.5)
    with pytest.raises(InvalidArgument):
        PeerFaults(delay_ms=-1)
