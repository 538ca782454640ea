"""Histories: JSONL events in, operations (call, return, input, output, status) out.

The format is the one of `shared/corpora/linearizability/README.md`, written by every
workload of the harness and by Jepsen-style tools. One JSON object per line, in real-time
order (a line's position is its time):

    {"index": 0, "process": 3, "type": "invoke", "f": "cas", "value": [1, 2]}
    {"index": 1, "process": 3, "type": "ok", "f": "cas", "value": [1, 2], "time": 1200}

- `process`: an integer, or the string "nemesis" (a fault record: skipped);
- `type`: "invoke", then one of "ok", "fail", "info" from the same process;
- `f`: the operation's name; `value`: its argument on invoke, its result on ok;
- optional: `key` (kv), `time` (any number, carried for reports), `error`, `index`.
  Other fields are ignored.

The order of lines, not `time`, decides which operations overlap: recorded clocks may
disagree with the order in which events were observed (the corpus's mutex history does).

Values are frozen into hashable equivalents (`chaos.checker.values`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from chaos.checker.errors import HistoryError
from chaos.checker.values import Frozen, freeze, thaw


class Status(enum.Enum):
    """How an operation ended. INFO: unknown, so it stays pending to the end of the history."""

    OK = "ok"
    FAIL = "fail"
    INFO = "info"


COMPLETIONS: Final = {"ok": Status.OK, "fail": Status.FAIL, "info": Status.INFO}


@attrs.frozen
class Operation:
    """One client operation: an invoke and the event that answered it (if any).

    `call` and `complete` are event positions (0-based, counting every event of the
    history, nemesis ones included); they define real-time order. An operation whose
    status is INFO (including one never answered, `complete` None) may have taken effect
    at any point after its call, or never: the checker treats it as pending to the end.
    """

    id: int  # index in History.operations, in order of invocation
    process: int
    f: str
    key: Frozen
    input: Frozen  # the invoke's value
    output: Frozen  # the completion's value (the result, for ok); None if never answered
    status: Status
    call: int
    complete: int | None
    call_time: float | None = None
    complete_time: float | None = None
    error: Frozen = None
    line: int = 0  # 1-based line of the invoke, for messages

    @property
    def pending(self) -> bool:
        """True when the outcome is unknown: no return point constrains it."""
        return self.status is Status.INFO

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "process": self.process,
            "f": self.f,
            "key": thaw(self.key),
            "input": thaw(self.input),
            "output": thaw(self.output),
            "status": self.status.value,
            "call": self.call,
            "complete": self.complete,
            "call_time": self.call_time,
            "complete_time": self.complete_time,
            "error": thaw(self.error),
        }


@attrs.frozen
class HistoryLimits:
    """Bounds on what a history may hold, so a bad file cannot exhaust memory."""

    max_operations: int = 200_000
    max_line_bytes: int = 1 << 20


@attrs.frozen
class History:
    """A parsed history: its operations in order of invocation, and where it came from."""

    source: str
    operations: tuple[Operation, ...]
    events: int  # events read, nemesis ones included
    nemesis_events: int = 0


@attrs.frozen
class Event:
    """One line of a history, for writers (workloads, the simulator, live runs).

    `Event(...).to_json_line()` gives the line; `parse_history` reads it back.
    """

    process: int | str
    type: str
    f: str
    value: Any = None
    key: Any = None
    time: float | None = None
    error: Any = None

    def to_json(self, index: int) -> dict[str, Any]:
        record: dict[str, Any] = {
            "index": index,
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "value": thaw(self.value),
        }
        if self.key is not None:
            record["key"] = thaw(self.key)
        if self.time is not None:
            record["time"] = self.time
        if self.error is not None:
            record["error"] = thaw(self.error)
        return record

    def to_json_line(self, index: int) -> str:
        return json.dumps(self.to_json(index), separators=(",", ":"))


def dump_events(events: Iterable[Event]) -> Iterator[str]:
    """The JSONL lines (with newlines) of `events`, indexed in order."""
    for index, event in enumerate(events):
        yield event.to_json_line(index) + "\n"


def load_history(path: str | Path, limits: HistoryLimits = HistoryLimits()) -> History:
    """Read and parse a JSONL history file. Raises `HistoryError` for anything malformed."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            return parse_history(_bounded_lines(handle, source, limits), source, limits)
    except OSError as e:
        raise HistoryError(source, 0, f"cannot read: {e.strerror or e}") from e


def _bounded_lines(handle: Any, source: str, limits: HistoryLimits) -> Iterator[bytes]:
    line_no = 0
    while True:
        line = handle.readline(limits.max_line_bytes + 1)
        if not line:
            return
        line_no += 1
        if len(line) > limits.max_line_bytes:
            raise HistoryError(
                source, line_no, f"line longer than the limit of {limits.max_line_bytes} bytes"
            )
        yield line


def parse_history(
    lines: Iterable[str | bytes],
    source: str = "<history>",
    limits: HistoryLimits = HistoryLimits(),
) -> History:
    """Parse JSONL lines (blank lines are skipped) into a History."""
    parser = _Parser(source, limits)
    for line_no, line in enumerate(lines, start=1):
        if len(line) > limits.max_line_bytes:
            raise HistoryError(
                source, line_no, f"line longer than the limit of {limits.max_line_bytes} bytes"
            )
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HistoryError(source, line_no, f"not valid JSON: {e}") from None
        parser.add(record, line_no)
    return parser.finish()


