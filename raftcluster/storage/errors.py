"""Errors of the storage layer. All derive from `ClusterError` through `StorageError`.

Bad arguments (an append with a gap, a snapshot older than the stored one) raise the
shared `InvalidArgument`; sizes over a limit raise `LimitExceeded`. Both are raised
before anything is buffered, so a refused call changes nothing.
"""

from __future__ import annotations

from statemachine.errors import ClusterError


class StorageError(ClusterError):
    """Root of the storage layer's own errors."""


class StorageCorrupted(StorageError):
    """The data directory holds bytes that are not a state this storage could have written.

    Raised by `load()` for damage that is not a torn tail: a bad record followed by valid
    ones, a bad record in a segment that is not the last, a missing segment or snapshot.
    `path` is the file, `offset` the byte offset in it where the damage starts.
    The node must not start on this directory: the log may be missing acknowledged entries.
    """

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(
            f"storage corrupted: {path} at byte {offset}: {reason}. "
            "The node must not start from this directory. Keep a copy of it for diagnosis, "
            "then remove the directory and let the node rejoin as a new, empty member "
            "(it will receive a snapshot from the leader); see docs/storage.md, 'Recovery'."
        )
        self.path = path
        self.offset = offset
        self.reason = reason


class StorageLocked(StorageError):
    """Another process (or another open storage in this one) holds the data directory."""

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(
            f"data directory {path} is in use by another storage ({holder}); "
            "stop that node first, or give this one its own directory"
        )
        self.path = path
        self.holder = holder


class StorageFailed(StorageError):
    """A write or fsync failed. The storage refuses every further call.

    After a failed fsync the kernel may have dropped the dirty pages, so retrying could
    report success for data that is gone. The only safe way on is to restart the node,
    which reloads what is really on disk.
    """

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(
            f"storage write failed in {path}: {cause}; restart the node to reload from disk"
        )
        self.path = path
        self.cause = cause


class StorageClosed(StorageError):
    """A call on a storage that is closed, crashed, or not loaded yet."""
