"""The clients' history of a live run, as it is observed: events in the order they
happened (the order of lines is what the checker trusts), with real times.

`Recorder` is a plain object fed by the client tasks (trio runs one at a time, so the
order of calls is the order of events). It gives both the checker's `Event`s and the
report's `ClientOp`s, numbered alike: operation `i` is the `i`-th invoke.
"""

from __future__ import annotations

from typing import Any

import attrs

from chaos.checker import Event
from chaos.report import ClientOp, OpType

MAX_OPERATIONS = 200_000  # the report's limit; a longer run stops recording (and says so)


@attrs.define
class _Open:
    index: int
    process: int
    f: str
    key: Any
    input: Any
    invoke_ms: float


class Recorder:
    def __init__(self, max_operations: int = MAX_OPERATIONS) -> None:
        self.events: list[Event] = []
        self._ops: list[ClientOp | _Open] = []
        self._max = max_operations

    @property
    def full(self) -> bool:
        return len(self._ops) >= self._max

    def invoke(self, process: int, f: str, value: Any, key: Any, now_ms: float) -> int:
        """Record a call; returns the operation's index (for `complete`)."""
        assert not self.full, "the caller checks `full` before invoking"
        index = len(self._ops)
        self._ops.append(_Open(index, process, f, key, value, now_ms))
        self.events.append(Event(process, "invoke", f, value, key, time=now_ms))
        return index

    def complete(
        self,
        index: int,
        outcome: OpType,
        output: Any,
        now_ms: float,
        *,
        error: str | None = None,
    ) -> None:
        """Record the answer of operation `index`: `output` is its result when ok."""
        op = self._ops[index]
        assert isinstance(op, _Open), f"operation {index} is already complete"
        value = output if outcome is OpType.OK else op.input
        self.events.append(
            Event(op.process, outcome.value, op.f, value, op.key, time=now_ms, error=error)
        )
        self._ops[index] = ClientOp(
            index, op.process, op.f, op.input, output if outcome is OpType.OK else None,
            outcome, op.invoke_ms, now_ms, key=op.key, error=error,
        )  # fmt: skip

    def operations(self) -> tuple[ClientOp, ...]:
        """Every operation; one never answered is `info`, with no answer time."""
        return tuple(op if isinstance(op, ClientOp) else _unanswered(op) for op in self._ops)


def _unanswered(op: _Open) -> ClientOp:
    return ClientOp(
        op.index, op.process, op.f, op.input, None, OpType.INFO, op.invoke_ms, None,
        key=op.key, error="not answered",
    )  # fmt: skip
