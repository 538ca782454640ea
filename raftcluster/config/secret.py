"""The cluster secret file: random bytes, readable by its owner only.

`init` writes 32 bytes from `secrets` with mode 0600. Reading refuses a file that is
missing, readable or writable by anyone but its owner, or whose length is outside the
transport's bounds, each with a message that says how to fix it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from raftcluster.config.errors import ConfigError
from raftcluster.transport.config import MAX_SECRET_BYTES, MIN_SECRET_BYTES

SECRET_BYTES = 32


def write_secret(path: Path) -> None:
    """Create `path` (it must not exist) holding fresh random bytes, mode 0600, synced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, secrets.token_bytes(SECRET_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret(path: Path) -> bytes:
    """The secret in `path`; raises ConfigError (naming `path`) when it cannot be used."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(
            path, 0, "", "secret file not found (`raftcluster init` writes one)"
        ) from None
    except OSError as e:
        raise ConfigError(path, 0, "", f"cannot open the secret file: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(path, 0, "", "the secret file is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ConfigError(
                path, 0, "",
                f"the secret file has mode {mode:04o}: anyone but its owner may read it; "
                f"run: chmod 600 {path}",
            )  # fmt: skip
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if not MIN_SECRET_BYTES <= len(data) <= MAX_SECRET_BYTES:
        raise ConfigError(
            path, 0, "",
            f"the secret file holds {len(data)} bytes; it needs {MIN_SECRET_BYTES}.."
            f"{MAX_SECRET_BYTES} random bytes (`raftcluster init` writes {SECRET_BYTES})",
        )  # fmt: skip
    return data
