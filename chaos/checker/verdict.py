"""`check(history, model)`: the verdict on a whole history, with its witness.

The history's operations are prepared by the model (operations that constrain nothing
are left out), split into independent partitions (P-compositionality), and each
partition is searched (`chaos.checker.search`) until one is illegal or the time budget
runs out. The verdict is `ok` only when every partition has a linearization, `illegal`
when one has none, and `unknown` when the budget ran out first: never a guess.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import attrs

from chaos.checker.errors import ModelError
from chaos.checker.history import History, Operation, Status
from chaos.checker.model import Model
from chaos.checker.search import (
    MAX_MEMORY,
    Deadline,
    Item,
    Outcome,
    SearchResult,
    search,
)
from chaos.checker.witness import IllegalTest, Witness, build_witness

Clock = Callable[[], float]

_INFO = Status.INFO
_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__


def _call_order(op: Operation) -> tuple[int, int]:
    return (op.call, op.id)


class Verdict(enum.Enum):
    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"


@attrs.frozen
class ClockDeadline:
    """Expires when `clock()` reaches `at` (seconds, on the clock's own scale)."""

    at: float
    clock: Clock

    def expired(self) -> bool:
        return self.clock() >= self.at


class EffortClock:
    """A clock that advances a millisecond each time it is read. The search reads it every
    512 configurations, so a budget of S "seconds" is about S * 512,000 configurations
    whatever the machine: a check on it gives the same verdict everywhere (the simulator
    uses it, so a seed's verdict is a function of the seed). Its elapsed times measure
    effort, not time."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.reads / 1000


class Never:
    """A deadline that never expires."""

    def expired(self) -> bool:
        return False


@attrs.frozen
class CheckResult:
    """The verdict on a history and how it was reached. `to_json()` gives the CLI's answer.

    Partitions are examined smallest first and the check stops at the first that is not
    linearizable (or when the budget runs out): the counts are of the partitions examined,
    and `unexamined` counts the operations of the others.
    """

    verdict: Verdict
    model: str
    options: dict[str, Any]
    source: str
    elapsed_s: float  # to the verdict (a core's search is timed in the witness)
    operations: int  # in the history
    checked: int  # kept by the model, in the partitions examined
    dropped: int  # left out by the model (they constrain nothing), in those partitions
    pending: int  # checked operations with an unknown outcome (info)
    unexamined: int  # operations of partitions not examined
    partitions: int
    partitions_linearizable: int  # partitions shown linearizable
    largest_partition: int  # operations checked in the largest partition examined
    configurations: int  # configurations entered, over all partitions examined
    memory: int = 0  # bytes the largest search kept, as charged against `max_memory`
    witness: Witness | None = None  # when illegal
    reason: str = ""  # when unknown: what ran out
    # When ok: for each partition, its operation ids in linearized order.
    linearizations: tuple[tuple[int, ...], ...] = ()

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def to_json(self, include_linearization: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "verdict": self.verdict.value,
            "model": self.model,
            "options": self.options,
            "file": self.source,
            "elapsed_s": round(self.elapsed_s, 6),
            "operations": {
                "total": self.operations,
                "checked": self.checked,
                "dropped": self.dropped,
                "pending": self.pending,
                "unexamined": self.unexamined,
            },
            "partitions": {
                "count": self.partitions,
                "linearizable": self.partitions_linearizable,
                "largest": self.largest_partition,
            },
            "configurations": self.configurations,
            "memory_mib": round(self.memory / (1 << 20), 1),
            "witness": self.witness.to_json() if self.witness else None,
            "reason": self.reason or None,
        }
        if include_linearization:
            data["linearizations"] = [list(order) for order in self.linearizations]
        return data


@attrs.frozen
class _Partition:
    model: Model  # the model that checks this partition (`for_partition`)
    ops: tuple[Operation, ...]  # those the model kept
    items: tuple[Item, ...]


@attrs.define
class _Tally:
    checked: int = 0
    dropped: int = 0
    pending: int = 0
    largest: int = 0
    linearizable: int = 0
    configurations: int = 0
    memory: int = 0

    def add(self, group_size: int, part: _Partition) -> None:
        self.checked += len(part.items)
        self.dropped += group_size - len(part.items)
        self.pending += sum(1 for item in part.items if item.ret is None)
        self.largest = max(self.largest, len(part.items))


def check(
    history: History | Sequence[Operation],
    model: Model,
    *,
    timeout_s: float | None = None,
    deadline: Deadline | None = None,
    core_timeout_s: float | None = None,
    max_memory: int = MAX_MEMORY,
    clock: Clock = time.perf_counter,
) -> CheckResult:
    """Check `history` against `model`.

    `timeout_s` bounds the search for the verdict (`deadline` may be given instead, e.g.
    one shared by several checks); when it runs out the verdict is `unknown`. For an
    illegal history the witness is always given; with `core_timeout_s` it also holds a
    core (see `chaos.checker.witness`), searched for at most that many seconds more.
    `max_memory` bounds what each partition's search keeps, in bytes (as counted by the
    search, see `chaos.checker.search.ENTRY_BYTES`): past it the verdict is `unknown` too.
    `clock` (seconds) times the check and the budgets.
    """
    started = clock()
    if deadline is None:
        deadline = Never() if timeout_s is None else ClockDeadline(started + timeout_s, clock)
    source = history.source if isinstance(history, History) else "<operations>"
    ops = history.operations if isinstance(history, History) else tuple(history)
    groups = partitions_of(ops, model)
    tally = _Tally()
    orders: list[tuple[int, ...]] = []
    verdict, witness, reason = Verdict.OK, None, ""
    examined = 0
    elapsed = None
    for index, group in enumerate(groups):
        part = prepare(group, model)
        tally.add(len(group), part)
        examined += len(group)
        result = search(part.items, part.model.init(), part.model.step, deadline, max_memory)
        tally.configurations += result.configurations
        tally.memory = max(tally.memory, result.memory)
        if result.outcome is Outcome.OK:
            assert result.linearization is not None
            orders.append(tuple(part.ops[i].id for i in result.linearization))
            tally.linearizable += 1
            continue
        if result.outcome is Outcome.UNKNOWN:
            limit = (
                f"memory budget ({_mib(max_memory)}) reached"
                if result.over_budget
                else "time budget ran out"
            )
            verdict = Verdict.UNKNOWN
            reason = (
                f"{limit} in partition {index + 1} of {len(groups)} "
                f"({len(part.items)} operations, {result.configurations} configurations, "
                f"{_mib(result.memory)} kept)"
            )
        else:
            verdict = Verdict.ILLEGAL
            elapsed = clock() - started  # the verdict's time: the core has its own
            witness = _witness(part, index, result, core_timeout_s, clock)
        break
    return CheckResult(
        verdict,
        model.name,
        model.options(),
        source,
        clock() - started if elapsed is None else elapsed,
        len(ops),
        tally.checked,
        tally.dropped,
        tally.pending,
        len(ops) - examined,
        len(groups),
        tally.linearizable,
        tally.largest,
        tally.configurations,
        tally.memory,
        witness,
        reason,
        tuple(orders) if verdict is Verdict.OK else (),
    )


def partitions_of(ops: Sequence[Operation], model: Model) -> list[list[Operation]]:
    """The model's partitions of the operations, smallest first, each in order of call.

    Small partitions first: a violation there is found before a long search elsewhere,
    and the partitions after it need not even be prepared.
    """
    groups = model.partition(ops)
    if sum(len(g) for g in groups) != len(ops):
        raise ModelError(model.name, "partition() must place every operation in one group")
    ordered = []
    for group in groups:
        calls = [op.call for op in group]
        ordered.append(list(group) if calls == sorted(calls) else sorted(group, key=_call_order))
    ordered = [g for g in ordered if g]
    ordered.sort(key=lambda g: (len(g), g[0].id))
    return ordered


def prepare(group: Sequence[Operation], model: Model) -> _Partition:
    """One partition (in order of call) as its model sees it.

    Besides what the model leaves out, a pending operation called after the last return
    of the partition is left out: it constrains nothing. Exact: it could only take effect
    after that return, so after every operation that returned (each took effect before
    its return), with nothing but other pending operations after it, which may all never
    have happened; a linearization that has it, less it, is one that has not.
    """
    sub = model.for_partition(group)
    kept: list[Operation] = []
    items: list[Item] = []
    prepare_one = sub.prepare
    last_return = -1
    for op in group:
        p = prepare_one(op)
        if p is not None:
            kept.append(op)
            ret = None if op.status is _INFO else op.complete
            if ret is not None and ret > last_return:
                last_return = ret
            items.append(_new_tuple(Item, (op.call, ret, *p)))
    if items and items[-1].call > last_return:  # items come in order of call
        early = [
            k for k, item in enumerate(items) if item.ret is not None or item.call <= last_return
        ]
        kept = [kept[k] for k in early]
        items = [items[k] for k in early]
    return _Partition(sub, tuple(kept), tuple(items))


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def relax(ops: Sequence[Operation], keep: Collection[int], model: Model) -> tuple[Operation, ...]:
    """`ops` with every operation whose id is not in `keep` relaxed.

    A relaxed operation that the model says cannot change the state (a read, a cas that
    definitely failed) is left out; any other is given an unknown outcome (info): it may
    have taken effect at any time after its call, or never. Either way constraints are
    only removed, so relaxing never turns a linearizable history into one that is not.
    """
    relaxed = []
    for op in ops:
        if op.id in keep or op.status is _INFO:  # pending already: as relaxed as can be
            relaxed.append(op)
            continue
        p = model.for_partition([op]).prepare(op)
        if p is not None and not p.read_only:
            relaxed.append(attrs.evolve(op, status=Status.INFO))
    return tuple(relaxed)


def _witness(
    part: _Partition,
    index: int,
    result: SearchResult,
    core_timeout_s: float | None,
    clock: Clock,
) -> Witness:
    assert result.dead_end is not None, "an illegal search always records a dead end"
    # The witness is told in the plain model: the state the prefix really leads to.
    plain = part.model.plain()
    state = plain.init()
    for i in result.dead_end.prefix:
        prepared = plain.prepare(part.ops[i])
        assert prepared is not None, "the plain model keeps what its partition model keeps"
        legal, state = plain.step(state, prepared.input, prepared.output)
        assert legal, "the plain model gives the same verdicts"
    dead_end = attrs.evolve(result.dead_end, state=state)
    if core_timeout_s is None:
        return build_witness(plain, part.ops, part.items, index, dead_end, None)
    started = clock()
    witness = build_witness(
        plain,
        part.ops,
        part.items,
        index,
        dead_end,
        _core_test(part, ClockDeadline(started + core_timeout_s, clock), core_timeout_s, clock),
    )
    return attrs.evolve(witness, core_elapsed_s=clock() - started)


def _core_test(
    part: _Partition, overall: ClockDeadline, core_timeout_s: float, clock: Clock
) -> IllegalTest:
    """`illegal(kept)`: is the partition illegal with only the `kept` items as recorded?

    Every other operation is relaxed (see `relax`); one relaxed and called after every
    kept item returned is left out, since it could only take effect after all of them,
    where nothing observes it.
    """
    model = part.model
    relaxed: list[Item | None] = []
    for op, item in zip(part.ops, part.items, strict=True):
        p = None if item.read_only else model.prepare(attrs.evolve(op, status=Status.INFO))
        relaxed.append(None if p is None else _new_tuple(Item, (op.call, None, *p)))

    def illegal(kept: Sequence[int]) -> bool | None:
        keep = set(kept)
        horizon = max((part.items[k].ret or 0 for k in keep), default=-1)
        items = []
        for k, item in enumerate(part.items):
            if k in keep:
                items.append(item)
            else:
                loose = relaxed[k]
                if loose is not None and loose.call <= horizon:
                    items.append(loose)
        # One hard sub-history must not eat the whole budget: each gets a share of it.
        deadline = ClockDeadline(min(overall.at, clock() + core_timeout_s / 16), clock)
        outcome = search(items, model.init(), model.step, deadline).outcome
        return None if outcome is Outcome.UNKNOWN else outcome is Outcome.ILLEGAL

    return illegal
