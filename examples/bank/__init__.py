"""A small bank as a user's replicated state machine (docs/your-state-machine.md).

- `examples.bank:BANK`: the part (accounts, transfers that never overdraw, money
  conserved: `Bank.check_invariants`);
- `examples.bank:BankWorkload`: its simulator workload; `examples.bank:BankModel`: its
  model for the linearizability checker;
- `examples.bank.buggy:BANK`: the same part with a planted bug, for the checkers to find.
"""

from examples.bank.model import BankModel
from examples.bank.part import (
    BANK,
    Account,
    Balances,
    Bank,
    BankState,
    GetBalances,
    Open,
    Transfer,
)
from examples.bank.workload import BankWorkload

__all__ = [
    "BANK",
    "Account",
    "Balances",
    "Bank",
    "BankModel",
    "BankState",
    "BankWorkload",
    "GetBalances",
    "Open",
    "Transfer",
]
