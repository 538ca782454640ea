"""`kv`: a map from keys to strings, get / put / append, checked one key at a time.

Options:
- `initial` (a string, default ""): every key's value before the first operation.

`get` returns the key's value; `put` replaces it; `append` concatenates. A failed put or
append had no effect, a failed or unknown get constrains nothing (both are left out); an
`info` put or append may have taken effect. Keys are independent, so the history is
partitioned by key (P-compositionality) and each key is checked with `KvKeyModel`, whose
state is that key's string.

In a partition, an `info` put or append that no get could have seen is left out too (see
`KvKeyModel.unobserved`): pending writes that never showed are what makes the histories
of a cluster under faults hard, and leaving them out is exact.
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
_INFO: Final = Status.INFO
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
        seen = [op.output for op in ops if op.f == GET and op.status is _OK]
        return KvKeyModel(key, self.initial, seen)

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
    """One key of the map (a partition of `KvModel`): the state is the key's string.

    `seen`: what the partition's gets returned, all of them; a pending put or append
    that none of them can have seen is left out (`unobserved`).
    """

    def __init__(self, key: Any, initial: str = "", seen: Sequence[Any] = ()) -> None:
        super().__init__(initial)
        self.key = key
        # Every string a get returned, each after a NUL: `"\0" + v in` it holds when some
        # get returned a string that starts with v, `s in` it when one contains s (and
        # can hold otherwise only across a NUL, which merely keeps an operation in).
        self._seen = "".join("\0" + v for v in seen if type(v) is str)

    def unobserved(self, f: str, value: str) -> bool:
        """Whether a pending put or append of `value` can be left out: no get saw it.

        A put of v is seen only by a get whose string starts with v; an append of s only
        by one whose string contains s. Exact: take a linearization with the pending
        operation p, and the operations after p up to the next put (or to the end). The
        string there starts with v (after a put) or contains s (after an append), so
        none of them is a get, since none returned such a string; they are appends,
        legal in any state. Without p they are still legal, and the next put sets the
        state whatever came before: the rest is the same linearization. And p pending may
        never have happened. So the history has a linearization with p exactly when it
        has one without it.
        """
        if f == PUT:
            return "\0" + value not in self._seen
        return value not in self._seen

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
            if status is _INFO and self.unobserved(f, value):
                return None
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
        # What is left out depends on the group's gets: never reuse another group's.
        seen = [op.output for op in ops if op.f == GET and op.status is _OK]
        return KvKeyModel(self.key, self.initial, seen)

    def describe_state(self, state: State) -> Any:
        return {str(self.key): state}
