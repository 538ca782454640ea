"""The trace of a simulation: every event (`chaos.sim.events`) in order, and its hash.

The hash is the SHA-256 of one line per event, in order: the `repr` of the tuple
`(KIND, field values...)` and a newline (UTF-8). The hot events (sends, cycles:
`add_values`) hold only integers, strings, None and tuples of them, whose `repr` is the
same in every process; any other event's line holds the canonical CBOR of
`[KIND, field values]` instead (a nested fault as its plain form), as bytes, so that a
set or map in it hashes alike in every process too. So the same seed gives the same
hash byte for byte in any process: nothing in an event depends on the iteration order
of a set or dict of strings, or on object ids. A hot event's line is written by one
`%` format per kind, `(KIND, %r, %r, ...)`: the same text as the tuple's `repr`, without
building the tuple. Lines are hashed in batches of `HASH_BATCH_EVENTS` (one join and one
hash update per batch); the digest does not depend on where a batch ends. Events are also
kept (up to `max_records`) for reports and for comparing two runs.
"""

from __future__ import annotations

import enum
import hashlib
import operator
from collections.abc import Callable
from typing import Any

import attrs
import cbor2

from chaos.sim.events import Event, plain

DEFAULT_MAX_RECORDS = 2_000_000
# Events whose lines wait to be hashed, at most (one `repr` call and one hash update per
# batch instead of an encoding per event).
HASH_BATCH_EVENTS = 1024

_FIELDS: dict[type[Event], Callable[[Event], tuple[Any, ...]]] = {}
# kind -> the `%` format of its line: `repr((KIND, *values))` (each value `%r`, as a
# tuple's `repr` writes its items)
_LINES: dict[type[Event], str] = {}


def _line_format(kind: type[Event], count: int) -> str:
    line = _LINES[kind] = "(" + repr(kind.KIND) + (", %r" * count if count else ",") + ")"
    return line


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


# The exact types cbor2 encodes itself (and that hold nothing to convert).
_NATIVE = frozenset({int, bytes, str, bool, float, type(None)})
_NATIVE_BASES = (int, bytes, str, float)  # (subclasses too: an IntEnum, a StrEnum)


def _native(value: Any) -> Any:
    """`value` as `_encode_other` makes cbor2 write it: an attrs value or an enum as its
    plain form, through lists, tuples and dict values; the same bytes without the hook.
    (cbor2's first call of a `default` hook in a process imports modules of its own:
    about 30 ms, a few per cent of a simulated seed.) Anything else is left to the hook."""
    kind = type(value)
    if kind in _NATIVE:
        return value
    if kind is list or kind is tuple:
        return [_native(item) for item in value]
    if kind is dict:
        return {key: _native(item) for key, item in value.items()}
    if isinstance(value, _NATIVE_BASES):
        return value
    if attrs.has(kind) or isinstance(value, enum.Enum):
        return plain(value)
    return value


class Trace:
    __slots__ = ("_hash", "_unhashed", "records", "count", "max_records")

    def __init__(self, keep: bool = True, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self._hash = hashlib.sha256()
        self._unhashed: list[str] = []  # events' lines not yet hashed
        self.records: list[Event] = []
        self.count = 0
        self.max_records = max_records if keep else 0

    def add(self, event: Event) -> None:
        line = [event.KIND, *[v if type(v) in _NATIVE else _native(v) for v in _values(event)]]
        data = cbor2.dumps(line, canonical=True, default=_encode_other)
        self._line(repr((event.KIND, data)))
        if self.max_records and len(self.records) < self.max_records:
            self.records.append(event)

    def add_values(self, kind: type[Event], *values: Any) -> None:
        """`add(kind(*values))`, without building the event unless it is kept: the hot
        events (sends, cycles) of a run whose trace is only hashed cost less so.

        `values` are integers, strings, None and tuples of them (whose `repr` is the
        same in every process), hashed as they are."""
        unhashed = self._unhashed  # (`_line`, inline: two events per message sent)
        unhashed.append((_LINES.get(kind) or _line_format(kind, len(values))) % values)
        self.count += 1
        if len(unhashed) >= HASH_BATCH_EVENTS:
            self._flush()
        if self.max_records and len(self.records) < self.max_records:
            self.records.append(kind(*values))

    def _line(self, line: str) -> None:
        unhashed = self._unhashed
        unhashed.append(line)
        self.count += 1
        if len(unhashed) >= HASH_BATCH_EVENTS:
            self._flush()

    def _flush(self) -> None:
        unhashed = self._unhashed
        if unhashed:
            self._hash.update(("\n".join(unhashed) + "\n").encode())
            unhashed.clear()

    def hexdigest(self) -> str:
        self._flush()
        return self._hash.hexdigest()
