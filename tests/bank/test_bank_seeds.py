"""Simulator seeds of the bank inside a Hypothesis test (`chaos.testing`), as
docs/your-state-machine.md writes it; and the helper's failure names the replay."""

from __future__ import annotations

import pytest

from chaos.testing import run_seed, simulator_test

test_the_bank_under_faults = simulator_test(
    parts=("examples.bank:BANK",),
    workload="examples.bank:BankWorkload",
    nodes=3,
    duration_ms=3_000,
    max_examples=2,
    budget_s=20,
)


def test_a_failing_seed_says_what_it_found_and_how_to_replay_it() -> None:
    with pytest.raises(AssertionError) as caught:
        run_seed(
            1,
            parts=("examples.bank.buggy:BANK",),
            workload="examples.bank:BankWorkload",
            duration_ms=6_000,
        )
    message = str(caught.value)
    assert "seed 1: violation:" in message and "part-invariant" in message
    assert "replay: raftcluster chaos run --seed 1 --nodes 3 --duration 6" in message
    assert "--part examples.bank.buggy:BANK" in message


def test_a_bad_path_fails_when_the_test_is_made() -> None:
    with pytest.raises(Exception, match="examples.bank:NOPE"):
        simulator_test(parts=("examples.bank:NOPE",), workload="examples.bank:BankWorkload")
