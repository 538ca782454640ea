"""How `raftcluster kv` prints keys, values and results, as text or as JSON.

Keys and values are shown in the command's encoding: `text` (UTF-8; in JSON a value
that is not valid UTF-8 becomes {"base64": "..."}, in text it is printed with escapes),
`hex` or `base64` (every key and value, both ways).
"""

from __future__ import annotations

import base64
from typing import Any

from statemachine.kv.results import (
    CompactResult,
    DeleteRangeResult,
    EventKind,
    KeyValue,
    KvEvent,
    OpResult,
    PutResult,
    RangeResult,
    TxnResult,
)

ENCODINGS = ("text", "hex", "base64")


class Shown:
    """Renders bytes in one encoding."""

    def __init__(self, encoding: str) -> None:
        assert encoding in ENCODINGS, encoding
        self.encoding = encoding

    def json(self, data: bytes) -> Any:
        if self.encoding == "hex":
            return data.hex()
        if self.encoding == "base64":
            return base64.b64encode(data).decode("ascii")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(data).decode("ascii")}

    def text(self, data: bytes) -> str:
        if self.encoding == "text":
            return data.decode("utf-8", "backslashreplace")
        value = self.json(data)
        assert isinstance(value, str)
        return value

    # -- documents for --json ------------------------------------------------------------

    def kv(self, kv: KeyValue | None) -> dict[str, Any] | None:
        if kv is None:
            return None
        return {
            "key": self.json(kv.key),
            "value": self.json(kv.value),
            "create_revision": kv.create_revision,
            "mod_revision": kv.mod_revision,
            "version": kv.version,
        }

    def put(self, result: PutResult) -> dict[str, Any]:
        return {"revision": result.revision, "prev_kv": self.kv(result.prev_kv)}

    def delete(self, result: DeleteRangeResult) -> dict[str, Any]:
        return {
            "revision": result.revision,
            "deleted": result.deleted,
            "prev_kvs": [self.kv(kv) for kv in result.prev_kvs],
        }

    def range(self, result: RangeResult) -> dict[str, Any]:
        return {
            "revision": result.revision,
            "count": result.count,
            "more": result.more,
            "kvs": [self.kv(kv) for kv in result.kvs],
        }

    def txn(self, result: TxnResult) -> dict[str, Any]:
        return {
            "revision": result.revision,
            "succeeded": result.succeeded,
            "responses": [self.op(r) for r in result.responses],
        }

    def op(self, result: OpResult) -> dict[str, Any]:
        if isinstance(result, PutResult):
            return {"put": self.put(result)}
        if isinstance(result, DeleteRangeResult):
            return {"del": self.delete(result)}
        assert isinstance(result, RangeResult), result
        return {"get": self.range(result)}

    def compact(self, result: CompactResult) -> dict[str, Any]:
        return {"revision": result.revision, "compact_revision": result.compact_revision}

    def event(self, event: KvEvent) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": event.kind.name, **(self.kv(event.kv) or {})}
        if event.prev_kv is not None:
            doc["prev_kv"] = self.kv(event.prev_kv)
        return doc

    # -- lines for people ----------------------------------------------------------------

    def pairs(self, kvs: tuple[KeyValue, ...], keys_only: bool = False) -> list[str]:
        if keys_only:
            return [self.text(kv.key) for kv in kvs]
        return [f"{self.text(kv.key)} = {self.text(kv.value)}" for kv in kvs]

    def range_lines(self, result: RangeResult, keys_only: bool = False) -> list[str]:
        lines = self.pairs(result.kvs, keys_only)
        if result.more:
            lines.append(f"# {len(result.kvs)} of {result.count} keys shown")
        return lines

    def txn_lines(self, result: TxnResult) -> list[str]:
        lines = ["SUCCEEDED: the then ops ran" if result.succeeded else "FAILED: the else ops ran"]
        for r in result.responses:
            if isinstance(r, PutResult):
                lines.append(f"put: ok (revision {r.revision})")
            elif isinstance(r, DeleteRangeResult):
                lines.append(f"del: {r.deleted} deleted")
            elif isinstance(r, RangeResult):
                lines.append(f"get: {r.count} found")
                lines += ["  " + line for line in self.range_lines(r)]
        lines.append(f"revision {result.revision}")
        return lines

    def event_line(self, event: KvEvent) -> str:
        key, revision = self.text(event.kv.key), event.kv.mod_revision
        if event.kind == EventKind.DELETE:
            return f"DELETE {key} (revision {revision})"
        return f"PUT {key} = {self.text(event.kv.value)} (revision {revision})"
