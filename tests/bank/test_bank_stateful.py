"""The bank's Hypothesis test, as docs/your-state-machine.md writes it with the kit.

Replicas of the bank fed one log (through `execute`, `apply(bytes)`, lagging replicas
catching up by log and by snapshot), its invariants checked after every apply, against
the plain `ReferenceBank`. The same machine over the buggy bank must fail.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from examples.bank import BANK
from examples.bank.buggy import BANK as BUGGY_BANK
from examples.bank.reference import ReferenceBank
from raftcluster.testing import ReplicasMachine, commands_of, queries_of
from statemachine.part import InvariantBroken

accounts = st.sampled_from(["alice", "bob", "carol"])
amounts = st.integers(1, 150)


class BankMachine(ReplicasMachine):
    parts = (BANK,)
    commands = commands_of(BANK, account=accounts, source=accounts, target=accounts,
                           deposit=amounts, amount=amounts)  # fmt: skip
    queries = queries_of(BANK)

    def make_model(self) -> ReferenceBank:
        return ReferenceBank()


BankMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestBank = BankMachine.TestCase


class BuggyBankMachine(BankMachine):
    parts = (BUGGY_BANK,)


def test_the_same_machine_finds_the_planted_bug() -> None:
    # The bug needs a transfer of a multiple of 7 that the funds allow: about one example
    # in 80 meets it, so 200 examples missed it about one run in fifteen. 1,000 (it stops
    # at the first failure: 1-3 s) miss it about once in a million, and derandomize fixes
    # the sequence, so the test does not depend on the run.
    quick = settings(
        max_examples=1_000, stateful_step_count=30, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), phases=(Phase.generate,),  # no shrinking
        derandomize=True,
    )  # fmt: skip
    with pytest.raises((InvariantBroken, AssertionError, Flaky)) as caught:
        run_state_machine_as_test(BuggyBankMachine, settings=quick)
    assert "balances sum to" in str(caught.value) or "model says" in str(caught.value)
