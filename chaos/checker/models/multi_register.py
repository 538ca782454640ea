"""`multi-register`: named registers read and written together in transactions.

An operation is `txn` with a list of micro-operations `[f, key, value]` (`f` is `read` or
`write`); the invoke carries null for reads, the ok completion the values read. The
transaction applies its micro-operations in order, atomically.

Options:
- `initial` (an object, default {}): each register's value before the first operation;
  registers not named are absent (null).
- `fail` (`did-not-happen`, default, or `definite`): a failed transaction had no effect in
  both modes (there is no cas here) and is left out.
- `read_nil` (`only-while-absent`, default, or `unknown-value`): whether a read of null saw
  the register absent, or an unknown value (then it constrains nothing).

An `info` transaction may have taken effect: its writes apply, its reads are unknown.
Transactions over disjoint sets of registers are checked apart (P-compositionality over
the connected components of "constrained by one transaction": the registers of its
micro-operations the model keeps, so not the reads of a pending transaction, nor anything
of a failed one). A pending transaction none of whose writes can be seen is left out
(see `MultiRegisterPartitionModel.unobserved`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from chaos.checker.errors import ModelError
from chaos.checker.history import Operation, Status
from chaos.checker.model import BaseModel, Model, OptionReader, Prepared, State, show
from chaos.checker.models.mapstate import MapState, map_from, map_get, map_set
from chaos.checker.values import Frozen, freeze, thaw

FAIL_MODES: Final = ("did-not-happen", "definite")
READ_NIL_MODES: Final = ("only-while-absent", "unknown-value")
READ: Final = "read"
WRITE: Final = "write"

Micro = tuple[str, Frozen, Frozen]


class MultiRegisterModel(BaseModel):
    name = "multi-register"

    def __init__(
        self,
        initial: Mapping[str, Any] | None = None,
        fail: str = "did-not-happen",
        read_nil: str = "only-while-absent",
    ) -> None:
        raw = dict(initial or {})
        self.defaults: dict[Any, Frozen] = {k: freeze(v) for k, v in raw.items()}
        self.nil_unknown = read_nil == "unknown-value"
        self._options = {"initial": raw, "fail": fail, "read_nil": read_nil}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MultiRegisterModel:
        reader = OptionReader(cls.name, options)
        initial = reader.value("initial", {})
        fail = reader.choice("fail", FAIL_MODES, "did-not-happen")
        read_nil = reader.choice("read_nil", READ_NIL_MODES, "only-while-absent")
        reader.finish()
        if not isinstance(initial, dict):
            raise ModelError(cls.name, f"option initial must be an object, not {initial!r}")
        return cls(initial, fail, read_nil)

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def init(self) -> State:
        # Every register starts at its default, so the initial map holds no pair.
        return map_from({}, self.defaults.get)

    def prepare(self, op: Operation) -> Prepared | None:
        if op.f != "txn":
            raise ModelError(self.name, f"line {op.line}: no operation {op.f!r} (txn)")
        invoked = self._micro_ops(op, op.input)
        if op.status is Status.FAIL:
            return None
        if op.status is Status.INFO:
            writes = tuple(m for m in invoked if m[0] is WRITE)
            return Prepared(writes, None) if writes else None
        done = self._micro_ops(op, op.output)
        if [(m[0], m[1]) for m in done] != [(m[0], m[1]) for m in invoked]:
            raise ModelError(
                self.name,
                f"line {op.line}: the completion's micro-operations differ from the invoke's",
            )
        if self.nil_unknown:
            done = tuple(m for m in done if not (m[0] is READ and m[2] is None))
        if not done:
            return None
        return Prepared(done, None, all(m[0] is READ for m in done))

    def _micro_ops(self, op: Operation, value: Frozen) -> tuple[Micro, ...]:
        if not isinstance(value, tuple):
            raise ModelError(self.name, f"line {op.line}: txn takes a list of [f, key, value]")
        micro: list[Micro] = []
        for m in value:
            if not (isinstance(m, tuple) and len(m) == 3 and m[0] in (READ, WRITE)):
                raise ModelError(
                    self.name, f'line {op.line}: {show(m)} is not ["read"|"write", key, value]'
                )
            if type(m[1]) not in (str, int):
                raise ModelError(self.name, f"line {op.line}: key {show(m[1])} is not a string")
            micro.append((READ if m[0] == READ else WRITE, m[1], m[2]))
        return tuple(micro)

    def step(self, state: State, input: Any, output: Any) -> tuple[bool, State]:
        current: MapState = state  # type: ignore[assignment]
        for kind, key, value in input:
            default = self.defaults.get(key)
            if kind is READ:
                if map_get(current, key, default) != value:
                    return False, state
            else:
                current = map_set(current, key, value, default)
        return True, current

    def keys_of(self, op: Operation) -> set[Any]:
        """The registers whose values the operation depends on or sets, as prepared (by
        the whole model: a partition model's reductions depend on its own group)."""
        prepared = MultiRegisterModel.prepare(self, op)
        return set() if prepared is None else {m[1] for m in prepared.input}

    def for_partition(self, ops: Sequence[Operation]) -> Model:
        return MultiRegisterPartitionModel(self, ops)

    def partition(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        parent: dict[Any, Any] = {}

        def root(key: Any) -> Any:
            while parent.setdefault(key, key) != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        keys = [sorted(self.keys_of(op), key=str) for op in ops]
        for ks in keys:
            for other in ks[1:]:
                parent[root(other)] = root(ks[0])
        groups: dict[Any, list[Operation]] = {}
        for op, ks in zip(ops, keys, strict=True):
            groups.setdefault(root(ks[0]) if ks else None, []).append(op)
        return list(groups.values())

    def describe_state(self, state: State) -> Any:
        values = {str(k): v for k, v in self.defaults.items()}
        values.update({str(k): v for k, v in state})  # type: ignore[attr-defined]
        return {k: thaw(v) for k, v in sorted(values.items())}

    def describe_operation(self, op: Operation) -> str:
        result = {Status.OK: "ok", Status.FAIL: "fail", Status.INFO: "?"}[op.status]
        shown = op.output if op.status is Status.OK else op.input
        return f"txn {show(shown)} -> {result}"


class MultiRegisterPartitionModel(MultiRegisterModel):
    """The model as it checks one partition: it knows which (register, value) pairs are read.

    `unobserved(op)`: a pending transaction none of whose writes is ever read (no kept
    read micro-operation of the partition returns that value of that register) is left
    out. Exact: take a linearization with the pending transaction p. For each register x
    that p writes, the transactions after p up to the next one that writes x before
    reading it do not read x (they would read what p wrote), and the rest do not depend
    on x's value before them; registers p does not write are the same with or without p.
    So the order without p is legal, and p pending may never have happened.
    """

    def __init__(self, base: MultiRegisterModel, ops: Sequence[Operation]) -> None:
        self._base = base
        self.defaults = base.defaults
        self.nil_unknown = base.nil_unknown
        self._options = base._options
        self._read: set[tuple[Any, Any]] = set()
        for op in ops:
            if op.status is Status.OK:
                prepared = super().prepare(op)
                if prepared is not None:
                    self._read.update((m[1], m[2]) for m in prepared.input if m[0] is READ)

    def unobserved(self, writes: tuple[Micro, ...]) -> bool:
        return not any((key, value) in self._read for _, key, value in writes)

    def prepare(self, op: Operation) -> Prepared | None:
        prepared = super().prepare(op)
        if prepared is not None and op.status is Status.INFO and self.unobserved(prepared.input):
            return None
        return prepared

    def for_partition(self, ops: Sequence[Operation]) -> Model:
        # What is left out depends on the group's reads: never reuse another group's.
        return MultiRegisterPartitionModel(self._base, ops)
