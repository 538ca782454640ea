"""`register`: one value, read / write / cas.

Options:
- `initial` (any JSON value, default null): the value before the first operation; null
  means absent.
- `fail` (`did-not-happen`, default, or `definite`): with `definite` a failed cas happened
  and saw a value other than its expected one; otherwise, and for every other failed
  operation in both modes, a failure had no effect and is left out.
- `read_nil` (`only-while-absent`, default, or `unknown-value`): whether a read that
  returned null saw the register absent, or returned an unknown value (then it
  constrains nothing).

A read that failed or whose outcome is unknown constrains nothing and is left out. An
`info` write or cas may have taken effect (a cas only if it found its expected value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from chaos.checker.errors import ModelError
from chaos.checker.history import Operation, Status
from chaos.checker.model import BaseModel, OptionReader, Prepared, State, show
from chaos.checker.search import ANYWHERE
from chaos.checker.values import Frozen, freeze

FAIL_MODES: Final = ("did-not-happen", "definite")
READ_NIL_MODES: Final = ("only-while-absent", "unknown-value")

# Inputs are (kind, a, b) tuples; outputs what the operation observed.
READ: Final = "read"
WRITE: Final = "write"
CAS: Final = "cas"
CAS_OK: Final = "ok"  # output of a cas that succeeded, or that may have (info)
CAS_FAILED: Final = "fail"  # output of a cas that failed definitely
_READ_INPUT: Final = (READ, None, None)
_OK: Final = Status.OK
_FAIL: Final = Status.FAIL
_new = tuple.__new__


class RegisterModel(BaseModel):
    name = "register"

    def __init__(
        self,
        initial: Any = None,
        fail: str = "did-not-happen",
        read_nil: str = "only-while-absent",
    ) -> None:
        self.initial: State = freeze(initial)
        self.definite = fail == "definite"
        self.nil_unknown = read_nil == "unknown-value"
        self._options = {"initial": initial, "fail": fail, "read_nil": read_nil}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RegisterModel:
        reader = OptionReader(cls.name, options)
        initial = reader.value("initial", None)
        fail = reader.choice("fail", FAIL_MODES, "did-not-happen")
        read_nil = reader.choice("read_nil", READ_NIL_MODES, "only-while-absent")
        reader.finish()
        return cls(initial, fail, read_nil)

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def init(self) -> State:
        return self.initial

    def prepare(self, op: Operation) -> Prepared | None:
        # Called once per operation of every history: tuple.__new__ and module-level
        # aliases keep it cheap, since small histories are mostly setup.
        status = op.status
        f = op.f
        if f == READ:
            output = op.output
            if status is not _OK or (output is None and self.nil_unknown):
                return None
            return _new(Prepared, (_READ_INPUT, output, True, output))
        if f == WRITE:
            if status is _FAIL:
                return None
            return _new(Prepared, ((WRITE, op.input, None), None, False, ANYWHERE))
        if f == CAS:
            expected, new = cas_arguments(self.name, op)
            if status is _FAIL:
                if not self.definite:
                    return None
                return _new(Prepared, ((CAS, expected, new), CAS_FAILED, True, ANYWHERE))
            return _new(Prepared, ((CAS, expected, new), CAS_OK, False, ANYWHERE))
        raise ModelError(self.name, f"line {op.line}: no operation {op.f!r} (read, write, cas)")

    def step(self, state: State, input: Any, output: Any) -> tuple[bool, State]:
        kind, a, b = input
        if kind is READ:
            return state == output, state
        if kind is WRITE:
            return True, a
        if output is CAS_FAILED:
            return state != a, state
        if state == a:
            return True, b
        return False, state

    def describe_operation(self, op: Operation) -> str:
        if op.f == READ:
            result = "?" if op.status is not Status.OK else show(op.output)
            return f"read() -> {result}"
        if op.f == WRITE:
            return f"write({show(op.input)}) -> {_status(op)}"
        expected, new = cas_arguments(self.name, op)
        return f"cas({show(expected)}, {show(new)}) -> {_status(op)}"


def cas_arguments(model: str, op: Operation) -> tuple[Frozen, Frozen]:
    value = op.input
    if type(value) is not tuple or len(value) != 2:
        raise ModelError(model, f"line {op.line}: cas takes [expected, new], not {show(value)}")
    return value[0], value[1]


def _status(op: Operation) -> str:
    return {Status.OK: "ok", Status.FAIL: "fail", Status.INFO: "?"}[op.status]
