"""What the live clients ask: a register (read / write / cas on one key) or a small
key-value map (get / put on a few keys), with the checker's model for each.

`next_op` is pure (a seeded generator per client); `execute` is the shell that sends one
operation through the real client (`raftcluster.Client`) and says how it ended.
Every written value is unique (client and count), so a stale read cannot hide.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs

from chaos.live.cluster import AdminFailed
from chaos.report import OpType
from raftcluster.client import txn
from raftcluster.client.api import Client
from raftcluster.errors import ClientClosed, OutcomeUnknown, Unavailable
from statemachine.errors import ClusterError, Rejected

KEY_PREFIX: Final = "chaos/"  # every key a live workload touches starts with this
REGISTER_KEY: Final = KEY_PREFIX + "register"
KV_KEYS: Final = tuple(f"{KEY_PREFIX}k{i}" for i in range(3))
# The checker's model (and its options) for each workload's history.
MODELS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "register": ("register", {"initial": None}),
    "kv": ("kv", {"initial": ""}),
}


@attrs.frozen
class Op:
    f: str
    key: str | None  # None for the register (one value: the model has no keys)
    value: Any  # the argument, as the history records it


@attrs.frozen
class Outcome:
    type: OpType
    output: Any = None
    error: str | None = None


def next_op(
    rng: random.Random, workload: str, client: int, count: int, last_seen: Any = None
) -> Op:
    """The `count`-th operation of client `client` (values unique per client and count).
    A register cas expects `last_seen`, the value this client last read or wrote (so it
    often succeeds); with none seen yet it is a write instead."""
    assert 0 <= count < 1_000_000, count
    unique = (client + 1) * 1_000_000 + count
    if workload == "register":
        roll = rng.random()
        if roll < 0.4:
            return Op("read", None, None)
        if roll < 0.7 or last_seen is None:
            return Op("write", None, unique)
        return Op("cas", None, [last_seen, unique])
    key = rng.choice(KV_KEYS)
    if rng.random() < 0.5:
        return Op("get", key, None)
    return Op("put", key, f"{client}-{count}")


# Reads a key's value some other way than the client's linearizable read (the planted
# stale-read bug: one node's own copy). None: the key is absent.
Reader = Callable[[str], Awaitable[bytes | None]]


async def execute(
    client: Client, op: Op, timeout_ms: int, *, reader: Reader | None = None
) -> Outcome:
    """Send `op`; how it ended. OutcomeUnknown (and a close cutting a write short) is
    `info`; a definite refusal (`Unavailable`, `Rejected`) is `fail`. With `reader`,
    reads go through it instead of the client. Cancellation: a write may still be
    applied; the caller records the operation as not answered."""
    try:
        return await _send(client, op, timeout_ms, reader)
    except (OutcomeUnknown, ClientClosed) as e:
        return Outcome(OpType.INFO, error=type(e).__name__)
    except (Unavailable, Rejected, AdminFailed) as e:  # AdminFailed: a planted read
        return Outcome(OpType.FAIL, error=type(e).__name__)
    except ClusterError as e:  # any other error: we cannot say the op had no effect
        return Outcome(OpType.INFO, error=type(e).__name__)


async def _send(client: Client, op: Op, timeout_ms: int, reader: Reader | None) -> Outcome:
    key = op.key if op.key is not None else REGISTER_KEY
    if op.f in ("read", "get"):
        if reader is not None:
            raw = await reader(key)
        else:
            found = await client.get(key, timeout_ms=timeout_ms)
            raw = found.value if found is not None else None
        if op.f == "get":
            return Outcome(OpType.OK, raw.decode() if raw is not None else "")
        return Outcome(OpType.OK, int(raw) if raw is not None else None)
    if op.f in ("write", "put"):
        await client.put(key, str(op.value), timeout_ms=timeout_ms)
        return Outcome(OpType.OK, op.value)
    assert op.f == "cas", op
    expected, new = op.value
    builder = client.txn(txn.value(key) == str(expected)).then(txn.put(key, str(new)))
    result = await builder.commit(timeout_ms=timeout_ms)
    if result.succeeded:
        return Outcome(OpType.OK, op.value)
    return Outcome(OpType.FAIL, error="compare-failed")
