"""The checker agrees with a brute-force reference on thousands of small random histories.

The reference (tests/checker_reference.py) tries every order consistent with real time,
with its own statement of each model's semantics. Histories mix linearizable recordings
of a simulated object, corrupted ones and random ones, with failures (under both `fail`
semantics), unknown outcomes (info) and invocations never answered; and histories where
most operations are pending (see `histories(model, pending=True)`), on which the checker
leaves out the pending operations nothing can have seen: agreement there shows that
leaving them out never changes the verdict.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checker import Verdict, check, history_from_events, make_model
from chaos.checker.verdict import relax
from tests.checker_reference import brute_force, histories, options_for

MODELS = ["register", "kv", "mutex", "multi-register"]
EXAMPLES = {"register": 1500, "kv": 1000, "mutex": 1000, "multi-register": 1000}
PENDING_EXAMPLES = {"register": 600, "kv": 600, "mutex": 200, "multi-register": 400}


def cross_check(model_name: str, events: list[dict[str, Any]], options: dict[str, Any]) -> None:
    history = history_from_events(events)
    model = make_model(model_name, options)
    result = check(history, model, timeout_s=30, core_timeout_s=30)
    expected = brute_force(history.operations, model_name, options)
    assert result.verdict is (Verdict.OK if expected else Verdict.ILLEGAL), (events, options)
    if result.verdict is Verdict.ILLEGAL:
        witness = result.witness
        assert witness is not None and witness.core is not None
        # The core is illegal on its own, every other operation relaxed ...
        core = set(witness.core)
        assert not brute_force(relax(history.operations, core, model), model_name, options)
        # ... and 1-minimal: relaxing any one more of its operations makes it legal.
        assert witness.core_minimal
        for op_id in core:
            relaxed = relax(history.operations, core - {op_id}, model)
            assert brute_force(relaxed, model_name, options), (events, options, op_id)


@pytest.mark.parametrize("model_name", MODELS)
def test_agrees_with_brute_force(model_name: str) -> None:
    @settings(
        max_examples=EXAMPLES[model_name],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        events = data.draw(histories(model_name), label="events")
        options = data.draw(options_for(model_name), label="options")
        cross_check(model_name, events, options)

    run()


@pytest.mark.parametrize("model_name", MODELS)
def test_agrees_with_brute_force_when_most_operations_are_pending(model_name: str) -> None:
    @settings(
        max_examples=PENDING_EXAMPLES[model_name],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        events = data.draw(histories(model_name, pending=True), label="events")
        options = data.draw(options_for(model_name), label="options")
        cross_check(model_name, events, options)

    run()
