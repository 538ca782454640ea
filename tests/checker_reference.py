"""An independent, slow reference for the linearizability checker, and random histories.

`brute_force(history, model, options)` decides linearizability by trying every order of
the operations that respects real-time order: no partitions, no cache, no read-only
shortcut, no twins, and its own statement of each model's semantics (it imports nothing
from chaos.checker.models), so agreement with `chaos.checker.check` means something.

`histories(model)` is a Hypothesis strategy for small well-formed histories of that
model: half of them recorded from a simulated correct object (so most are linearizable),
half with random outcomes (so most are not), all with failures, unknown outcomes and
operations never answered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from chaos.checker import Operation, Status

# A model's statement of one operation: (kind, apply), kind one of ABSENT (constrains
# nothing), REQUIRED (took effect between call and return), OPTIONAL (took effect after
# its call, or never); apply(state) is the new state, or None where it is illegal.
ABSENT, REQUIRED, OPTIONAL = "absent", "required", "optional"
Apply = Callable[[Any], Any]
Spec = tuple[str, Apply | None]
ILLEGAL = object()  # apply's answer where the operation cannot take effect


def _required_or_optional(op: Operation) -> str:
    return OPTIONAL if op.status is Status.INFO else REQUIRED


def register_spec(options: dict[str, Any]) -> tuple[Any, Callable[[Operation], Spec]]:
    definite = options.get("fail", "did-not-happen") == "definite"
    nil_unknown = options.get("read_nil", "only-while-absent") == "unknown-value"

    def spec(op: Operation) -> Spec:
        if op.f == "read":
            if op.status is not Status.OK or (op.output is None and nil_unknown):
                return ABSENT, None
            seen = op.output
            return REQUIRED, lambda s: s if s == seen else ILLEGAL
        if op.f == "write":
            if op.status is Status.FAIL:
                return ABSENT, None
            value = op.input
            return _required_or_optional(op), lambda s: value
        expected, new = op.input
        if op.status is Status.FAIL:
            if not definite:
                return ABSENT, None
            return REQUIRED, lambda s: s if s != expected else ILLEGAL
        return _required_or_optional(op), lambda s: new if s == expected else ILLEGAL

    return options.get("initial"), spec


def kv_spec(options: dict[str, Any]) -> tuple[Any, Callable[[Operation], Spec]]:
    initial = options.get("initial", "")

    def spec(op: Operation) -> Spec:
        key = op.key
        if op.f == "get":
            if op.status is not Status.OK:
                return ABSENT, None
            seen = op.output
            return REQUIRED, lambda s: s if dict(s).get(key, initial) == seen else ILLEGAL
        if op.status is Status.FAIL:
            return ABSENT, None
        value = op.input

        def apply(s: Any) -> Any:
            current = dict(s)
            old = current.get(key, initial)
            current[key] = value if op.f == "put" else old + value
            return tuple(sorted(current.items()))

        return _required_or_optional(op), apply

    return (), spec


def mutex_spec(options: dict[str, Any]) -> tuple[Any, Callable[[Operation], Spec]]:
    definite = options.get("fail", "did-not-happen") == "definite"

    def spec(op: Operation) -> Spec:
        me = op.process
        if op.status is Status.FAIL:
            if not definite:
                return ABSENT, None
            if op.f == "acquire":
                return REQUIRED, lambda s: s if s is not None else ILLEGAL
            return REQUIRED, lambda s: s if s != me else ILLEGAL
        if op.f == "acquire":
            return _required_or_optional(op), lambda s: me if s is None else ILLEGAL
        return _required_or_optional(op), lambda s: None if s == me else ILLEGAL

    return None, spec


def multi_register_spec(options: dict[str, Any]) -> tuple[Any, Callable[[Operation], Spec]]:
    defaults = dict(options.get("initial", {}))
    nil_unknown = options.get("read_nil", "only-while-absent") == "unknown-value"

    def spec(op: Operation) -> Spec:
        if op.status is Status.FAIL:
            return ABSENT, None
        info = op.status is Status.INFO
        micro = op.input if info else op.output
        if info and not any(m[0] == "write" for m in micro):
            return ABSENT, None

        def apply(s: Any) -> Any:
            current = dict(s)
            for f, key, value in micro:
                if f == "write":
                    current[key] = value
                elif (
                    not info
                    and not (value is None and nil_unknown)
                    and current.get(key, defaults.get(key)) != value
                ):
                    return ILLEGAL
            return tuple(sorted(current.items()))

        return _required_or_optional(op), apply

    return (), spec


SPECS = {
    "register": register_spec,
    "kv": kv_spec,
    "mutex": mutex_spec,
    "multi-register": multi_register_spec,
}


def brute_force(ops: Sequence[Operation], model: str, options: dict[str, Any]) -> bool:
    """Whether some order of the operations, consistent with real time, is legal."""
    init, spec = SPECS[model](options)
    stated = []
    for op in ops:
        kind, apply = spec(op)
        if kind != ABSENT:
            assert apply is not None
            ret = op.complete if kind == REQUIRED else None
            stated.append((op.call, ret, kind == REQUIRED, apply))
    required = sum(1 for s in stated if s[2])

    def extend(placed: frozenset[int], state: Any, done: int) -> bool:
        if done == required:
            return True  # optional operations left may never have happened
        for k, (call, _, must, apply) in enumerate(stated):
            if k in placed:
                continue
            # Every required operation that returned before this call must come first.
            if any(
                j not in placed and s[2] and s[1] is not None and s[1] < call
                for j, s in enumerate(stated)
            ):
                continue
            new = apply(state)
            if new is not ILLEGAL and extend(placed | {k}, new, done + must):
                return True
        return False

    return extend(frozenset(), init, 0)


# ---------------------------------------------------------------- random histories


@attrs.define
class _Pending:
    f: str
    value: Any
    key: Any
    applied: bool = False
    ok: bool = True  # when applied: did it succeed
    result: Any = None


def _invocation(model: str, draw: Any, process: int, wide: bool) -> tuple[str, Any, Any]:
    # `wide`: more values to write than reads will mostly see, so that some writes are
    # never seen (the checker leaves those out when pending).
    values = st.integers(0, 5 if wide else 2)
    if model == "register":
        f = draw(st.sampled_from(["read", "write", "cas"]))
        if f == "read":
            return f, None, None
        if f == "write":
            return f, draw(values), None
        return f, [draw(values), draw(values)], None
    if model == "kv":
        f = draw(st.sampled_from(["get", "put", "append"]))
        key = draw(st.sampled_from(["a", "b"]))
        strings = ["x", "y", "z", "xz"] if wide else ["x", "y"]
        return f, None if f == "get" else draw(st.sampled_from(strings)), key
    if model == "mutex":
        return draw(st.sampled_from(["acquire", "release"])), None, None
    micro = []
    for _ in range(draw(st.integers(1, 2))):
        f = draw(st.sampled_from(["read", "write"]))
        micro.append([f, draw(st.sampled_from(["x", "y"])), None if f == "read" else draw(values)])
    return "txn", micro, None


def _apply(model: str, state: Any, op: _Pending, process: int) -> Any:
    """Apply a pending operation to the simulated correct object: (new state)."""
    if model == "register":
        if op.f == "read":
            op.result = state
            return state
        if op.f == "write":
            return op.value
        op.ok = state == op.value[0]
        return op.value[1] if op.ok else state
    if model == "kv":
        current = dict(state)
        old = current.get(op.key, "")
        if op.f == "get":
            op.result = old
            return state
        current[op.key] = op.value if op.f == "put" else old + op.value
        return tuple(sorted(current.items()))
    if model == "mutex":
        if op.f == "acquire":
            op.ok = state is None
            return process if op.ok else state
        op.ok = state == process
        return None if op.ok else state
    current = dict(state)
    done = []
    for f, key, value in op.value:
        if f == "read":
            done.append([f, key, current.get(key, 0)])
        else:
            current[key] = value
            done.append([f, key, value])
    op.result = done
    return tuple(sorted(current.items()))


def _random_result(model: str, draw: Any, op: _Pending) -> Any:
    if model == "register":
        return draw(st.sampled_from([None, 0, 1, 2]))
    if model == "kv":
        return draw(st.sampled_from(["", "x", "y", "xy", "yx"]))
    if model == "mutex":
        return None
    return [
        [f, k, draw(st.sampled_from([None, 0, 1, 2])) if f == "read" else v] for f, k, v in op.value
    ]


@st.composite
def histories(draw: Any, model: str, pending: bool = False) -> list[dict[str, Any]]:
    """Events (dicts in the file format) of a small history of `model`.

    `pending`: most operations end with an unknown outcome (info), some after taking
    effect and some not, from more processes, writing values that reads seldom see: the
    histories of a cluster under faults, where the checker's reductions of pending
    operations do their work.
    """
    processes = draw(st.integers(2, 4) if pending else st.integers(1, 3))
    max_ops = draw(st.integers(3, 8) if pending else st.integers(1, 7))
    honest = draw(st.booleans())
    state: Any = (
        (("x", 0), ("y", 0)) if model == "multi-register" else (None if model != "kv" else ())
    )
    pending: dict[int, _Pending] = {}
    events: list[dict[str, Any]] = []
    started = 0

    def emit(process: int, kind: str, op: _Pending, value: Any) -> None:
        event = {"process": process, "type": kind, "f": op.f, "value": value}
        if op.key is not None:
            event["key"] = op.key
        events.append(event)

    for _ in range(draw(st.integers(0, 4 * max_ops))):
        process = draw(st.integers(0, processes - 1))
        op = pending.get(process)
        if op is None:
            if started == max_ops:
                continue
            f, value, key = _invocation(model, draw, process, pending)
            pending[process] = _Pending(f, value, key)
            emit(process, "invoke", pending[process], value)
            started += 1
            if draw(st.integers(0, 5)) == 0:  # sometimes a nemesis line
                events.append({"process": "nemesis", "type": "info", "f": "kill", "value": None})
            continue
        outcomes = ["apply", "complete", "info", "info"] if pending else ["complete", "info"]
        action = draw(st.sampled_from(["apply", "complete", *outcomes]))
        if action == "apply" and not op.applied:
            state = _apply(model, state, op, process)
            op.applied = True
        elif action == "info":
            if not op.applied and draw(st.booleans()):
                state = _apply(model, state, op, process)  # took effect, answer lost
            emit(process, "info", op, op.value)
            del pending[process]
        elif action == "complete":
            if honest and not op.applied:
                state = _apply(model, state, op, process)
                op.applied = True
            status = "ok" if op.ok else "fail"
            if not honest:
                status = draw(st.sampled_from(["ok", "ok", "fail"]))
            result = op.result if honest else _random_result(model, draw, op)
            output = result if op.f in ("read", "get", "txn") else op.value
            if model == "multi-register" and status != "ok":
                output = op.value
            emit(process, status, op, output if status == "ok" else op.value)
            del pending[process]
    if honest and events and draw(st.booleans()):
        # Corrupt one answer: most such histories are no longer linearizable.
        answers = [e for e in events if e["type"] == "ok" and e["f"] in ("read", "get")]
        if answers:
            target = draw(st.sampled_from(answers))
            target["value"] = _random_result(model, draw, _Pending(target["f"], None, None))
    for index, event in enumerate(events):
        event["index"] = index
    return events


def options_for(model: str) -> st.SearchStrategy[dict[str, Any]]:
    fail = st.sampled_from(["did-not-happen", "definite"])
    read_nil = st.sampled_from(["only-while-absent", "unknown-value"])
    if model == "register":
        return st.fixed_dictionaries(
            {"initial": st.sampled_from([None, 0]), "fail": fail, "read_nil": read_nil}
        )
    if model == "kv":
        return st.just({"initial": ""})
    if model == "mutex":
        return st.fixed_dictionaries({"fail": fail})
    return st.fixed_dictionaries(
        {"initial": st.just({"x": 0, "y": 0}), "fail": fail, "read_nil": read_nil}
    )


def hard_register_history(k: int) -> list[dict[str, Any]]:
    """A register history the search can only reject by trying ~k * 2**(k-1) configurations.

    k writes of distinct values are all pending (info), then a read returns a value none
    of them wrote: every subset of the writes, in every order that ends on a different
    value, has to be tried. (Whatever heuristics the search gains, it cannot know.) Each
    value is read once more afterwards, so that no write can be left out as one that
    nothing sees.
    """
    events: list[dict[str, Any]] = []
    for process in range(k):
        events.append({"process": process, "type": "invoke", "f": "write", "value": process})
        events.append({"process": process, "type": "info", "f": "write", "value": process})
    for value in (-1, *range(k)):
        events.append({"process": k, "type": "invoke", "f": "read", "value": None})
        events.append({"process": k, "type": "ok", "f": "read", "value": value})
    return events
