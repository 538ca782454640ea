"""One simulated node's data directory: the real WAL on a simulated disk, with faults.

`SimDataDir` owns a `SimDirectory` (the disk) and a `DurabilityOracle` (the shadow of
what the node made durable). The simulator gives each node one and uses it so:

    datadir = SimDataDir(node_id)
    storage = datadir.open()          # a fresh FileStorage, wrapped by CheckedStorage;
    state = storage.load()            # the node core calls load() when it starts:
                                      # checked against the shadow (DurabilityLost)
    ...                               # the node appends, sets hard states, syncs
    datadir.crash(choose)             # power loss: the open storage is abandoned, the
                                      # disk keeps the prefixes `choose` decides
    storage = datadir.open()          # the next incarnation

Every fault is at a place the caller chooses through `choose(n) -> 0..n`, called with
the simulator's seeded generator: the directory has no randomness of its own and never
iterates over a set, so a seed gives the same disk and the same faults.

- `crash(choose)`: power lost. Unsynced data and directory changes survive as prefixes
  (see `SimDirectory.crash` for the order of the `choose` calls); the writes the node
  had not synced are in doubt for the oracle.
- `cut_power_after(ops)`: the `ops`-th disk operation from now (1: the next) raises
  `SimulatedCrash` (a write is applied first, unsynced): power lost in the middle of a
  persist. The node's `sync()` (or a write call that made the storage sync by itself)
  raises it; the simulator then calls `crash(choose)`.
- `corrupt_bit(choose)`, `zero_sector(choose)`: damage to durable bytes (a latent
  sector error), seen at the node's next start. That start may then refuse with
  `StorageCorrupted` (the node stays down) or, if the damage does not matter (a file
  recovery deletes, a sector of zeros), recover normally.
- `fail_next_write(errno)`, `fail_next_sync(errno)`: the next write, or the next fsync,
  fails with `OSError` (`errno.EIO`, `errno.ENOSPC`); the storage raises `StorageFailed`
  and refuses every later call, and the node must stop: the simulator then calls
  `crash(choose)` (or `close` the storage and restart it: unsynced bytes already
  written may still come back, which the oracle allows).
- `wipe()`: the directory is lost entirely. This is a declared loss, not a durability
  bug: the oracle starts again from an empty state. What the cluster does with a member
  that forgot its votes and log is for the simulator's Raft-level checks.

`injected` counts what was done; `oracle` holds the check's own counters.
"""

from __future__ import annotations

import attrs

from chaos.sim.durability import CheckedStorage, DurabilityOracle
from raftcluster.storage import FileStorage, WalOptions
from raftcluster.storage.simfs import SECTOR_BYTES, Choose, SimDirectory

MiB = 1024 * 1024
# Segments as small as a maximal entry record allows (2 MiB + 33 bytes, after a segment
# header), so that simulated runs roll segments over and delete them after snapshots:
# with the 64 MiB default a simulated node would almost never start a second segment.
SIM_WAL_OPTIONS = WalOptions(max_segment_bytes=3 * MiB)


@attrs.define
class InjectedFaults:
    """What one data directory was made to suffer."""

    crashes: int = 0  # power lost (crash)
    power_cuts_armed: int = 0  # cut_power_after
    bits_flipped: int = 0
    sectors_zeroed: int = 0
    sectors_changed: int = 0  # of the sectors zeroed, those that held a non-zero byte
    write_failures_armed: int = 0
    sync_failures_armed: int = 0
    wipes: int = 0


@attrs.frozen
class Damage:
    """One damage done to durable bytes: `name` at byte `offset_bytes`, `size_bytes`
    long (1 for a bit flip), and whether any byte changed (a zeroed sector may have
    held zeros)."""

    kind: str  # "bit" or "sector"
    name: str
    offset_bytes: int
    size_bytes: int
    changed: bool


