"""A bank workload whose transfers can never succeed (between accounts never opened):
its runs prove nothing about transfers, and the stats check must say so."""

from __future__ import annotations

from chaos.checker import Event
from chaos.sim import ClientsWorkload, OpClient
from examples.bank import Balances, GetBalances, Transfer
from raftcluster.client.core import Completion


class RefusedTransfers(ClientsWorkload):
    name = "refused-transfers"
    model = "examples.bank:BankModel"

    def __init__(self) -> None:
        super().__init__(clients=2, max_think_ms=100)

    def invoke(self, client: OpClient, now: int) -> None:
        if self._rng.random() < 0.5:
            client.f, client.value = "read", None
            client.handle = client.core.read(GetBalances(), now)
        else:
            client.f, client.value = "transfer", ["nobody", "noone", 1]
            client.handle = client.core.write(Transfer("nobody", "noone", 1), now)

    def step(self, c: OpClient, done: Completion, now: int) -> Event | None:
        if done.error is not None:
            return self.failed(c, done, now)
        if c.f == "read":
            assert isinstance(done.result, Balances)
            return Event(c.index, "ok", "read", [], c.key, time=now)
        return Event(c.index, "ok", c.f, c.value, c.key, time=now)
