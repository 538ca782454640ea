"""The durability oracle: what a node's real storage recovers, checked against a shadow.

The simulator runs each node over the real write-ahead log (`FileStorage`) on a
simulated disk (`SimDirectory`) with injected faults. `CheckedStorage` stands between
the node and that storage: every call goes to the real storage and, once the real one
has accepted it, to a shadow `MemoryStorage`, whose crash semantics are the contract
itself (the synced state, plus a prefix of the writes since). The shadow outlives the
node's incarnations; the `DurabilityOracle` holds it.

When a node starts, `load()` returns what the real storage recovered, after checking
that it is the shadow's synced state plus some prefix (0..n) of the n writes pending
when the node last stopped (crash, power cut, failed fsync or close: the pending writes
may or may not have reached the disk). Anything else raises `DurabilityLost`, naming
the node's directory and what was lost ("synced entries up to 12 (term 3), recovered up
to 9 (term 3)", "synced vote for 2 in term 4, recovered term 1 with no vote"). The
shadow then continues from the prefix that survived.

What the real storage may do that the shadow does not, and why it is allowed:
- skip a hard state equal to the current one: so does the shadow (both compare with
  the state the writes so far leave);
- sync by itself when its buffer is full: data durable earlier than asked, which the
  prefix rule covers (the shadow keeps those writes pending, and a crash may keep any
  prefix of them);
- fail (`StorageFailed`, or `SimulatedCrash` for a power cut) inside a write call: its
  sync failed after the call's writes were buffered, so they go to the shadow as
  pending; inside `sync()`, nothing becomes durable in the shadow.

`load()` may also refuse with `StorageCorrupted`. That is allowed only after damage was
injected into durable data (`DurabilityOracle.note_damage`): a crash alone never
corrupts a directory, so a refusal without damage raises `UnexplainedCorruption`.

The failures are `AssertionError`s, like the simulator's `SafetyViolation`: failures of
the code under test found by the harness, never caught by a node's handling of the
storage errors (`ClusterError`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from raftcluster.raft.types import DurableState, Entry, HardState, Snapshot
from raftcluster.storage import (
    MemoryStorage,
    Storage,
    StorageClosed,
    StorageCorrupted,
    StorageFailed,
)
from raftcluster.storage.logstate import LogState
from raftcluster.storage.simfs import SimulatedCrash


class DurabilityCheckFailed(AssertionError):
    """The storage of the node whose directory is `where` broke the durability contract."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.detail = message


class DurabilityLost(DurabilityCheckFailed):
    """Recovery returned a state that is not the synced state plus a prefix of the
    writes pending at the crash: something synced is missing or changed, or something
    never written came back."""


class UnstartableOrder(DurabilityCheckFailed):
    """A write left the directory in a state the node could not start from, were the
    power cut now: the writes of a persist came in an unsafe order."""


class UnexplainedCorruption(DurabilityCheckFailed):
    """Recovery refused a directory (`StorageCorrupted`) that no injected fault damaged."""


