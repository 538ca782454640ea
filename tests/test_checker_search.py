"""The search on hand-made histories, and the time budget: `unknown`, never a guess."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from chaos.checker import Verdict, check, history_from_events, make_model
from chaos.checker.models.register import RegisterModel
from chaos.checker.search import (
    BASE_BYTES,
    ENTRY_BYTES,
    MEMO_BYTES,
    POLL_EVERY,
    Item,
    Outcome,
    search,
)
from chaos.checker.verdict import Never, partitions_of, prepare
from tests.checker_reference import hard_register_history

REGISTER = RegisterModel(initial=0)


class AfterPolls:
    """A deadline that expires at its n-th look: makes `unknown` deterministic."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    def expired(self) -> bool:
        self.polls -= 1
        return self.polls < 0


def write(call: int, ret: int | None, value: Any) -> Item:
    return Item(call, ret, ("write", value, None), None, False)


def read(call: int, ret: int, value: Any) -> Item:
    return Item(call, ret, ("read", None, None), value, True, value)


def run(*items: Item) -> Outcome:
    return search(items, REGISTER.init(), REGISTER.step, Never()).outcome


def test_overlapping_reads_may_see_old_and_new() -> None:
    # write(1) spans both reads; each may be ordered before or after it.
    assert run(write(0, 10, 1), read(1, 5, 1), read(2, 6, 0)) is Outcome.OK
    assert run(write(0, 10, 1), read(1, 3, 0), read(4, 6, 1)) is Outcome.OK


def test_a_read_after_a_newer_read_may_not_go_back() -> None:
    # Once a read returned 1 (at 3), a read called later (at 4) cannot see 0.
    assert run(write(0, 10, 1), read(1, 3, 1), read(4, 6, 0)) is Outcome.ILLEGAL


def test_real_time_order_is_respected() -> None:
    # The write returned before the read was called: the read must see it.
    assert run(write(0, 1, 1), read(2, 3, 0)) is Outcome.ILLEGAL
    assert run(write(0, 2, 1), read(2, 3, 0)) is Outcome.OK  # equal positions overlap


def test_pending_operations_may_take_effect_any_time_after_their_call_or_never() -> None:
    assert run(write(0, None, 1), read(1, 2, 0)) is Outcome.OK  # never happened
    assert run(write(0, None, 1), read(5, 6, 1)) is Outcome.OK  # happened late
    assert run(read(1, 2, 1), write(3, None, 1)) is Outcome.ILLEGAL  # not before its call


def test_the_dead_end_names_the_blocked_operation_and_state() -> None:
    items = (write(0, 1, 2), read(2, 3, 2), read(4, 5, 7))
    result = search(items, REGISTER.init(), REGISTER.step, Never())
    assert result.outcome is Outcome.ILLEGAL and result.dead_end is not None
    assert result.dead_end.prefix == (0, 1)
    assert (result.dead_end.state, result.dead_end.blocked) == (2, 2)
    assert result.dead_end.candidates == (2,)


def test_items_must_come_in_order_of_call() -> None:
    with pytest.raises(ValueError, match="order of call"):
        run(read(5, 6, 0), write(0, 1, 1))
    with pytest.raises(ValueError, match="returns before its call"):
        run(write(5, 4, 1))


def test_the_budget_gives_unknown_never_a_guess() -> None:
    history = history_from_events(hard_register_history(10))  # ~5,000 configurations
    model = make_model("register")
    result = check(history, model, deadline=AfterPolls(3))  # gone at the 4th look: 2,048
    assert result.verdict is Verdict.UNKNOWN
    assert result.witness is None and result.linearizations == ()
    assert "time budget ran out" in result.reason
    assert result.to_json()["verdict"] == "unknown"
    finished = check(history, model, deadline=Never())
    assert finished.verdict is Verdict.ILLEGAL and finished.configurations > 2048


def test_a_budget_that_suffices_changes_nothing() -> None:
    items = (write(0, 1, 2), read(2, 3, 2), read(4, 5, 7))
    assert search(items, REGISTER.init(), REGISTER.step, AfterPolls(10)).outcome is Outcome.ILLEGAL


def test_the_memory_budget_gives_unknown_too() -> None:
    history = history_from_events(hard_register_history(12))  # ~25,000 configurations
    model = make_model("register")
    assert check(history, model).configurations > 20_000
    budget = BASE_BYTES + (1 << 20)  # room for ~8,000 configurations
    result = check(history, model, max_memory=budget)
    assert result.verdict is Verdict.UNKNOWN
    assert "memory budget (5.0 MiB) reached" in result.reason
    # Looked at every POLL_EVERY configurations: past the budget by at most that many.
    assert budget < result.memory < budget + POLL_EVERY * (ENTRY_BYTES + 4 * MEMO_BYTES)
    assert result.configurations < 1.5 * (1 << 20) / ENTRY_BYTES
    with pytest.raises(ValueError, match="max_memory must be positive"):
        check(history, model, max_memory=0)


def test_a_pending_operation_called_after_the_last_return_is_left_out() -> None:
    events = [
        {"process": 0, "type": "invoke", "f": "read", "value": None},
        {"process": 0, "type": "ok", "f": "read", "value": 0},
        {"process": 1, "type": "invoke", "f": "write", "value": 0},  # after it: left out
        {"process": 1, "type": "info", "f": "write", "value": 0},
        {"process": 2, "type": "invoke", "f": "write", "value": 7},  # never answered
    ]
    result = check(history_from_events(events), make_model("register", {"initial": 0}))
    assert result.verdict is Verdict.OK
    assert (result.checked, result.dropped) == (1, 2)
    # One called before that return is kept (a read of its value makes the model keep it).
    early = [events[2], *events[:2], events[3]]
    result = check(history_from_events(early), make_model("register", {"initial": 0}))
    assert (result.checked, result.dropped) == (2, 0)


def pending_appends(k: int) -> list[dict[str, Any]]:
    """k pending appends of distinct strings, and a get no order of them gives: the search
    meets every sequence of distinct appends, each a new state (13,700 for k = 7)."""
    strings = [letter * 40 for letter in "abcdefghij"[:k]]
    events: list[dict[str, Any]] = []
    for process, s in enumerate(strings):
        for kind in ("invoke", "info"):
            events.append({"process": process, "type": kind, "f": "append", "key": "k", "value": s})
    seen = "z" + "".join(strings)  # contains every append, so none is left out
    events.append({"process": k, "type": "invoke", "f": "get", "key": "k", "value": None})
    events.append({"process": k, "type": "ok", "f": "get", "key": "k", "value": seen})
    return events


@pytest.mark.parametrize(
    ("name", "events"),
    [("register", hard_register_history(11)), ("kv", pending_appends(7))],
    ids=["many-configurations", "many-states"],
)
def test_the_memory_charged_bounds_what_the_search_allocates(
    name: str, events: list[dict[str, Any]]
) -> None:
    model = make_model(name)
    (group,) = partitions_of(history_from_events(events).operations, model)
    part = prepare(group, model)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = search(part.items, part.model.init(), part.model.step, Never())
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert result.outcome is Outcome.ILLEGAL and result.configurations > 10_000
    assert peak <= result.memory, (peak, result.memory)
