"""The cluster secret file: random bytes, readable by its owner only.

`init` writes 32 bytes from `secrets` with mode 0600. Reading refuses a file that is
missing, readable or writable by anyone but its owner, or whose length is outside the
transport's bounds, each with a message that says how to fix it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from raftcluster.config.errors import ConfigError
from raftcluster.config.private_file import UnusableFile, read_small_file
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
        data = read_small_file(path, MAX_SECRET_BYTES, what="the secret file", owner_only=True)
    except FileNotFoundError:
        raise ConfigError(
            path, 0, "", "secret file not found (`raftcluster init` writes one)"
        ) from None
    except UnusableFile as e:
        raise ConfigError(path, 0, "", e.reason) from None
    except OSError as e:
        raise ConfigError(path, 0, "", f"cannot open the secret file: {e.strerror}") from None
    if not MIN_SECRET_BYTES <= len(data) <= MAX_SECRET_BYTES:
        raise ConfigError(
            path, 0, "",
            f"the secret file holds {len(data)} bytes; it needs {MIN_SECRET_BYTES}.."
            f"{MAX_SECRET_BYTES} random bytes (`raftcluster init` writes {SECRET_BYTES})",
        )  # fmt: skip
    return data
