"""A plain reference bank for the Hypothesis kit (`raftcluster.testing.ReplicasMachine`).

The rules of `docs/your-state-machine.md`, written as simply as possible: the replicas'
results must equal what this says (a refusal by its code).
"""

from __future__ import annotations

from examples.bank.part import (
    ACCOUNT_EXISTS,
    INSUFFICIENT_FUNDS,
    MAX_ACCOUNTS,
    NO_ACCOUNT,
    SAME_ACCOUNT,
    TOO_MANY_ACCOUNTS,
    Account,
    Balances,
    Open,
    Transfer,
)
from raftcluster import Message, Rejected


class ReferenceBank:
    def __init__(self) -> None:
        self.balances: dict[str, int] = {}

    def execute(self, command: Message) -> Message:
        b = self.balances
        if isinstance(command, Open):
            if command.account in b:
                raise Rejected("open already", code=ACCOUNT_EXISTS)
            if len(b) >= MAX_ACCOUNTS:
                raise Rejected("full", code=TOO_MANY_ACCOUNTS)
            b[command.account] = command.deposit
        else:
            assert isinstance(command, Transfer)
            if command.source not in b or command.target not in b:
                raise Rejected("no account", code=NO_ACCOUNT)
            if command.source == command.target:
                raise Rejected("same account", code=SAME_ACCOUNT)
            if b[command.source] < command.amount:
                raise Rejected("overdraft", code=INSUFFICIENT_FUNDS, detail=b[command.source])
            b[command.source] -= command.amount
            b[command.target] += command.amount
        return self.query(command)

    def query(self, query: Message) -> Message:
        return Balances(tuple(Account(n, v) for n, v in sorted(self.balances.items())))
