"""Durable state of a node: the `Storage` protocol and its two implementations.

- `FileStorage`: a write-ahead log in segments plus snapshot files (the node runtime).
- `MemoryStorage`: in memory, with crash semantics (the simulator).
docs/storage.md describes the format, the guarantees and recovery.
"""

from raftcluster.storage.errors import (
    StorageClosed,
    StorageCorrupted,
    StorageError,
    StorageFailed,
    StorageFormatUnsupported,
    StorageLocked,
)
from raftcluster.storage.interface import DurableState, Storage
from raftcluster.storage.memory import MemoryStorage
from raftcluster.storage.wal import FileStorage, WalOptions

__all__ = [
    "DurableState",
    "FileStorage",
    "MemoryStorage",
    "Storage",
    "StorageClosed",
    "StorageCorrupted",
    "StorageError",
    "StorageFailed",
    "StorageFormatUnsupported",
    "StorageLocked",
    "WalOptions",
]
