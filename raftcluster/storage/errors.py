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

    Raised by `load()` for damage that is not a torn tail: a bad record that is not a
    record cut short at the end of the last segment, a bad record in any other segment,
    a missing segment or snapshot. `path` is the file, `offset` the byte offset in it
    where the damage starts, `reason` what was found there.

    The node must not start on this directory: its log may be missing entries or a vote
    it acknowledged. Nor may it start with an empty one under the same identity: a
    founding member with an empty log bootstraps the cluster again and may vote a second
    time in a term it already voted in. docs/storage.md, "Recovery after
    StorageCorrupted", says what to do.
    """

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(
            f"storage corrupted: {path} at byte {offset}: {reason}. "
            "The node must not start from this directory, nor from an empty one under the "
            "same identity. Keep a copy of the directory for diagnosis, then either restore "
            "it from a backup taken after the node last ran, or replace the member: "
            "`raftcluster member replace ID --write-config FILE` removes it and adds it back "
            "with a fresh identity, and `raftcluster node run --config FILE --id ID --join` "
            "starts it from an empty directory. See docs/storage.md, 'Recovery after "
            "StorageCorrupted', and docs/operations.md."
        )
        self.path = path
        self.offset = offset
        self.reason = reason


class StorageFormatUnsupported(StorageError):
    """A segment is in a format version this build does not read (written by an older or
    newer release). Nothing is damaged; nothing is changed."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"storage format: {path} is in WAL format version {found}; this release reads "
            f"version {supported} only and cannot convert it. Start the node with a release "
            "that reads it, or replace the member (remove it from the cluster and add it "
            "back with a fresh identity and an empty directory); see docs/storage.md, "
            "'Format versions'."
        )
        self.path = path
        self.found = found
        self.supported = supported


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
