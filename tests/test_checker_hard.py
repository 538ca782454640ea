"""The hard histories of bench/hard_histories.py get a verdict, not `unknown`.

Many clients, many pending writes: each of these came back `unknown` from the checker
before it left out the pending writes nothing can see (it stopped at 2,000,000
configurations), and porcupine decides most of them only in 7 to 50 s and 1 to 4 GiB,
the rest not in 60 s. Each is checked on an `EffortClock` with the command line's
budget (60 "seconds", about 30 million configurations, on any machine) and the default
memory budget, so the outcome does not depend on the machine's speed or load. The
histories are linearizable as recorded; `bad` corrupts one late read, and the verdict
must then be `illegal`. A few quick ones run by default, all of them in the soak run.
"""

from __future__ import annotations

import attrs
import pytest

from bench.hard_histories import CASES, HardCase, recorded
from chaos.checker import EffortClock, Verdict, check, history_from_events, make_model

BUDGET_S = 60.0  # effort seconds: the command line's default
QUICK = {"kv-c10-k2-n60-p05-s1", "kv-c10-k2-n60-p20-s1", "kv-c50-k10-n40-p05-s1"}
QUICK_BAD = {"kv-c10-k2-n60-p10-s1", "kv-c50-k10-n40-p20-s2"}


def verdict_of(case: HardCase) -> Verdict:
    history = history_from_events(recorded(case), source=case.name)
    result = check(
        history, make_model(case.model, case.options), timeout_s=BUDGET_S, clock=EffortClock()
    )
    assert result.verdict is not Verdict.UNKNOWN, result.reason
    return result.verdict


def test_the_cases_are_distinct_and_the_quick_ones_among_them() -> None:
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names)
    assert set(names) >= QUICK | QUICK_BAD


@pytest.mark.parametrize("case", [c for c in CASES if c.name in QUICK], ids=lambda c: c.name)
def test_a_hard_history_is_decided(case: HardCase) -> None:
    assert verdict_of(case) is Verdict.OK


@pytest.mark.parametrize("case", [c for c in CASES if c.name in QUICK_BAD], ids=lambda c: c.name)
def test_a_hard_history_with_one_bad_read_is_illegal(case: HardCase) -> None:
    assert verdict_of(attrs.evolve(case, bad=True)) is Verdict.ILLEGAL


@pytest.mark.soak
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("bad", [False, True], ids=["recorded", "bad"])
def test_every_hard_history_is_decided(case: HardCase, bad: bool) -> None:
    expected = Verdict.ILLEGAL if bad else Verdict.OK
    assert verdict_of(attrs.evolve(case, bad=bad)) is expected
