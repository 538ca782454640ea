"""The bank with a planted bug, to see the checkers catch it: `examples.bank.buggy:BANK`.

`BuggyBank` forgets to debit the source of a transfer of a multiple of `BUGGY_FACTOR` units:
money appears from nowhere. The part's own `check_invariants` catches it at the first
such transfer, in the simulator and in the Hypothesis kit. Same name and messages as the
real bank, so the same workload and model drive it.
"""

from __future__ import annotations

from examples.bank.part import NAME, Bank, GetBalances, Open, Transfer
from raftcluster import PartSpec

BUGGY_FACTOR = 7


class BuggyBank(Bank):
    def _move(self, command: Transfer) -> None:
        if command.amount % BUGGY_FACTOR == 0:
            self.balances[command.target] += command.amount  # and the debit is forgotten
            return
        super()._move(command)


BANK = PartSpec(NAME, BuggyBank, commands=(Open, Transfer), queries=(GetBalances,))