class SimDataDir:
    """A node's data directory in the simulator (see the module docstring)."""

    def __init__(
        self, node_id: int, options: WalOptions = SIM_WAL_OPTIONS, *, check_startable: bool = False
    ) -> None:
        """`check_startable`: hold the node's writes to a safe order (`CheckedStorage`);
        off for tests that write what a storage accepts, in any order."""
        self.path = f"sim/node-{node_id}"
        self.options = options
        self.check_startable = check_startable
        self.directory = SimDirectory(self.path)
        self.oracle = DurabilityOracle(self.path)
        self.injected = InjectedFaults()
        self._storage: CheckedStorage | None = None

    def open(self) -> CheckedStorage:
        """A fresh storage on the directory for a new incarnation of the node; the node
        calls `load()` on it. Refused (`StorageLocked`) while the last one is open: the
        node must `close()` it, or the directory `crash`."""
        inner = FileStorage(self.directory, self.options)
        self._storage = CheckedStorage(inner, self.oracle, check_startable=self.check_startable)
        return self._storage

    # -- power ---------------------------------------------------------------------------

    def crash(self, choose: Choose) -> None:
        """Power lost: the open storage (if any) is abandoned, and the disk keeps what
        `choose` decides of what was not synced."""
        self._abandon()
        self.directory.crash(choose)
        self.injected.crashes += 1

    def cut_power_after(self, ops: int) -> None:
        """Make the `ops`-th disk operation from now raise `SimulatedCrash` (1: the
        next); then call `crash`. It stays armed until it fires or the next `crash` or
        `wipe`, so when the persist it was meant for has fewer operations, it fires in a
        later one."""
        if ops < 1:
            raise ValueError(f"cut_power_after({ops}): the count starts at 1 (the next)")
        self.directory.fail_at_op = self.directory.ops + ops
        self.injected.power_cuts_armed += 1

    # -- damage to durable bytes ----------------------------------------------------------

    def corrupt_bit(self, choose: Choose) -> Damage | None:
        """Flip one bit of durable data: `choose` picks the file (among those with
        durable bytes, in name order), then the bit. None: no durable byte anywhere."""
        picked = self._pick_file(choose)
        if picked is None:
            return None
        name, size = picked
        bit = _pick(choose, 8 * size - 1)
        self.directory.flip_bit(name, bit)
        self.oracle.note_damage()
        self.injected.bits_flipped += 1
        return Damage("bit", name, bit // 8, 1, True)

    def zero_sector(self, choose: Choose) -> Damage | None:
        """Zero one sector of durable data: `choose` picks the file, then the sector."""
        picked = self._pick_file(choose)
        if picked is None:
            return None
        name, size = picked
        sector = _pick(choose, (size - 1) // SECTOR_BYTES)
        start = sector * SECTOR_BYTES
        end = min(start + SECTOR_BYTES, size)
        changed = any(self.directory.read(name)[start:end])
        self.directory.zero_sector(name, sector)
        self.injected.sectors_zeroed += 1
        if changed:
            self.oracle.note_damage()
            self.injected.sectors_changed += 1
        return Damage("sector", name, start, end - start, changed)

    # -- I/O errors and loss ------------------------------------------------------------

    def fail_next_write(self, code: int) -> None:
        """The next write fails with `OSError(code)` (errno.EIO, errno.ENOSPC...)."""
        self.directory.fail_next_write(code)
        self.injected.write_failures_armed += 1

    def fail_next_sync(self, code: int) -> None:
        """The next fsync (file or directory) fails with `OSError(code)`."""
        self.directory.fail_next_sync(code)
        self.injected.sync_failures_armed += 1

    def wipe(self) -> None:
        """The directory is lost entirely (the open storage with it). A declared loss:
        the oracle starts again from nothing."""
        self._abandon()
        self.directory.wipe()
        self.oracle.reset()
        self.injected.wipes += 1

    # -- internals -------------------------------------------------------------------

    def _abandon(self) -> None:
        if self._storage is not None:
            self._storage.abandon()
            self._storage = None

    def _pick_file(self, choose: Choose) -> tuple[str, int] | None:
        files = [
            (name, size)
            for name in self.directory.names()
            if (size := self.directory.synced_size(name)) > 0
        ]
        if not files:
            return None
        return files[_pick(choose, len(files) - 1)]


def _pick(choose: Choose, n: int) -> int:
    picked = choose(n)
    if not 0 <= picked <= n:
        raise ValueError(f"choose({n}) returned {picked}, outside 0..{n}")
    return picked
