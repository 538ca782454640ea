"""The model protocol: the sequential specification a history is checked against.

A model is a deterministic state machine over hashable states. The checker asks it five
things (see docs/checker.md, "Adding a model"):

- `init()`: the state before the first operation;
- `prepare(op)`: the operation as the model's `(input, output, read_only)`, or None when
  the operation constrains nothing and can be left out (a read that timed out, a write
  that definitely failed). Raise `ModelError` for an operation the model does not know.
  For an INFO operation, `prepare` describes it *taking effect*; the checker itself
  covers the case where it never happened. `read_only` promises that the step never
  changes the state (it may still be illegal): the checker then linearizes the
  operation as soon as it is legal, which is what makes long read-heavy histories fast;
- `step(state, input, output)`: `(legal, new_state)`; the state must not be mutated and
  must be hashable (tuples, frozensets, strings, ints);
- `partition(ops)`: groups of operations that touch disjoint parts of the state, each
  checked on its own (P-compositionality); one group when nothing is independent.
  `for_partition(group)` may return a model specialised to one group (the kv model
  returns one whose state is one key's string); it prepares and steps that group;
- `plain()`: the model a witness is told in, with states as they are (a partition model
  may merge states nothing tells apart; see BaseModel.plain);
- `describe_state(state)` and `describe_operation(op)`: for witnesses and reports.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from chaos.checker.errors import ModelError
from chaos.checker.history import Operation, Status
from chaos.checker.search import ANYWHERE
from chaos.checker.values import Frozen, thaw

State = Hashable


class Prepared(NamedTuple):
    """An operation as its model sees it.

    `read_only`: the step never changes the state. `only_in`: for a read-only operation
    legal in exactly one state (a read that returned v, in a model whose state is the
    value), that state; the search then finds it by looking the state up instead of
    calling `step`. Leave it out when unsure: it only makes checking faster.
    """

    input: Any
    output: Any
    read_only: bool = False
    only_in: Any = ANYWHERE


class Model(Protocol):
    """What the checker needs from a sequential specification."""

    name: str

    def options(self) -> dict[str, Any]:
        """The options this instance was built with, as JSON values (for reports)."""
        ...

    def init(self) -> State: ...

    def prepare(self, op: Operation) -> Prepared | None: ...

    def step(self, state: State, input: Any, output: Any) -> tuple[bool, State]: ...

    def partition(self, ops: Sequence[Operation]) -> list[list[Operation]]: ...

    def for_partition(self, ops: Sequence[Operation]) -> Model:
        """The model that checks one partition (often `self`; see BaseModel)."""
        ...

    def plain(self) -> Model:
        """The model a witness is told in (often `self`; see BaseModel)."""
        ...

    def describe_state(self, state: State) -> Any: ...

    def describe_operation(self, op: Operation) -> str: ...


class BaseModel:
    """Defaults for a model: one partition, states and operations shown as JSON."""

    name = "base"

    def options(self) -> dict[str, Any]:
        return {}

    def partition(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        return [list(ops)]

    def for_partition(self, ops: Sequence[Operation]) -> Model:
        """A model specialised to one partition, whose states need only describe it.

        The default is the model itself. A model over many keys can return one whose
        state is a single key's value: smaller states, cheaper steps, `only_in` lookups.
        """
        return self  # type: ignore[return-value]

    def plain(self) -> Model:
        """The same model with states as they are, for a witness: the default is itself.

        A partition model may merge states that no operation of its partition tells apart
        (the register writes every value no operation reads as one); its `plain()` keeps
        them apart, so that the witness shows the real state. Both give the same verdicts.
        """
        return self  # type: ignore[return-value]

    def describe_state(self, state: State) -> Any:
        return thaw(state)

    def describe_operation(self, op: Operation) -> str:
        args = "" if op.input is None else show(op.input)
        key = "" if op.key is None else f"[{show(op.key)}]"
        return f"{op.f}{key}({args}) -> {outcome(op)}"


def show(value: Frozen) -> str:
    """A frozen value as compact JSON text."""
    return json.dumps(thaw(value), separators=(",", " "))


def outcome(op: Operation) -> str:
    """What an operation returned, as people read it: the value, `fail`, or `?` (info)."""
    if op.status is Status.INFO:
        return "?"
    if op.status is Status.FAIL:
        return "fail"
    return show(op.output)


class OptionReader:
    """Reads a model's options, rejecting unknown names and values not allowed."""

    def __init__(self, model: str, options: Mapping[str, Any]) -> None:
        self.model = model
        self.options = dict(options)
        self.seen: dict[str, Any] = {}

    def value(self, name: str, default: Any) -> Any:
        value = self.options.get(name, default)
        self.seen[name] = value
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str) -> str:
        value = self.value(name, default)
        if value not in allowed:
            raise ModelError(
                self.model,
                f"option {name} must be one of {', '.join(allowed)}, not {json.dumps(value)}",
            )
        return str(value)

    def finish(self) -> dict[str, Any]:
        unknown = sorted(set(self.options) - set(self.seen))
        if unknown:
            known = ", ".join(sorted(self.seen)) or "none"
            raise ModelError(self.model, f"unknown option {', '.join(unknown)} (it takes: {known})")
        return self.seen
