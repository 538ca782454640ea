"""Errors of the linearizability checker.

Both derive from `statemachine.errors.ClusterError`, the project's one hierarchy, and from
`ValueError`, because each says that an input (a history file, a model name, an option) is
not acceptable. Nothing is half-read: a history either parses whole or raises.
"""

from __future__ import annotations

from statemachine.errors import ClusterError


class HistoryError(ClusterError, ValueError):
    """A history that cannot be read: `source` and 1-based `line` say where, `reason` what.

    `line` is 0 when the problem is not tied to one line (a missing file, a limit on the
    whole history).
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


class ModelError(ClusterError, ValueError):
    """An unknown model, an option it does not take, or an operation it cannot interpret.

    `model` names the model (or the name that was asked for); `reason` says what is wrong.
    """

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(f"model {model!r}: {reason}")
        self.model = model
        self.reason = reason
