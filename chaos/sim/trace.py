"""The trace of a simulation: every event (`chaos.sim.events`) in order, and its hash.

The hash is the SHA-256 of each event's canonical CBOR encoding (`[KIND, field values]`,
a nested fault as its plain form), each prefixed by its length, so the same seed gives
the same hash byte for byte in any process (nothing in an event depends on the iteration
order of a set or dict of strings, or on object ids). Events are also kept (up to
`max_records`) for reports and for comparing two runs.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable
from typing import Any

import attrs
import cbor2

from chaos.sim.events import Event, plain

DEFAULT_MAX_RECORDS = 2_000_000
# Encoded events are hashed in batches of about this many bytes (one `update` call per
# batch instead of two per event; the digest is the same).
HASH_BATCH_BYTES = 64 * 1024

_FIELDS: dict[type[Event], Callable[[Event], tuple[Any, ...]]] = {}


def _values(event: Event) -> tuple[Any, ...]:
    getter = _FIELDS.get(type(event))
    if getter is None:
        names = [f.name for f in attrs.fields(type(event))]  # type: ignore[arg-type]
        get = operator.attrgetter(*names)
        getter = (lambda e: (get(e),)) if len(names) == 1 else get
        _FIELDS[type(event)] = getter
    return getter(event)


def _encode_other(encoder: cbor2.CBOREncoder, value: Any) -> None:
    encoder.encode(plain(value))


class Trace:
    __slots__ = ("_hash", "_unhashed", "records", "count", "max_records")

    def __init__(self, keep: bool = True, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self._hash = hashlib.sha256()
        self._unhashed = bytearray()  # encoded events not yet given to `_hash`
        self.records: list[Event] = []
        self.count = 0
        self.max_records = max_records if keep else 0

    def add(self, event: Event) -> None:
        self._hash_event(
            cbor2.dumps([event.KIND, *_values(event)], canonical=True, default=_encode_other)
        )
        if self.max_records and len(self.records) < self.max_records:
            self.records.append(event)

    def add_values(self, kind: type[Event], *values: Any) -> None:
        """`add(kind(*values))`, without building the event unless it is kept: the hot
        events (sends, cycles) of a run whose trace is only hashed cost less so.

        `values` are integers, strings, None and tuples of them, for which cbor2's
        default encoding gives the canonical bytes (canonical CBOR differs only for
        floats, maps and sets), at less cost: the hash is the same as `add`'s."""
        data = cbor2.dumps([kind.KIND, *values])
        unhashed = self._unhashed  # (`_hash_event`, written out: this is the hot one)
        unhashed += len(data).to_bytes(4, "big")
        unhashed += data
        self.count += 1
        if len(unhashed) >= HASH_BATCH_BYTES:
            self._hash.update(unhashed)
            unhashed.clear()
        if self.max_records and len(self.records) < self.max_records:
            self.records.append(kind(*values))

    def _hash_event(self, data: bytes) -> None:
        unhashed = self._unhashed
        unhashed += len(data).to_bytes(4, "big")
        unhashed += data
        self.count += 1
        if len(unhashed) >= HASH_BATCH_BYTES:
            self._hash.update(unhashed)
            unhashed.clear()

    def hexdigest(self) -> str:
        if self._unhashed:
            self._hash.update(self._unhashed)
            self._unhashed.clear()
        return self._hash.hexdigest()
