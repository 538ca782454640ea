"""The bank's simulator workload: clients opening accounts, transferring and reading.

`BankWorkload` is a `chaos.sim.ClientsWorkload`: each simulated client in turn opens a
new account (a name no one used, with a deposit of `DEPOSIT`), transfers a random amount
between two accounts it saw open, or reads every balance, with a random think time in
between. Its history is judged with `examples.bank:BankModel`, named by import
path in `model`: `raftcluster chaos run --part examples.bank:BANK --workload
examples.bank:BankWorkload` needs nothing else.

History: `open` with value `[account, deposit]`; `transfer` with `[source, target,
amount]` (a refused transfer is a `fail`: it had no effect); `read`, whose value is the
balances it saw, `[[account, balance], ...]` by account name.
"""

from __future__ import annotations

from chaos.checker import Event
from chaos.sim import ClientsWorkload, OpClient
from examples.bank.part import Balances, GetBalances, Open, Transfer
from raftcluster.client.core import Completion

DEPOSIT = 100  # each new account's first deposit
MAX_TRANSFER = 80  # transfers move 1 to this many units: some overdraw, and are refused
OPEN_SHARE = 0.15  # of a client's operations, the share that opens an account
READ_SHARE = 0.35  # of the others, the share that reads


class BankWorkload(ClientsWorkload):
    name = "bank"
    model = "examples.bank:BankModel"

    def __init__(self, clients: int = 3, max_think_ms: int = 150) -> None:
        super().__init__(clients, max_think_ms)
        self.accounts: list[str] = []  # accounts some client saw open, in order of opening

    def invoke(self, client: OpClient, now: int) -> None:
        rng, core = self._rng, client.core
        roll = rng.random()
        if roll < OPEN_SHARE or len(self.accounts) < 2:
            account = f"c{client.index}-{client.count}"
            client.f, client.value = "open", [account, DEPOSIT]
            client.handle = core.write(Open(account, DEPOSIT), now)
        elif roll < OPEN_SHARE + READ_SHARE:
            client.f, client.value = "read", None
            client.handle = core.read(GetBalances(), now)
        else:
            source, target = rng.sample(self.accounts, 2)
            amount = rng.randint(1, MAX_TRANSFER)
            client.f, client.value = "transfer", [source, target, amount]
            client.handle = core.write(Transfer(source, target, amount), now)

    def step(self, c: OpClient, done: Completion, now: int) -> Event | None:
        if done.error is not None:
            return self.failed(c, done, now)
        if c.f == "open":
            self.accounts.append(c.value[0])
        if c.f == "read":
            assert isinstance(done.result, Balances)
            seen = [[a.name, a.balance] for a in done.result.accounts]
            return Event(c.index, "ok", "read", seen, c.key, time=now)
        return Event(c.index, "ok", c.f, c.value, c.key, time=now)
