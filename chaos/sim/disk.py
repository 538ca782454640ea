"""A simulated node's data directory: the real write-ahead log on a simulated disk.

`SimDataDir` holds a `SimDirectory` (raftcluster/storage/simfs.py: files in memory with
a real disk's crash semantics) and opens the real `FileStorage` on it, as a node opens
its data directory. A power cut (`crash`) keeps what a disk may keep: synced bytes, and
a prefix of the bytes written since (so the last record may be torn), as the seeded
generator decides; `cut_power_during(persist)` cuts the power inside a persist, after a
drawn number of its writes.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from raftcluster.storage.simfs import SimDirectory, SimulatedCrash
from raftcluster.storage.wal import FileStorage, WalOptions

# Persist operations (writes and syncs) after which a power cut inside a persist may land.
MAX_OPS_BEFORE_CUT = 8


@attrs.frozen
class Lost:
    """What a power cut cost: unsynced bytes lost, and whether a record was cut in two."""

    bytes: int = 0
    torn: bool = False


class SimDataDir:
    def __init__(self, path: str, *, lying_fsync: bool = False) -> None:
        self.directory = SimDirectory(path)
        self.options = WalOptions()
        self.lying_fsync = lying_fsync
        self._counts = {"power_cuts": 0}

    def open(self) -> FileStorage:
        """The node's storage, not loaded yet (the node core loads it when it starts)."""
        return FileStorage(self.directory, self.options)

    def cut_power_during(self, persist: Callable[[], None], rng: random.Random) -> None:
        """Run `persist` with the power going after a drawn number of its operations (if it
        finishes first, the power goes just after it: synced, never acknowledged)."""
        directory = self.directory
        directory.fail_at_op = directory.ops + rng.randint(1, MAX_OPS_BEFORE_CUT)
        try:
            persist()
        except SimulatedCrash:
            pass
        finally:
            directory.fail_at_op = None

    def crash(self, rng: random.Random) -> Lost:
        """Lose what a power cut may lose, as `rng` decides."""
        self._counts["power_cuts"] += 1
        lost = [0]

        def choose(n: int) -> int:
            kept = rng.randint(0, n)
            lost[0] += n - kept
            return kept

        self.directory.crash(choose)
        return Lost(lost[0], lost[0] > 0)

    def heal(self) -> None:
        """The faults are over: nothing armed stays armed."""

    def counts(self) -> dict[str, int]:
        return dict(self._counts)
