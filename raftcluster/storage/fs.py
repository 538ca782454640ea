"""The file layer the WAL writes through, and its implementation on the real file system.

The WAL never calls `os` itself: it uses a `Directory` (one flat directory: segments,
snapshots, temporary files and the lock). `OsDirectory` is the real one;
`simfs.SimDirectory` keeps files in memory with a real disk's crash semantics, so
tests can cut the WAL at every write and the simulator can run it without a disk.
Files are only ever appended to, truncated (when recovery cuts a torn tail), renamed
and removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Protocol

from raftcluster.storage.errors import StorageLocked

LOCK_NAME = "LOCK"


class File(Protocol):
    """A file open for appending."""

    def write(self, data: bytes) -> None:
        """Append all of `data` (not durable until `sync`)."""
        ...

    def sync(self) -> None:
        """Make the file's data and size durable (fsync)."""
        ...

    def close(self) -> None: ...


class Directory(Protocol):
    path: str  # for messages

    def names(self) -> list[str]:
        """File names in the directory, sorted."""
        ...

    def read(self, name: str) -> bytes: ...

    def size(self, name: str) -> int: ...

    def create(self, name: str) -> File:
        """Create a new, empty file (it must not exist) and open it for appending.
        The name is durable only after `sync()` of the directory."""
        ...

    def append(self, name: str) -> File:
        """Open an existing file for appending at its end."""
        ...

    def truncate(self, name: str, size: int) -> None:
        """Cut a file to `size` bytes and make that durable."""
        ...

    def remove(self, name: str) -> None: ...

    def rename(self, src: str, dst: str) -> None:
        """Rename atomically, replacing `dst`. Durable after `sync()` of the directory."""
        ...

    def sync(self) -> None:
        """Make the directory's entries (creations, renames, removals) durable."""
        ...

    def lock(self) -> None:
        """Take the directory for this storage alone, or raise `StorageLocked`."""
        ...

    def unlock(self) -> None: ...


class OsFile:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # os.write may write less than asked (signals, large writes)
            written = os.write(self._fd, view)
            view = view[written:]

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


class OsDirectory:
    """A directory on the real file system. Not thread-safe; one storage uses it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> OsDirectory:
        """Use the directory at `path`, creating it (durably) if it does not exist."""
        text = os.path.abspath(os.fspath(path))
        if not os.path.isdir(text):
            os.makedirs(text)
            _fsync_dir(os.path.dirname(text))
        return cls(text)

    def _at(self, name: str) -> str:
        assert name and "/" not in name and name not in (".", ".."), name
        return os.path.join(self.path, name)

    def names(self) -> list[str]:
        return sorted(os.listdir(self.path))

    def read(self, name: str) -> bytes:
        with open(self._at(name), "rb") as f:
            return f.read()

    def size(self, name: str) -> int:
        return os.stat(self._at(name)).st_size

    def create(self, name: str) -> File:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        return OsFile(os.open(self._at(name), flags, 0o644))

    def append(self, name: str) -> File:
        return OsFile(os.open(self._at(name), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC))

    def truncate(self, name: str, size: int) -> None:
        fd = os.open(self._at(name), os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, name: str) -> None:
        os.unlink(self._at(name))

    def rename(self, src: str, dst: str) -> None:
        os.replace(self._at(src), self._at(dst))

    def sync(self) -> None:
        _fsync_dir(self.path)

    def lock(self) -> None:
        """flock(LOCK_EX | LOCK_NB) on the LOCK file, which then holds our pid.

        flock locks belong to the open file description, so a second open in the same
        process is refused too. The lock goes with the process: kill -9 releases it.
        """
        assert self._lock_fd is None, "already locked"
        fd = os.open(self._at(LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StorageLocked(self.path, f"pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):  # closing releases the lock whatever happens
                os.close(self._lock_fd)
            self._lock_fd = None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
