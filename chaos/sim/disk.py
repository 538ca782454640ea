"""The simulated disk: `MemoryStorage` that can lose power in the middle of a sync.

The node core persists a Ready with some writes and one `sync()`. Arming the disk makes
the next `sync()` raise `PowerCut` before anything is made durable: the simulator then
crashes the storage, keeping a prefix of the unsynced writes chosen by the seed (a disk
may have persisted some of them), possibly with the next one torn. The messages of that
Ready are never sent, exactly as when a machine dies during fsync.
"""

from __future__ import annotations

from raftcluster.storage.memory import MemoryStorage


class PowerCut(Exception):  # noqa: N818 - an event, not an error of the code under test
    """Raised by an armed `SimDisk.sync()`: the machine lost power during the sync."""


class SimDisk(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def sync(self) -> None:
        if self.armed and self.pending_writes:
            self.armed = False
            raise PowerCut()
        super().sync()
