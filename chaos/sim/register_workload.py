"""`RegisterWorkload`: one register (a kv key) read, written and compare-and-set.

Each client in turn reads the register (a linearizable read through ReadIndex), writes a
value no one wrote before, or does `cas(expected, new)`: a kv transaction that compares
the key's value with `expected` and, only if equal, puts `new`, so the state machine
decides it in one step. `expected` is a value the client saw or wrote lately. Values are
integers stored as their decimal bytes; the register starts absent (null).

History: `read` (value: what it read, null while absent), `write`, `cas` with value
`[expected, new]`; a cas whose compare failed is a `fail` that happened (`fail=definite`
in the `register` model). A cas that failed for any other reason had no effect, but
`fail` would claim it saw another value, so it is recorded `info` (weaker, still sound).
"""

from __future__ import annotations

from chaos.checker import (
    Event,
)
from chaos.sim.workload import ClientsWorkload, OpClient
from raftcluster.client.core import Completion
from statemachine.kv import Compare, CompareOp, CompareTarget, Put, Range, RangeResult, Txn
from statemachine.kv.results import TxnResult

KEY = "r"
MODEL_OPTIONS = {"initial": None, "fail": "definite"}
SEEN = 4  # recent values a client remembers, to pick a cas's expected value from


class RegisterWorkload(ClientsWorkload):
    name = "register"
    model = "register"
    model_options = MODEL_OPTIONS

    def __init__(self, clients: int = 4, max_think_ms: int = 100) -> None:
        super().__init__(clients, max_think_ms)
        self._recent: dict[int, list[int]] = {}  # client -> values it saw or wrote lately

    def invoke(self, client: OpClient, now: int) -> None:
        rng, core = self._rng, client.core
        client.key = KEY
        roll = rng.random()
        new = client.index * 1_000_000 + client.count
        reads = self.read_share(client.index)
        if roll < reads:
            client.f, client.value = "read", None
            client.handle = core.read(Range(KEY.encode()), now)
        elif roll < (1 + reads) / 2 or not self._seen(client):
            client.f, client.value = "write", new
            client.handle = core.write(Put(KEY.encode(), b"%d" % new), now)
        else:
            expected = rng.choice(self._seen(client))
            client.f, client.value = "cas", [expected, new]
            compare = Compare(KEY.encode(), CompareTarget.VALUE, CompareOp.EQUAL, b"%d" % expected)
            txn = Txn((compare,), success=(Put(KEY.encode(), b"%d" % new),))
            client.handle = core.write(txn, now)

    def _seen(self, client: OpClient) -> list[int]:
        return self._recent.setdefault(client.index, [])

    def _remember(self, client: OpClient, value: int | None) -> None:
        if value is None:
            return
        recent = self._seen(client)
        recent.append(value)
        del recent[:-SEEN]

    def step(self, c: OpClient, done: Completion, now: int) -> Event | None:
        if done.error is not None:
            event = self.failed(c, done, now)
            if c.f == "cas" and event.type == "fail":  # no effect, but not a failed compare
                return Event(c.index, "info", "cas", c.value, c.key, time=now, error=event.error)
            return event
        result = done.result
        if c.f == "read":
            assert isinstance(result, RangeResult)
            value = int(result.kvs[0].value) if result.kvs else None
            self._remember(c, value)
            return Event(c.index, "ok", "read", value, c.key, time=now)
        if c.f == "write":
            self._remember(c, c.value)
            return Event(c.index, "ok", "write", c.value, c.key, time=now)
        assert isinstance(result, TxnResult)
        if result.succeeded:
            self._remember(c, c.value[1])
            return Event(c.index, "ok", "cas", c.value, c.key, time=now)
        return Event(c.index, "fail", "cas", c.value, c.key, time=now, error="compare-failed")
