"""The witness of a violation: why a history has no linearization.

Two complementary parts, both naming operations by their id in the history:

- the *dead end*: the longest linearizable prefix the search found, the model state after
  it, and the operations that could have come next (`candidates`; `blocked` is the one
  whose return came first, so it could not be put off): every one of them is illegal in
  that state. It is exact and always present;
- the *core*: a set of operations that cannot be linearized even when every other
  operation is relaxed (see verdict.relax: one that cannot change the state, a read, is
  left out; any other gets an unknown outcome, `info`, so it may have taken effect at any
  time after its call, or never), and, when `core_minimal`, relaxing any one more of
  them makes the history linearizable. Every relaxation is
  confirmed by the search itself; the core is absent unless asked for (it costs up to
  its own time budget). Relaxing, not removing, keeps the core honest: removing the write
  a stale read saw would make any read look wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from chaos.checker.history import Operation
from chaos.checker.model import Model
from chaos.checker.search import DeadEnd, Item

# Whether the sub-history of these item indexes is illegal; None when it could not tell.
IllegalTest = Callable[[Sequence[int]], bool | None]


@attrs.frozen
class Witness:
    """Why a partition has no linearization. Operations are named by their history id.

    The facts are computed by the check; the words (`explanation()`, `to_json()`) are
    rendered on demand from the model's descriptions.
    """

    partition: int  # which partition (in the order checked) failed
    prefix: tuple[int, ...]  # operation ids, in the order linearized
    state: Any  # the model state after the prefix
    blocked: int  # operation id
    candidates: tuple[int, ...]  # operation ids, `blocked` among them
    core: tuple[int, ...] | None  # operation ids, in order of invocation
    core_minimal: bool
    model: Model = attrs.field(eq=False, repr=False)
    ops: Mapping[int, Operation] = attrs.field(eq=False, repr=False)  # the partition's
    core_elapsed_s: float | None = None  # the time the core's search took

    def explanation(self) -> str:
        blocked = self.ops[self.blocked]
        others = len(self.candidates) - 1
        return (
            f"after {len(self.prefix)} operations are linearized the state is "
            f"{json.dumps(self.model.describe_state(self.state))}, and operation "
            f"{blocked.id} ({self.model.describe_operation(blocked)}, process "
            f"{blocked.process}), which must come next because it returned first, cannot "
            "take effect in that state"
            + (
                f", nor can the {others} other operations called before it returned"
                if others
                else ""
            )
        )

    def describe(self, op_id: int) -> dict[str, Any]:
        op = self.ops[op_id]
        data = op.to_json()
        data["description"] = self.model.describe_operation(op)
        return data

    def to_json(self) -> dict[str, Any]:
        named = set(self.prefix) | set(self.candidates) | set(self.core or ())
        return {
            "partition": self.partition,
            "explanation": self.explanation(),
            "prefix": list(self.prefix),
            "state": self.model.describe_state(self.state),
            "blocked": self.blocked,
            "candidates": list(self.candidates),
            "core": None if self.core is None else list(self.core),
            "core_minimal": self.core_minimal,
            "core_elapsed_s": None
            if self.core_elapsed_s is None
            else round(self.core_elapsed_s, 6),
            "operations": {str(i): self.describe(i) for i in sorted(named)},
        }


def build_witness(
    model: Model,
    ops: Sequence[Operation],
    items: Sequence[Item],
    partition: int,
    dead_end: DeadEnd,
    illegal: IllegalTest | None,
) -> Witness:
    """The witness for a partition (`ops` and their `items`) whose search hit `dead_end`."""
    core: tuple[int, ...] | None = None
    minimal = False
    if illegal is not None:
        local, minimal = find_core(items, dead_end, illegal)
        core = tuple(sorted(ops[i].id for i in local))
    return Witness(
        partition,
        tuple(ops[i].id for i in dead_end.prefix),
        dead_end.state,
        ops[dead_end.blocked].id,
        tuple(ops[i].id for i in dead_end.candidates),
        core,
        minimal,
        model,
        {op.id: op for op in ops},
    )


def find_core(
    items: Sequence[Item], dead_end: DeadEnd, illegal: IllegalTest
) -> tuple[list[int], bool]:
    """A 1-minimal set of items that stay illegal with all others relaxed (indexes).

    `illegal(kept)` answers for the partition with only `kept` items as recorded and
    every other one relaxed (see verdict.relax). Pending items are relaxed already,
    so only items with a return are candidates. Starts from those called before the
    blocked item returned when that is already illegal (it usually is), then tries to
    relax each remaining item once, latest call first, keeping every relaxation the
    search confirms. Each check keeps most items definite, so it stays cheap until the
    core is small. An answer of "could not tell" (the budget ran out) keeps the item and
    leaves minimality unproven.
    """
    candidates = [i for i, item in enumerate(items) if item.ret is not None]
    core = candidates
    cut = items[dead_end.blocked].ret
    assert cut is not None, "the blocked item is the one whose return came first"
    early = [i for i in candidates if items[i].call <= cut]
    if len(early) < len(candidates) and illegal(early) is True:
        core = early
    minimal = True
    for k in sorted(core, key=lambda i: -items[i].call):
        rest = [i for i in core if i != k]
        answer = illegal(rest)
        if answer is True:
            core = rest
        elif answer is None:
            minimal = False
    return core, minimal