def history_from_events(
    events: Iterable[Event | Mapping[str, Any]],
    source: str = "<events>",
    limits: HistoryLimits = HistoryLimits(),
) -> History:
    """A History from in-memory events (`Event`s or dicts in the file format)."""
    parser = _Parser(source, limits)
    for position, event in enumerate(events):
        record = event.to_json(position) if isinstance(event, Event) else dict(event)
        parser.add(record, position + 1)
    return parser.finish()


@attrs.define
class _Invoked:
    process: int
    f: str
    key: Frozen
    value: Frozen
    position: int
    time: float | None
    line: int


class _Parser:
    """Pairs invokes with completions, one operation in flight per process."""

    def __init__(self, source: str, limits: HistoryLimits) -> None:
        self.source = source
        self.limits = limits
        self.position = 0
        self.nemesis = 0
        self.in_flight: dict[int, _Invoked] = {}
        # Operations are numbered in order of invocation; completion may come in any order.
        self.slots: list[_Invoked] = []
        self.done: dict[int, Operation] = {}
        self.slot_of: dict[int, int] = {}  # process -> slot of its in-flight operation

    def error(self, line: int, reason: str) -> HistoryError:
        return HistoryError(self.source, line, reason)

    def add(self, record: Any, line: int) -> None:
        if not isinstance(record, dict):
            raise self.error(line, f"an event must be a JSON object, not {_kind(record)}")
        position = self.position
        self.position += 1
        process = record.get("process")
        if process == "nemesis":
            self.nemesis += 1
            return
        if type(process) is not int:
            raise self.error(line, f'"process" must be an integer or "nemesis", not {process!r}')
        kind = record.get("type")
        f = record.get("f")
        if not isinstance(f, str):
            raise self.error(line, f'"f" must be a string, not {_kind(f)}')
        key = self._key(record, line)
        time = self._time(record, line)
        value = self._value(record, "value", line)
        if kind == "invoke":
            self._invoke(_Invoked(process, f, key, value, position, time, line))
        elif kind in COMPLETIONS:
            error = self._value(record, "error", line)
            self._complete(process, COMPLETIONS[kind], f, key, value, error, position, time, line)
        else:
            raise self.error(line, f'"type" must be one of invoke, ok, fail, info, not {kind!r}')

    def _key(self, record: dict[str, Any], line: int) -> Frozen:
        key = record.get("key")
        if key is None or type(key) is str or type(key) is int:
            return key
        raise self.error(line, f'"key" must be a string or an integer, not {_kind(key)}')

    def _time(self, record: dict[str, Any], line: int) -> float | None:
        time = record.get("time")
        if time is None or (type(time) in (int, float)):
            return time
        raise self.error(line, f'"time" must be a number, not {_kind(time)}')

    def _value(self, record: dict[str, Any], field: str, line: int) -> Frozen:
        try:
            return freeze(record.get(field))
        except TypeError as e:  # cannot happen for json.loads output; guards in-memory events
            raise self.error(line, f'"{field}": {e}') from None

    def _invoke(self, inv: _Invoked) -> None:
        if inv.process in self.in_flight:
            prior = self.in_flight[inv.process]
            raise self.error(
                inv.line,
                f"process {inv.process} invokes {inv.f} while its {prior.f} "
                f"invoked at line {prior.line} has not completed",
            )
        if len(self.slots) >= self.limits.max_operations:
            raise self.error(
                inv.line, f"more than the limit of {self.limits.max_operations} operations"
            )
        self.in_flight[inv.process] = inv
        self.slot_of[inv.process] = len(self.slots)
        self.slots.append(inv)

    def _complete(
        self,
        process: int,
        status: Status,
        f: str,
        key: Frozen,
        value: Frozen,
        error: Frozen,
        position: int,
        time: float | None,
        line: int,
    ) -> None:
        inv = self.in_flight.pop(process, None)
        if inv is None:
            raise self.error(line, f"process {process} completes {f} but invoked nothing")
        if f != inv.f:
            raise self.error(line, f"completes {f} but process {process} invoked {inv.f}")
        if key != inv.key:
            raise self.error(
                line, f"completes key {key!r} but process {process} invoked key {inv.key!r}"
            )
        slot = self.slot_of.pop(process)
        self.done[slot] = self._operation(slot, inv, status, value, position, time, error)

    def _operation(
        self,
        slot: int,
        inv: _Invoked,
        status: Status,
        output: Frozen,
        complete: int | None,
        time: float | None,
        error: Frozen,
    ) -> Operation:
        return Operation(
            id=slot,
            process=inv.process,
            f=inv.f,
            key=inv.key,
            input=inv.value,
            output=output,
            status=status,
            call=inv.position,
            complete=complete,
            call_time=inv.time,
            complete_time=time,
            error=error,
            line=inv.line,
        )

    def finish(self) -> History:
        for process, inv in self.in_flight.items():
            slot = self.slot_of[process]
            self.done[slot] = self._operation(slot, inv, Status.INFO, None, None, None, None)
        operations = tuple(self.done[slot] for slot in range(len(self.slots)))
        return History(self.source, operations, self.position, self.nemesis)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
