"""The trace of a simulation: a structured record of every event, and its hash.

A record is a short list of ints, strings and bytes: `[time_ms, kind, ...]`. The hash is
the SHA-256 of the canonical CBOR encodings of all records, each prefixed by its length,
so the same seed gives the same hash byte for byte in any process (nothing in a record
depends on the iteration order of a set or dict of strings, or on object ids).
Records are also kept (up to `max_records`) for reports and for comparing two runs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2

DEFAULT_MAX_RECORDS = 2_000_000


class Trace:
    __slots__ = ("_hash", "records", "count", "max_records")

    def __init__(self, keep: bool = True, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self._hash = hashlib.sha256()
        self.records: list[list[Any]] = []
        self.count = 0
        self.max_records = max_records if keep else 0

    def add(self, *fields: Any) -> None:
        data = cbor2.dumps(fields, canonical=True)
        self._hash.update(len(data).to_bytes(4, "big"))
        self._hash.update(data)
        self.count += 1
        if len(self.records) < self.max_records:
            self.records.append(list(fields))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
