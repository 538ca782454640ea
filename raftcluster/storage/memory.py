"""The in-memory storage for the simulator: the WAL's semantics, crashes included.

Every call is a sequence of writes, as in the WAL: one per entry, one per hard state
(skipped when unchanged), one per snapshot. Writes since the last `sync()` are pending.
`crash(keep_writes, torn=...)` is a power cut: the first `keep_writes` pending writes
survive (a disk may persist some unsynced writes, in order), the rest are lost, and
`torn=True` says the next one was cut in the middle (recovery drops it, logs it and
counts it in `torn_tails_cut`). After a crash or `close()`, `load()` returns what
survived and the storage takes writes again, as a restarted node's would.

The storage has no randomness: the simulator decides `keep_writes` and `torn` with its
own seeded generator, so the same seed gives the same disk.

Planted fault, for proving that the checkers can fail: `MemoryStorage(lie_on_sync=True)`
makes `sync()` return without making anything durable, like a disk that acknowledges
a flush it has not done. A crash then loses writes the node believed durable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import attrs

from raftcluster.raft.types import Entry, HardState, Snapshot
from raftcluster.storage.errors import StorageClosed
from raftcluster.storage.interface import DurableState
from raftcluster.storage.logstate import LogState
from statemachine.errors import InvalidArgument, LimitExceeded

log = logging.getLogger("raftcluster.storage")

DEFAULT_MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
# A shell that never syncs is a bug; this bound makes it fail loudly instead of growing.
DEFAULT_MAX_PENDING_WRITES = 1_000_000


@attrs.frozen
class _Write:
    entry: Entry | None = None
    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    retained_last: int = 0  # for a snapshot: the last index kept after it

    def apply(self, state: LogState, snapshot: Snapshot | None) -> Snapshot | None:
        """Apply to `state`; return the snapshot in force after it."""
        if self.entry is not None:
            state.apply_entry(self.entry)
        elif self.hard_state is not None:
            state.apply_hard_state(self.hard_state)
        else:
            assert self.snapshot is not None, "a write is an entry, a hard state or a snapshot"
            meta = self.snapshot.meta
            state.apply_snapshot(meta.index, meta.term, self.retained_last)
            return self.snapshot
        return snapshot


class MemoryStorage:
    """`Storage` in memory with crash semantics. Deterministic; not thread-safe."""

    def __init__(
        self,
        *,
        lie_on_sync: bool = False,
        max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES,
        max_pending_writes: int = DEFAULT_MAX_PENDING_WRITES,
    ) -> None:
        self.lie_on_sync = lie_on_sync
        self.max_snapshot_bytes = max_snapshot_bytes
        self.max_pending_writes = max_pending_writes
        self._durable = LogState()
        self._durable_snapshot: Snapshot | None = None
        self._current: LogState | None = None  # durable plus pending; None until load()
        self._pending: list[_Write] = []
        self.syncs = 0  # calls to sync() that had something to make durable
        self.crashes = 0
        self.torn_tails_cut = 0

    @property
    def pending_writes(self) -> int:
        """How many writes a crash now could lose (the range of `crash(keep_writes)`)."""
        return len(self._pending)

    # -- Storage protocol ------------------------------------------------------------

    @property
    def synced(self) -> LogState:
        """The state as of the last `sync()` (what a crash keeps for sure); read only."""
        return self._durable

    @property
    def current(self) -> LogState | None:
        """The state as every write so far leaves it, synced or not (None before `load()`);
        read only. A crash keeps this state or one of those before it."""
        return self._current

    def load(self) -> DurableState:
        """What survived: everything synced, and what the last crash chose to keep."""
        if self._current is not None:
            raise StorageClosed("load() was already called; crash() or close() first")
        self._current = _copy(self._durable)
        return DurableState(
            self._durable.hard_state, self._durable_snapshot, tuple(self._durable.entries)
        )

    def append(self, entries: Sequence[Entry]) -> None:
        current = self._writable(len(entries))
        current.check_append(entries)
        for entry in entries:
            current.apply_entry(entry)
            self._pending.append(_Write(entry=entry))

    def set_hard_state(self, hard_state: HardState) -> None:
        current = self._writable()
        if hard_state == current.hard_state:
            return
        current.check_hard_state(hard_state)
        current.apply_hard_state(hard_state)
        self._pending.append(_Write(hard_state=hard_state))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        current = self._writable()
        if len(snapshot.data) > self.max_snapshot_bytes:
            raise LimitExceeded("snapshot.data", self.max_snapshot_bytes, len(snapshot.data))
        meta = snapshot.meta
        retained_last = current.check_snapshot(meta)
        current.apply_snapshot(meta.index, meta.term, retained_last)
        self._pending.append(_Write(snapshot=snapshot, retained_last=retained_last))

    def stage_snapshot(self, snapshot: Snapshot) -> None:
        """Nothing to do ahead in memory (`Storage.stage_snapshot`)."""

    def sync(self) -> None:
        self._writable(0)
        if not self._pending or self.lie_on_sync:
            return
        self.syncs += 1
        self._persist(len(self._pending))

    def close(self) -> None:
        """Like a clean stop: pending writes are dropped; `load()` may be called again."""
        self._pending = []
        self._current = None

    # -- crash -----------------------------------------------------------------------

    def crash_outcomes(self) -> Iterator[DurableState]:
        """Every state a crash now may leave, in order: what `load()` returns after
        `crash(keep_writes=k)`, for k = 0 (the synced state) up to `pending_writes`.
        Lazy: each state costs a copy of the entries, so stop at the one you look for."""
        state = _copy(self._durable, keep_entries=True)
        snapshot = self._durable_snapshot
        yield DurableState(state.hard_state, snapshot, tuple(state.entries))
        for write in self._pending:
            snapshot = write.apply(state, snapshot)
            yield DurableState(state.hard_state, snapshot, tuple(state.entries))

    def crash(self, keep_writes: int = 0, *, torn: bool = False) -> None:
        """A power cut. The first `keep_writes` pending writes survive, the others are
        lost; `torn` says the write after them was cut in the middle (it is dropped too,
        and counted; no effect when no write follows). Then `load()` may be called."""
        if not 0 <= keep_writes <= len(self._pending):
            raise InvalidArgument(
                "crash.keep_writes", f"{keep_writes} is outside 0..{len(self._pending)}"
            )
        self._persist(keep_writes)
        if torn and self._pending:
            self.torn_tails_cut += 1
            log.warning("storage: torn tail in memory storage: dropping a write cut by a crash")
        self.crashes += 1
        self._pending = []
        self._current = None

    # -- internals -------------------------------------------------------------------

    def _persist(self, count: int) -> None:
        for write in self._pending[:count]:
            self._durable_snapshot = write.apply(self._durable, self._durable_snapshot)
        del self._pending[:count]

    def _writable(self, writes: int = 1) -> LogState:
        if self._current is None:
            raise StorageClosed("call load() before writing (again after a crash or close)")
        if len(self._pending) + writes > self.max_pending_writes:
            raise LimitExceeded(
                "pending writes", self.max_pending_writes, len(self._pending) + writes, "writes"
            )
        return self._current


def _copy(state: LogState, *, keep_entries: bool = False) -> LogState:
    """The same log; without the entries unless asked (the current state only
    validates calls)."""
    return LogState(
        keep_entries,
        state.hard_state,
        state.snapshot_index,
        state.snapshot_term,
        state.last_index,
        state.terms[:],
        state.entries[:] if keep_entries else [],
    )
