"""The bank in process, as docs/your-state-machine.md shows it first."""

from __future__ import annotations

import pytest

from examples.bank import BANK, Account, Balances, GetBalances, Open, Transfer
from examples.bank.buggy import BANK as BUGGY_BANK
from examples.bank.part import INSUFFICIENT_FUNDS
from raftcluster import ClusterState, Failure
from statemachine.part import InvariantBroken


def test_the_bank_in_process() -> None:
    state = ClusterState(parts=[BANK])
    state.execute(1, Open("alice", 100))
    state.execute(2, Open("bob", 20))
    moved = state.execute(3, Transfer("alice", "bob", 70)).result
    assert moved == Balances((Account("alice", 30), Account("bob", 90)))
    refused = state.execute(4, Transfer("alice", "bob", 31)).result
    assert isinstance(refused, Failure)
    assert (refused.code, refused.detail) == (INSUFFICIENT_FUNDS, 30)
    assert state.read(GetBalances()) == moved
    state.check_invariants()


def test_the_planted_bug_breaks_the_invariant() -> None:
    state = ClusterState(parts=[BUGGY_BANK])
    state.execute(1, Open("alice", 100))
    state.execute(2, Open("bob", 20))
    state.execute(3, Transfer("alice", "bob", 14))
    with pytest.raises(InvariantBroken, match="the balances sum to 134, 120 went in"):
        state.check_invariants()
