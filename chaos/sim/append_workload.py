"""`AppendWorkload`: get, put and append on a few keys, checked with the `kv` model.

`get` is a linearizable read (absent reads as ""); `put` replaces the value with a string
no one wrote before; `append` adds a unique suffix. The kv store has no append, so an
append is an optimistic transaction retried inside the operation: read the key's value
and mod revision, then a txn that puts value + suffix only if the mod revision is still
the one read. Exactly one txn succeeds at most, and it is the operation's linearization
point; a txn whose compare failed had no effect, so the operation reads and tries again
(up to `max_tries`, then it fails: no effect). A txn whose outcome is unknown makes the
whole append `info`.
"""

from __future__ import annotations

from chaos.checker import (
    Event,
)
from chaos.sim.workload import ClientsWorkload, OpClient
from raftcluster.client.core import Completion
from statemachine.kv import Compare, CompareOp, CompareTarget, Put, Range, RangeResult, Txn
from statemachine.kv.results import TxnResult

READ_STAGE, TXN_STAGE = 0, 1


class AppendWorkload(ClientsWorkload):
    name = "append"
    model = "kv"

    def __init__(
        self, clients: int = 4, keys: int = 3, max_think_ms: int = 100, max_tries: int = 5
    ) -> None:
        super().__init__(clients, max_think_ms)
        self.keys = tuple(f"a{i}" for i in range(keys))
        self.max_tries = max_tries

    def invoke(self, client: OpClient, now: int) -> None:
        rng, core = self._rng, client.core
        client.key = rng.choice(self.keys)
        key = client.key.encode()
        roll = rng.random()
        token = f"{client.index}.{client.count};"
        if roll < 0.4:
            client.f, client.value = "get", None
            client.handle = core.read(Range(key), now)
        elif roll < 0.6:
            client.f, client.value = "put", token
            client.handle = core.write(Put(key, token.encode()), now)
        else:
            client.f, client.value, client.scratch = "append", token, 0  # tries so far
            self._read_for_append(client, now)

    def _read_for_append(self, c: OpClient, now: int) -> None:
        c.stage = READ_STAGE
        c.handle = c.core.read(Range(c.key.encode()), now)

    def step(self, c: OpClient, done: Completion, now: int) -> Event | None:
        if done.error is not None:  # a read had no effect; a txn's error is the append's
            return self.failed(c, done, now)
        result = done.result
        if c.f == "put":
            return Event(c.index, "ok", "put", c.value, c.key, time=now)
        if c.f == "get":
            assert isinstance(result, RangeResult)
            value = result.kvs[0].value.decode() if result.kvs else ""
            return Event(c.index, "ok", "get", value, c.key, time=now)
        if c.stage == READ_STAGE:
            assert isinstance(result, RangeResult)
            self._try_append(c, result, now)
            return None
        assert isinstance(result, TxnResult)
        if result.succeeded:
            return Event(c.index, "ok", "append", c.value, c.key, time=now)
        if c.scratch >= self.max_tries:  # every try lost its race: nothing was appended
            return Event(c.index, "fail", "append", c.value, c.key, time=now, error="contended")
        self._read_for_append(c, now)
        return None

    def _try_append(self, c: OpClient, read: RangeResult, now: int) -> None:
        key = c.key.encode()
        current, revision = (read.kvs[0].value, read.kvs[0].mod_revision) if read.kvs else (b"", 0)
        compare = Compare(key, CompareTarget.MOD, CompareOp.EQUAL, revision)
        txn = Txn((compare,), success=(Put(key, current + c.value.encode()),))
        c.stage, c.scratch = TXN_STAGE, c.scratch + 1
        c.handle = c.core.write(txn, now)
