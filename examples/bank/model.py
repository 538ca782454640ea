"""The bank's model for the linearizability checker: every balance, one sequential bank.

A state is the tuple of `(account, balance)` pairs, by account name. `open` is legal when
the account is absent; `transfer` when both accounts are open, distinct, and the source
holds the amount; `read` when it saw exactly the state. A failed operation had no effect
and is left out; one whose outcome is unknown may have happened (the checker tries both).

Named by import path: `raftcluster chaos check history.jsonl --model
examples.bank:BankModel`, or `make_model("examples.bank:BankModel")`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos.checker import BaseModel, ModelError, Operation, OptionReader, Prepared, Status

State = tuple[tuple[str, int], ...]


class BankModel(BaseModel):
    # A model named by its import path: a report's `raftcluster chaos check` line then
    # names it so, and runs as printed.
    name = "examples.bank:BankModel"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BankModel:
        OptionReader(cls.name, options).finish()  # it takes none
        return cls()

    def init(self) -> State:
        return ()

    def prepare(self, op: Operation) -> Prepared | None:
        if op.status is Status.FAIL:
            return None
        if op.f == "read":
            if op.status is not Status.OK:
                return None
            return Prepared(("read",), op.output, read_only=True, only_in=op.output)
        if op.f in ("open", "transfer"):
            return Prepared((op.f, *op.input), None)
        raise ModelError(self.name, f"line {op.line}: no operation {op.f!r} (open, transfer, read)")

    def step(self, state: State, input: Any, output: Any) -> tuple[bool, State]:
        kind = input[0]
        if kind == "read":
            return state == output, state
        balances = dict(state)
        if kind == "open":
            _, account, deposit = input
            if account in balances:
                return False, state
            balances[account] = deposit
        else:
            _, source, target, amount = input
            if source == target or target not in balances:
                return False, state
            if balances.get(source, -1) < amount:
                return False, state
            balances[source] -= amount
            balances[target] += amount
        return True, tuple(sorted(balances.items()))
