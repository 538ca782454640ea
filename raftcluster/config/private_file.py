"""Reading a small file that may hold a secret (the cluster and client secrets, the client
key file, TLS keys and certificates): a regular file, at most a known size, and, when it
holds a secret, readable and writable by its owner only.

    read_small_file(path, max_bytes, what=..., owner_only=...) -> bytes

Raises FileNotFoundError and OSError (from opening: the caller words "missing" its own
way), and `UnusableFile` with a reason that says how to fix it. The caller wraps both in
its own typed error, naming its setting. The size is checked by the caller: up to
`max_bytes + 1` bytes are read, so that "too large" can be told from "exactly at the
limit" without reading a huge file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnusableFile(Exception):
    """The file exists but cannot be used; `reason` says why and how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_small_file(path: Path, max_bytes: int, *, what: str, owner_only: bool) -> bytes:
    """At most `max_bytes + 1` bytes of the regular file `path`. `what` names it in a
    reason ("the secret file", "a private key"); `owner_only`: refuse a mode that lets
    anyone but the owner read or write it (checked on the open file, not the path)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnusableFile(f"{what} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if owner_only and mode & 0o077:
            raise UnusableFile(
                f"{what} has mode {mode:04o}: anyone but its owner may read it; "
                f"run: chmod 600 {path}"
            )
        return os.read(fd, max_bytes + 1)
    finally:
        os.close(fd)
