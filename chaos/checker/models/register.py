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
An `info` write or cas whose new value nothing could have seen is left out too (see
`RegisterPartitionModel.unobserved`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from chaos.checker.errors import ModelError
from chaos.checker.history import Operation, Status
from chaos.checker.model import BaseModel, Model, OptionReader, Prepared, State, show
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

    def for_partition(self, ops: Sequence[Operation]) -> Model:
        return RegisterPartitionModel(self, ops)

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


class _Unread:
    """The state of a register holding a value that no operation of the history reads."""

    def __repr__(self) -> str:
        return "UNREAD"

    def __hash__(self) -> int:
        return 0x0DD  # a constant: nothing about the search depends on where it lives


UNREAD: Final[Any] = _Unread()


class RegisterPartitionModel(RegisterModel):
    """The register as it checks one history: it knows which values can be seen in it.

    A value is *read* when an operation's legality depends on the register holding it or
    not: a read that returned it (and is kept), a cas that expects it (ok, pending, or
    definitely failed). Two values neither of which is read are alike to every operation
    of the history: in both, every read and every cas that succeeds is illegal, every
    failed cas legal, and a write leaves the same state. So every value that is not read
    is written as one, `UNREAD` (the state of the register holding it): the search then
    meets one state where it met many, and pending writes of such values become twins, of
    which it tries only the first (chaos.checker.search). The verdict is the same, and a
    witness shows the real values (`plain()`).

    A pending write or cas of a value that is not read is left out (`unobserved`) when
    no failed cas is kept either: a definitely failed cas is legal in every value but its
    expected one, so it may need the pending write to have happened.
    """

    def __init__(self, base: RegisterModel, ops: Sequence[Operation], merge: bool = True) -> None:
        self.initial = base.initial
        self.definite = base.definite
        self.nil_unknown = base.nil_unknown
        self._options = base._options
        self._base = base
        self._ops = ops
        self._merge = merge
        self._read: set[Any] = set()
        self._failed_cas = False
        for op in ops:
            if op.f == READ and op.status is _OK:
                if not (op.output is None and self.nil_unknown):
                    self._read.add(op.output)
            elif op.f == CAS and (op.status is not _FAIL or self.definite):
                self._read.add(cas_arguments(self.name, op)[0])
                self._failed_cas = self._failed_cas or op.status is _FAIL

    def unobserved(self, value: Frozen) -> bool:
        """Whether a pending write or cas that sets `value` can be left out: none sees it.

        Exact: take a linearization with the pending operation p. Right after p the
        register holds `value`, in which no read and no cas of this history is legal, and
        there is no failed cas: the next operation, if any, is a write, which does not
        care what it overwrites. Without p the same order is legal, and p pending may
        never have happened.
        """
        return not self._failed_cas and value not in self._read

    def init(self) -> State:
        return self._unread(self.initial)

    def _unread(self, value: State) -> State:
        return UNREAD if self._merge and value not in self._read else value

    def prepare(self, op: Operation) -> Prepared | None:
        prepared = super().prepare(op)
        if prepared is None or prepared.read_only:
            return prepared
        kind, a, b = prepared.input
        new = a if kind is WRITE else b
        if op.status is Status.INFO and self.unobserved(new):
            return None
        if not self._merge or new in self._read:
            return prepared
        merged = (WRITE, UNREAD, None) if kind is WRITE else (CAS, a, UNREAD)
        return Prepared(merged, prepared.output, False, ANYWHERE)

    def describe_state(self, state: State) -> Any:
        # A witness is told in plain(); this is for anyone who looks at the search's states.
        return "(a value no operation reads)" if state is UNREAD else super().describe_state(state)

    def plain(self) -> Model:
        """This model with each value as it is (for a witness): the same verdicts."""
        return RegisterPartitionModel(self._base, self._ops, merge=False)

    def for_partition(self, ops: Sequence[Operation]) -> Model:
        # What is left out and merged depends on the group: never reuse another group's.
        return RegisterPartitionModel(self._base, ops, self._merge)


def cas_arguments(model: str, op: Operation) -> tuple[Frozen, Frozen]:
    value = op.input
    if type(value) is not tuple or len(value) != 2:
        raise ModelError(model, f"line {op.line}: cas takes [expected, new], not {show(value)}")
    return value[0], value[1]


def _status(op: Operation) -> str:
    return {Status.OK: "ok", Status.FAIL: "fail", Status.INFO: "?"}[op.status]
