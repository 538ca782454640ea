"""Keys and values as the client API takes them: bytes, or text (encoded as UTF-8)."""

from __future__ import annotations

from typing import Literal

from statemachine.errors import InvalidArgument
from statemachine.kv.keys import prefix_end

Data = bytes | str  # str is encoded as UTF-8
Consistency = Literal["linearizable", "stale"]
CONSISTENCIES: tuple[str, ...] = ("linearizable", "stale")


def to_bytes(data: Data, what: str) -> bytes:
    """`data` as bytes; raises InvalidArgument (naming `what`) for anything else."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    raise InvalidArgument(what, f"bytes or str expected, not {type(data).__name__}")


def range_end(key: bytes, end: Data | None, prefix: bool) -> bytes:
    """The `range_end` of a key selection: `end` (exclusive), every key starting with
    `key` (`prefix`), or the single key (neither)."""
    if prefix and end is not None:
        raise InvalidArgument("end", "give either end or prefix=True, not both")
    if prefix:
        return prefix_end(key)
    return b"" if end is None else to_bytes(end, "end")


def is_stale(consistency: str) -> bool:
    """Whether `consistency` asks for a stale read (it must be one of CONSISTENCIES)."""
    if consistency not in CONSISTENCIES:
        raise InvalidArgument("consistency", f"{consistency!r}: 'linearizable' or 'stale'")
    return consistency == "stale"
