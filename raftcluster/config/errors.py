"""Errors in a cluster file or its secret file: which file, which line, which key, why."""

from __future__ import annotations

from pathlib import Path

from statemachine.errors import ClusterError


class ConfigError(ClusterError):
    """The cluster file (or the secret file it names) cannot be used.

    `path` is the file, `line` the line the problem is on (0 when it is not on one line:
    a missing file, a missing key), `key` the dotted key (``"timing.election_timeout_ms"``,
    ``"nodes[2].addresses"``; empty for a syntax error), `reason` what is wrong and, where
    it helps, what to do.
    """

    def __init__(self, path: Path | str, line: int, key: str, reason: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        what = f"{key}: {reason}" if key else reason
        super().__init__(f"{where}: {what}")
        self.path = Path(path)
        self.line = line
        self.key = key
        self.reason = reason
