"""The bank: a user part of the replicated state, as `docs/your-state-machine.md` builds it.

Accounts hold whole units of money. `Open(account, deposit)` opens an account with a
first deposit (the only way money enters the bank); `Transfer(source, target, amount)`
moves money between two open accounts and never overdraws; `GetBalances()` reads every
balance. Money is conserved: the balances always sum to what was deposited, and none is
negative (`Bank.check_invariants`, which the simulator and the Hypothesis kit call
after every apply).

Everything a replica needs is `BANK`, the part's `PartSpec`: name it by its import path,
`examples.bank:BANK`, in `cluster.toml`, on the `raftcluster chaos` command line, or in
`SimConfig(parts=...)`.
"""

from __future__ import annotations

import attrs

from raftcluster import ApplyContext, Message, PartSpec, Rejected, tagged
from statemachine.codec import int_range, max_len
from statemachine.errors import DecodeError
from statemachine.part import InvariantBroken, expect_snapshot

NAME = "bank"
MAX_ACCOUNTS = 1_000  # the bank's size limit: its snapshot is one message
MAX_AMOUNT = 10**12  # per deposit or transfer: keeps sums far inside a CBOR integer
NO_ACCOUNT = 10_100  # Rejected codes (user parts use 10000 up)
ACCOUNT_EXISTS = 10_101
INSUFFICIENT_FUNDS = 10_102
TOO_MANY_ACCOUNTS = 10_103
SAME_ACCOUNT = 10_104


def _account(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not 1 <= len(value) <= 64:
        raise ValueError(f"{attribute.name} must be 1 to 64 characters, got {len(value)}")


amounts = int_range(1, MAX_AMOUNT)


@tagged(12_100)
@attrs.frozen
class Open(Message):
    """Open `account` with `deposit` units in it."""

    account: str = attrs.field(validator=_account)
    deposit: int = attrs.field(validator=amounts)


@tagged(12_101)
@attrs.frozen
class Transfer(Message):
    """Move `amount` units from `source` to `target` (both open; `source` keeps >= 0)."""

    source: str = attrs.field(validator=_account)
    target: str = attrs.field(validator=_account)
    amount: int = attrs.field(validator=amounts)


@tagged(12_102)
@attrs.frozen
class GetBalances(Message):
    """Read every account's balance."""


@tagged(12_103)
@attrs.frozen
class Account(Message):
    name: str
    balance: int


@tagged(12_104)
@attrs.frozen
class Balances(Message):
    """The result of every command and of `GetBalances`: the accounts, by name."""

    accounts: tuple[Account, ...] = attrs.field(validator=max_len(MAX_ACCOUNTS, "accounts"))

    def as_dict(self) -> dict[str, int]:
        return {a.name: a.balance for a in self.accounts}


@tagged(12_105)
@attrs.frozen
class BankState(Message):
    """The snapshot: every account, by name, and the money deposited in all."""

    accounts: tuple[Account, ...] = attrs.field(validator=max_len(MAX_ACCOUNTS, "accounts"))
    deposited: int


class Bank:
    """The part: a balance per account, and the total deposited."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.deposited = 0

    def apply(self, command: Message, context: ApplyContext) -> Message:
        if isinstance(command, Open):
            self._open(command)
        elif isinstance(command, Transfer):
            self._check_transfer(command)
            self._move(command)
        else:  # the cluster routes only the classes of BANK.commands here
            raise TypeError(f"the bank has no command {type(command).__name__}")
        return self._balances()

    def _open(self, command: Open) -> None:
        if command.account in self.balances:
            raise Rejected(f"account {command.account!r} is open already", code=ACCOUNT_EXISTS)
        if len(self.balances) >= MAX_ACCOUNTS:
            raise Rejected(f"the bank holds {MAX_ACCOUNTS} accounts", code=TOO_MANY_ACCOUNTS)
        self.balances[command.account] = command.deposit
        self.deposited += command.deposit

    def _check_transfer(self, command: Transfer) -> None:
        for account in (command.source, command.target):
            if account not in self.balances:
                raise Rejected(f"no account {account!r}", code=NO_ACCOUNT)
        if command.source == command.target:
            raise Rejected("a transfer needs two accounts", code=SAME_ACCOUNT)
        balance = self.balances[command.source]
        if balance < command.amount:
            raise Rejected(
                f"{command.source!r} holds {balance}, less than {command.amount}",
                code=INSUFFICIENT_FUNDS,
                detail=balance,
            )

    def _move(self, command: Transfer) -> None:
        self.balances[command.source] -= command.amount
        self.balances[command.target] += command.amount

    def query(self, query: Message) -> Message:
        return self._balances()

    def _balances(self) -> Balances:
        return Balances(tuple(Account(n, b) for n, b in sorted(self.balances.items())))

    def snapshot(self) -> Message:
        return BankState(self._balances().accounts, self.deposited)

    def restore(self, snapshot: Message) -> None:
        state = expect_snapshot(snapshot, BankState, NAME)
        names = [a.name for a in state.accounts]
        if names != sorted(set(names)):
            raise DecodeError("BankState.accounts", "names are not unique and sorted")
        self.balances = {a.name: a.balance for a in state.accounts}
        self.deposited = state.deposited

    def check_invariants(self) -> None:
        """Money is conserved and no balance is negative."""
        total = sum(self.balances.values())
        if total != self.deposited:
            raise InvariantBroken(NAME, f"the balances sum to {total}, {self.deposited} went in")
        overdrawn = sorted(n for n, b in self.balances.items() if b < 0)
        if overdrawn:
            raise InvariantBroken(NAME, f"overdrawn accounts: {overdrawn}")


BANK = PartSpec(NAME, Bank, commands=(Open, Transfer), queries=(GetBalances,))
