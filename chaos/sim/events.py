"""The simulator's trace events: typed values, one class per kind of thing that happened.

Every event is a frozen attrs class whose first field is `time_ms` (virtual time) and
whose class attribute `KIND` names it in the trace hash and in `trace.jsonl`. Both
engines (ours and pysyncobj) write the same classes for what they share; an engine's
own events (pysyncobj's applies and truncations) are classes here too, so that a reader
never reads a record by list position.

`plain(value)` is the one conversion of an event (or anything it holds) to plain data:
the trace hashes its canonical CBOR, and `chaos.report.convert` writes it as JSON.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import attrs

from chaos.sim.faults import Fault


class Event:
    """Base of every trace event (a marker: subclasses are attrs classes)."""

    __slots__ = ()
    KIND: ClassVar[str] = ""
    time_ms: int


def _event(kind: str) -> Any:
    def register(cls: type[Event]) -> type[Event]:
        cls.KIND = kind
        assert kind not in EVENT_KINDS, f"two events named {kind}"
        EVENT_KINDS[kind] = cls
        return cls

    return register


EVENT_KINDS: dict[str, type[Event]] = {}


# -- the run and its engine --------------------------------------------------------------


@_event("engine")
@attrs.frozen
class EngineStarted(Event):
    """The engine under test and the settings this seed drew for it."""

    time_ms: int
    engine: str
    version: str
    settings: tuple[tuple[str, int | bool | str], ...] = ()


@_event("heal")
@attrs.frozen
class Healed(Event):
    """The fault period ended: every fault undone, the workload stopped."""

    time_ms: int


@_event("end")
@attrs.frozen
class RunEnded(Event):
    time_ms: int
    outcome: str


@_event("fault")
@attrs.frozen
class FaultInjected(Event):
    time_ms: int
    fault: Fault


# -- nodes -------------------------------------------------------------------------------


@_event("start")
@attrs.frozen
class NodeStarted(Event):
    time_ms: int
    node: int
    incarnation: int


@_event("crash")
@attrs.frozen
class NodeCrashed(Event):
    """A node lost power: `during_persist` if a persist was under way, and what its disk
    lost (bytes written but not synced; `torn`: a record was cut in two)."""

    time_ms: int
    node: int
    during_persist: bool = False
    lost_bytes: int = 0
    torn: bool = False


@_event("refused")
@attrs.frozen
class NodeRefused(Event):
    """A node would not start from its data directory (corrupted, or lost): `error` is
    what it said. It stays down."""

    time_ms: int
    node: int
    error: str


@_event("resume")
@attrs.frozen
class NodeResumed(Event):
    time_ms: int
    node: int


@_event("role")
@attrs.frozen
class RoleChanged(Event):
    """A node's role or term changed (roles: follower, pre_candidate, candidate, leader)."""

    time_ms: int
    node: int
    role: str
    term: int


@_event("ready")
@attrs.frozen
class CycleDone(Event):
    """A node completed a Ready cycle: its hard state (if it changed), the last entry
    written, the last applied, a snapshot installed or taken, messages and answers out."""

    time_ms: int
    node: int
    hard_state: tuple[int, int, int] | None  # term, vote, commit
    last_written: int
    last_applied: int
    snapshot_installed: int
    snapshot_taken: int
    messages: int
    answers: int


# -- the network -------------------------------------------------------------------------


@_event("send")
@attrs.frozen
class Sent(Event):
    """A message left `src` for `dst` (`what`: its class; `term`, or the request id for a
    client message), `size` bytes on the wire, to arrive at each of `deliveries` (none:
    lost or cut; two: duplicated)."""

    time_ms: int
    src: int
    dst: int
    what: str
    term: int
    size: int
    deliveries: tuple[int, ...]


@_event("deliver")
@attrs.frozen
class Delivered(Event):
    time_ms: int
    src: int
    dst: int


@_event("malformed")
@attrs.frozen
class Malformed(Event):
    """A damaged frame reached `dst` and was refused by the decoder (as it must be)."""

    time_ms: int
    src: int
    dst: int
    reason: str


# -- clients -----------------------------------------------------------------------------


@_event("done")
@attrs.frozen
class OperationDone(Event):
    time_ms: int
    client: int
    handle: int
    outcome: str
    index: int = 0


# -- the cluster service (the groups workload) ---------------------------------------------


@_event("resource")
@attrs.frozen
class ResourceActed(Event):
    """A node's controller asked its supervisor to `do` (start, stop, monitor) a resource
    of `group` under `epoch`: where the cluster service put what, in the trace hash."""

    time_ms: int
    node: int
    group: str
    resource: str
    epoch: int
    do: str


@_event("resource-done")
@attrs.frozen
class ResourceSeen(Event):
    """What a node's supervisor saw of a resource (an action's answer, or an exit)."""

    time_ms: int
    node: int
    group: str
    resource: str
    epoch: int
    seen: str
    detail: str = ""


# -- pysyncobj's own (seen from outside: docs/chaos-pysyncobj.md) ------------------------


@_event("apply")
@attrs.frozen
class Applied(Event):
    time_ms: int
    node: int
    index: int
    key: str
    value: str


@_event("truncate")
@attrs.frozen
class Truncated(Event):
    time_ms: int
    node: int
    first: int
    commit: int
    applied: int


@_event("leader")
@attrs.frozen
class LeaderSeen(Event):
    time_ms: int
    node: int
    term: int


@_event("finding")
@attrs.frozen
class Finding(Event):
    time_ms: int
    kind: str


@_event("overflow")
@attrs.frozen
class LinkReset(Event):
    """pysyncobj sent more than a send buffer's worth in one step: the link is reset."""

    time_ms: int
    src: int
    dst: int


@_event("submit")
@attrs.frozen
class Submitted(Event):
    time_ms: int
    client: int
    node: int
    handle: int
    key: str
    value: str


@_event("ack")
@attrs.frozen
class Acknowledged(Event):
    time_ms: int
    handle: int
    index: int


@_event("read")
@attrs.frozen
class ReadServed(Event):
    time_ms: int
    client: int
    server: int
    leads: bool
    key: str
    value: str


# -- plain data --------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """`value` as plain data (lists, dicts, ints, strings, bytes): an event or a fault
    becomes a dict with its `kind` and fields, a tuple a list, an enum its value."""
    if isinstance(value, Event):
        out: dict[str, Any] = {"kind": value.KIND}
        for field in attrs.fields(type(value)):  # type: ignore[arg-type]
            out[field.name] = plain(getattr(value, field.name))
        return out
    if attrs.has(type(value)):
        out = {"kind": value.kind} if isinstance(value, Fault) else {}
        for field in attrs.fields(type(value)):
            out[field.name] = plain(getattr(value, field.name))
        return out
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value
