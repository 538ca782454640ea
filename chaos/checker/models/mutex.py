"""`mutex`: a lock with a holder, acquire / release.

`acquire` succeeds only while the lock is free and makes the caller's process the
holder; `release` succeeds only by the holder and frees it. The state is the holder's
process, or null when free.

Options:
- `fail` (`did-not-happen`, default, or `definite`): with `definite` a failed acquire saw
  the lock held and a failed release saw it not held by the caller; otherwise a failure
  had no effect and is left out.

An `info` acquire or release may have taken effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from chaos.checker.errors import ModelError
from chaos.checker.history import Operation, Status
from chaos.checker.model import BaseModel, OptionReader, Prepared, State

FAIL_MODES: Final = ("did-not-happen", "definite")
ACQUIRE: Final = "acquire"
RELEASE: Final = "release"
SUCCEEDED: Final = "ok"  # output of an operation that succeeded, or may have (info)
FAILED: Final = "fail"  # output of an operation that failed definitely


class MutexModel(BaseModel):
    name = "mutex"

    def __init__(self, fail: str = "did-not-happen") -> None:
        self.definite = fail == "definite"
        self.fail = fail

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MutexModel:
        reader = OptionReader(cls.name, options)
        fail = reader.choice("fail", FAIL_MODES, "did-not-happen")
        reader.finish()
        return cls(fail)

    def options(self) -> dict[str, Any]:
        return {"fail": self.fail}

    def init(self) -> State:
        return None

    def prepare(self, op: Operation) -> Prepared | None:
        if op.f not in (ACQUIRE, RELEASE):
            raise ModelError(self.name, f"line {op.line}: no operation {op.f!r} (acquire, release)")
        kind = ACQUIRE if op.f == ACQUIRE else RELEASE
        if op.status is Status.FAIL:
            if not self.definite:
                return None
            return Prepared((kind, op.process), FAILED, True)
        return Prepared((kind, op.process), SUCCEEDED)

    def step(self, state: State, input: Any, output: Any) -> tuple[bool, State]:
        kind, process = input
        if kind is ACQUIRE:
            if output is FAILED:
                return state is not None, state
            return (True, process) if state is None else (False, state)
        if output is FAILED:
            return state != process, state
        return (True, None) if state == process else (False, state)

    def describe_state(self, state: State) -> Any:
        return {"holder": state}

    def describe_operation(self, op: Operation) -> str:
        result = {Status.OK: "ok", Status.FAIL: "fail", Status.INFO: "?"}[op.status]
        return f"{op.f}() -> {result}"