class DurabilityOracle:
    """The shadow of one node's durable state, across the node's restarts.

    `where` names the node's data directory in messages. Counters: `loads` checked,
    `writes_in_doubt` (pending at a stop, over all stops), `writes_survived` (of those,
    found again by recovery), `refusals` (loads that raised `StorageCorrupted` after
    damage). Deterministic: no randomness, no clock.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self._shadow = MemoryStorage()
        self._shadow.load()
        self._damaged = False  # durable bytes were damaged since the last good load
        self.loads = 0
        self.writes_in_doubt = 0
        self.writes_survived = 0
        self.refusals = 0

    @property
    def shadow(self) -> MemoryStorage:
        """The shadow storage (read it; the oracle alone writes to it)."""
        return self._shadow

    def note_damage(self) -> None:
        """Durable bytes were damaged: the next load may refuse with StorageCorrupted."""
        self._damaged = True

    def reset(self) -> None:
        """The directory was lost entirely (a declared loss, not a silent one): the
        shadow starts again from an empty state."""
        self._shadow = MemoryStorage()
        self._shadow.load()
        self._damaged = False

    def recovered(self, state: DurableState) -> None:
        """Check the state a load returned; then continue the shadow from it."""
        shadow = self._shadow
        pending = shadow.pending_writes
        kept = _index_of(state, shadow.crash_outcomes())
        if kept is None:
            synced = next(shadow.crash_outcomes())
            raise DurabilityLost(self.where, explain(synced, state, pending))
        shadow.crash(kept)
        shadow.load()
        self._damaged = False  # a load that succeeds has read every byte it relies on
        self.loads += 1
        self.writes_in_doubt += pending
        self.writes_survived += kept

    def refused(self, error: StorageCorrupted) -> None:
        """A load refused the directory: allowed only after damage."""
        if not self._damaged:
            raise UnexplainedCorruption(
                self.where,
                f"recovery refused the directory although no durable byte was damaged "
                f"(only crashes and I/O errors happened since the last load): {error}",
            )
        self.refusals += 1


class CheckedStorage:
    """A `Storage` that forwards every call to `inner` (the real storage) and to the
    oracle's shadow, and checks `load()` (see the module docstring).

    Once abandoned (`abandon()`, by a crash of the data directory) or closed, every call
    raises `StorageClosed`: the node's incarnation that held it is gone.

    With `check_startable`, every write must also leave a state the node could start
    from (`UnstartableOrder`): the storage accepts writes in any order, and the node must
    choose a safe one (the simulator's nodes are held to it).
    """

    def __init__(
        self, inner: Storage, oracle: DurabilityOracle, *, check_startable: bool = False
    ) -> None:
        self._inner = inner
        self._oracle = oracle
        self._check_startable = check_startable
        self._failed = False  # the inner storage failed; it refuses every later call
        self._gone: str | None = None  # why the storage is no longer usable

    # -- Storage protocol ------------------------------------------------------------

    def load(self) -> DurableState:
        self._check_usable()
        try:
            state = self._inner.load()
        except StorageCorrupted as e:
            self._oracle.refused(e)
            raise
        self._oracle.recovered(state)
        return state

    def append(self, entries: Sequence[Entry]) -> None:
        self._write(lambda s: s.append(entries))

    def set_hard_state(self, hard_state: HardState) -> None:
        self._write(lambda s: s.set_hard_state(hard_state))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._write(lambda s: s.save_snapshot(snapshot))

    def stage_snapshot(self, snapshot: Snapshot) -> None:
        """Forwarded to the real storage only: it changes nothing durable (the shadow
        learns of the snapshot from `save_snapshot`)."""
        self._check_usable()
        try:
            self._inner.stage_snapshot(snapshot)
        except (StorageFailed, SimulatedCrash):
            self._failed = True
            raise

    def sync(self) -> None:
        self._check_usable()
        try:
            self._inner.sync()
        except (StorageFailed, SimulatedCrash):
            self._failed = True  # nothing became durable for sure: the shadow keeps pending
            raise
        self._oracle.shadow.sync()

    def close(self) -> None:
        """Close the real storage. Writes not synced stay in doubt: the real storage
        drops its buffer, but bytes it already wrote may be on the disk."""
        if self._gone is None:
            self._gone = "closed"
            self._inner.close()

    # -- harness -----------------------------------------------------------------------

    def abandon(self) -> None:
        """The power went: the real storage is dropped without a call (its directory's
        crash releases the lock); every later call on this object is refused."""
        self._gone = "abandoned by a crash of its data directory"

    # -- internals -------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._gone is not None:
            raise StorageClosed(f"storage on {self._oracle.where} is {self._gone}")

    def _write(self, call: Callable[[Storage], None]) -> None:
        self._check_usable()
        first_failure = not self._failed
        try:
            call(self._inner)
        except (StorageFailed, SimulatedCrash):
            # A sync the storage started by itself failed after buffering this call's
            # writes: they are in doubt like any pending write. A call on a storage that
            # had already failed buffered nothing.
            self._failed = True
            if first_failure:
                self._shadow_write(call)
            raise
        self._shadow_write(call)

    def _shadow_write(self, call: Callable[[Storage], None]) -> None:
        shadow = self._oracle.shadow
        try:
            call(shadow)
        except Exception as e:  # the shadow applies the same rules: this is a bug
            raise DurabilityCheckFailed(
                self._oracle.where,
                f"the storage accepted a call that the shadow refused ({type(e).__name__}: "
                f"{e}): the two storages disagree on the contract",
            ) from e
        if self._check_startable:
            current = shadow.current
            assert current is not None
            _check_startable(self._oracle.where, current)


def _check_startable(where: str, state: LogState) -> None:
    """Every prefix of a node's writes is a state a crash may leave, so each must be one
    the node can start from (what `RaftCore` checks at start): the commit index within
    the log, and no entry of a term above the hard state's. Checked after every write, so
    an unsafe order (the new commit index before the entries it covers; entries of a new
    term before the term) is found on any seed that writes such a batch, not only when a
    power cut lands between the two writes."""
    hs, last = state.hard_state, state.last_index
    if hs.commit > last:
        raise UnstartableOrder(
            where,
            f"a crash now would leave commit index {hs.commit} above the last entry {last}: "
            "the commit index was written before the entries it covers",
        )
    last_term = state.last_term() or 0
    if last_term > hs.term:
        raise UnstartableOrder(
            where,
            f"a crash now would leave entries of term {last_term} under a hard state of "
            f"term {hs.term}: the entries were written before their term",
        )


def _index_of(state: DurableState, outcomes: Iterator[DurableState]) -> int | None:
    for kept, outcome in enumerate(outcomes):
        if _same(outcome, state):
            return kept
    return None


def _same(a: DurableState, b: DurableState) -> bool:
    """Exact equality (hard state, snapshot metadata and data, every entry), cheapest
    parts first."""
    return (
        a.hard_state == b.hard_state
        and len(a.entries) == len(b.entries)
        and a.snapshot == b.snapshot
        and a.entries == b.entries
    )


# -- messages ---------------------------------------------------------------------------


def explain(synced: DurableState, recovered: DurableState, pending: int) -> str:
    """What differs between the synced state and a recovered one, in words."""
    parts = [
        part
        for part in (
            _hard_state_difference(synced.hard_state, recovered.hard_state),
            _snapshot_difference(synced.snapshot, recovered.snapshot),
            _entries_difference(synced.entries, recovered.entries),
        )
        if part
    ]
    what = "; ".join(parts) or "the same state, yet no allowed outcome"
    doubt = (
        f"{pending} writes were pending at the stop (any prefix of them may survive), "
        "and the recovered state is none of those outcomes"
        if pending
        else "no write was pending at the stop"
    )
    return f"recovery lost or changed synced state: {what} ({doubt})"


def _vote(hard_state: HardState) -> str:
    if hard_state.vote:
        return f"vote for {hard_state.vote} in term {hard_state.term}"
    return f"term {hard_state.term} with no vote"


def _hard_state_difference(synced: HardState, recovered: HardState) -> str | None:
    parts = []
    if (synced.term, synced.vote) != (recovered.term, recovered.vote):
        parts.append(f"synced {_vote(synced)}, recovered {_vote(recovered)}")
    if synced.commit != recovered.commit:
        parts.append(f"synced commit index {synced.commit}, recovered {recovered.commit}")
    return "; ".join(parts) or None


def _snapshot_name(snapshot: Snapshot | None) -> str:
    if snapshot is None:
        return "no snapshot"
    return f"snapshot at index {snapshot.meta.index} (term {snapshot.meta.term})"


def _snapshot_difference(synced: Snapshot | None, recovered: Snapshot | None) -> str | None:
    if synced == recovered:
        return None
    if synced is None or recovered is None or synced.meta != recovered.meta:
        return f"synced {_snapshot_name(synced)}, recovered {_snapshot_name(recovered)}"
    return (
        f"{_snapshot_name(synced)}: synced {len(synced.data)} bytes of state, recovered "
        f"{len(recovered.data)} different bytes"
    )


def _upto(entries: Sequence[Entry]) -> str:
    if not entries:
        return "none"
    return f"up to {entries[-1].index} (term {entries[-1].term})"


def _entries_difference(synced: Sequence[Entry], recovered: Sequence[Entry]) -> str | None:
    if tuple(synced) == tuple(recovered):
        return None
    common = 0
    for a, b in zip(synced, recovered, strict=False):
        if a != b:
            break
        common += 1
    if common == len(recovered) or common == len(synced):
        return f"synced entries {_upto(synced)}, recovered {_upto(recovered)}"
    a, b = synced[common], recovered[common]
    return (
        f"entry {a.index}: synced term {a.term} with {len(a.data)} bytes, recovered "
        f"index {b.index} term {b.term} with {len(b.data)} bytes"
    )


if TYPE_CHECKING:  # a static check that CheckedStorage is a Storage

    def _is_a_storage(storage: CheckedStorage) -> Storage:
        return storage
