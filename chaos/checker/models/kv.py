"""`kv`: a map from keys to strings, get / put / append, checked one key at a time.

Options:
- `initial` (a string, default ""): every key's value before the first operation.

`get` returns the key's value; `put` replaces it; `append` concatenates. A failed put or
append had no effect, a failed or unknown get constrains nothing (both are left out); an
`info` put or append may have taken effect. Keys are independent, so the history is
partitioned by key (P-compositionality) and each key is checked with `KvKeyModel`, whose
state is that key's string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from chaos.checker.errors import ModelError
from chaos.checker.history import Operation, Status
from chaos.checker.model import BaseModel, Model, OptionReader, Prepared, State, show
from chaos.checker.models.mapstate import EMPTY, MapState, map_get, map_set
from chaos.checker.search import ANYWHERE

GET: Final = "get"
PUT: Final = "put"
APPEND: Final = "append"
_OK: Final = Status.OK
_FAIL: Final = Status.FAIL
_new = tuple.__new__


class KvModel(BaseModel):
    """The whole map; its state is a `MapState` of the keys whose value is not `initial`."""

    name = "kv"

    def __init__(self, initial: str = "") -> None:
        self.initial = initial

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> KvModel:
        reader = OptionReader(cls.name, options)
        initial = reader.value("initial", "")
        reader.finish()
        if not isinstance(initial, str):
            raise ModelError(cls.name, f"option initial must be a string, not {initial!r}")
        return cls(initial)

    def options(self) -> dict[str, Any]:
        return {"initial": self.initial}

    def init(self) -> State:
        return EMPTY

    def prepare(self, op: Operation) -> Prepared | None:
        if op.key is None:
            raise ModelError(self.name, f"line {op.line}: {op.f} needs a key")
        if op.f == GET:
            if op.status is not Status.OK:
                return None
            return Prepared((GET, op.key, None), self._string(op, op.output), True)
        if op.f in (PUT, APPEND):
            if op.status is Status.FAIL:
                return None
            kind = PUT if op.f == PUT else APPEND
            return Prepared((kind, op.key, self._string(op, op.input)), None)
        raise ModelError(self.name, f"line {op.line}: no operation {op.f!r} (get, put, append)")

    def _string(self, op: Operation, value: Any) -> str:
        if not isinstance(value, str):
            raise ModelError(self.name, f"line {op.line}: {op.f} values are strings, not {value!r}")
        return value

    def step(self, state: State, input: Any, output: Any) -> tuple[bool, State]:
        kind, key, value = input
        pairs: MapState = state  # type: ignore[assignment]
        current = map_get(pairs, key, self.initial)
        if kind is GET:
            return current == output, state
        new = value if kind is PUT else current + value
        return True, map_set(pairs, key, new, self.initial)

    def partition(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        by_key: dict[Any, list[Operation]] = {}
        for op in ops:
            by_key.setdefault((type(op.key).__name__, op.key), []).append(op)
        return list(by_key.values())

    def for_partition(self, ops: Sequence[Operation]) -> Model:
        key = ops[0].key if ops else None
        return KvKeyModel(key, self.initial)

    def describe_state(self, state: State) -> Any:
        pairs: MapState = state  # type: ignore[assignment]
        return {str(k): v for k, v in pairs}

    def describe_operation(self, op: Operation) -> str:
        key = show(op.key)
        if op.f == GET:
            result = show(op.output) if op.status is Status.OK else "?"
            return f"get({key}) -> {result}"
        result = {Status.OK: "ok", Status.FAIL: "fail", Status.INFO: "?"}[op.status]
        return f"{op.f}({key}, {show(op.input)}) -> {result}"


class KvKeyModel(KvModel):
    """One key of the map (a partition of `KvModel`): the state is the key's string."""

    def __init__(self, key: Any, initial: str = "") -> None:
        super().__init__(initial)
        self.key = key

    def init(self) -> State:
        return self.initial

    def prepare(self, op: Operation) -> Prepared | None:
        # As KvModel.prepare, plus only_in for a get, written out: it runs once per
        # operation of every kv history (tuple.__new__ skips the NamedTuple's __new__).
        key = op.key
        if key is None:
            raise ModelError(self.name, f"line {op.line}: {op.f} needs a key")
        if key != self.key or type(key) is not type(self.key):
            raise ModelError(
                self.name, f"line {op.line}: key {key!r} in the partition of {self.key!r}"
            )
        f = op.f
        status = op.status
        if f == GET:
            if status is not _OK:
                return None
            seen = op.output
            if type(seen) is not str:
                self._string(op, seen)
            # A get is legal exactly when the key holds what it returned.
            return _new(Prepared, ((GET, key, None), seen, True, seen))
        if f in (PUT, APPEND):
            if status is _FAIL:
                return None
            value = op.input
            if type(value) is not str:
                self._string(op, value)
            return _new(
                Prepared, ((PUT if f == PUT else APPEND, key, value), None, False, ANYWHERE)
            )
        return super().prepare(op)  # raises for an operation kv does not know

    def step(self, state: State, input: Any, output: Any) -> tuple[bool, State]:
        kind, _, value = input
        if kind is GET:
            return state == output, state
        if kind is PUT:
            return True, value
        return True, state + value

    def partition(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        return [list(ops)]

    def for_partition(self, ops: Sequence[Operation]) -> Model:
        return self

    def describe_state(self, state: State) -> Any:
        return {str(self.key): state}
