"""Errors of the run report.

`RecordError` derives from `statemachine.errors.ClusterError`, the project's one hierarchy,
and from `ValueError`: it says that a run record (or a file handed to `write_report`) is
not acceptable, and where.
"""

from __future__ import annotations

from statemachine.errors import ClusterError


class RecordError(ClusterError, ValueError):
    """A run record that does not follow the schema (docs/report.md).

    `path` names the offending value the way one would write it in Python on the JSON
    (`operations[12].complete_ms`, `run.nodes[2]`; empty for the record as a whole);
    `reason` says what is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else f"record: {reason}")
        self.path = path
        self.reason = reason

    def within(self, prefix: str) -> RecordError:
        """The same error, its path seen from an enclosing value at `prefix`."""
        if not prefix:
            return self
        if not self.path:
            return RecordError(prefix, self.reason)
        joiner = "" if self.path.startswith("[") else "."
        return RecordError(f"{prefix}{joiner}{self.path}", self.reason)
