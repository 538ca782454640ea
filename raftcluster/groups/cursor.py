"""`CursorFile`: the global updates' cursor (the last revision handled), kept durably.

The file holds the revision in decimal and a newline. A save writes a temporary file
next to it, fsyncs it, renames it over the old one and fsyncs the directory, so after a
crash the file holds either the old revision or the new one, never a torn value. A file
that does not parse is an error (`CursorDamaged`), not a silent restart from 0.
"""

from __future__ import annotations

import os
from pathlib import Path

from statemachine.errors import ClusterError


class CursorDamaged(ClusterError):
    """The cursor file exists but does not hold a revision."""


class CursorFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as e:
            raise CursorDamaged(f"{self.path}: cannot read the update cursor: {e}") from None
        value = text.strip()
        if not value.isdigit() or not text.endswith("\n"):
            raise CursorDamaged(f"{self.path}: {text[:40]!r} is not a revision")
        return int(value)

    def save(self, revision: int) -> None:
        assert revision >= 0
        temp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{revision}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
