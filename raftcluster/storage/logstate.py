"""The log as a sequence of storage operations leaves it: the rules both storages share.

Every storage is a sequence of three kinds of atomic operation, applied in order:
an entry (which replaces the stored suffix from its index on), a hard state, and a
snapshot marker. `LogState` applies them. It is the single definition of what
`append`, `set_hard_state` and `save_snapshot` mean, used by the in-memory storage,
by the WAL writer (to validate calls before buffering them) and by WAL recovery (to
replay records). It is pure: no I/O.

A marker carries `retained_last`, the last index kept after the snapshot, decided
when the snapshot was saved: entries above the snapshot stay only if the log agreed
with it (same term at its index). Recording the decision makes replay independent of
entries that compaction may already have deleted.

During WAL recovery the oldest surviving segment starts after entries that were in
deleted segments: the state then knows `last_index` but holds only a suffix of the
entries (`first_known() > snapshot_index + 1`). A later marker must cover that gap
before recovery ends (`missing()`).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import attrs

from raftcluster.raft.types import NONE, Entry, HardState, SnapshotMeta
from statemachine.errors import InvalidArgument


class ReplayError(Exception):
    """A stored operation that contradicts the state before it (recovery turns it into
    `StorageCorrupted` with the file and offset)."""


@attrs.define
class LogState:
    """Hard state, snapshot position and the log above it.

    `terms` holds the term of every known entry, `entries` (when `keep_entries`) the
    entries themselves; both cover `first_known()..last_index`.
    """

    keep_entries: bool = True
    hard_state: HardState = HardState()
    snapshot_index: int = 0
    snapshot_term: int = 0
    last_index: int = 0
    terms: array[int] = attrs.field(factory=lambda: array("Q"))
    entries: list[Entry] = attrs.field(factory=list)

    @classmethod
    def starting_at(
        cls, *, keep_entries: bool, hard_state: HardState, snapshot: tuple[int, int], last: int
    ) -> LogState:
        """A state that knows no entries yet although the log runs to `last` (recovery)."""
        index, term = snapshot
        if last < index:
            raise ReplayError(f"last index {last} is below the snapshot index {index}")
        return cls(keep_entries, hard_state, index, term, last)

    # -- queries ---------------------------------------------------------------------

    def first_known(self) -> int:
        return self.last_index - len(self.terms) + 1

    def term_at(self, index: int) -> int | None:
        """The term at `index`, or None when the log does not hold it."""
        if index == self.snapshot_index:
            return self.snapshot_term
        first = self.first_known()
        if first <= index <= self.last_index:
            return self.terms[index - first]
        return None

    def last_term(self) -> int | None:
        return self.term_at(self.last_index)

    def missing(self) -> tuple[int, int] | None:
        """The range of indexes above the snapshot whose entries are unknown, if any."""
        first = self.first_known()
        if first > self.snapshot_index + 1:
            return (self.snapshot_index + 1, first - 1)
        return None

    # -- validation of calls (InvalidArgument, before anything is buffered) ------------

    def check_append(self, entries: Sequence[Entry]) -> None:
        """Refuse entries that cannot follow this log: gaps, stale or decreasing terms."""
        if not entries:
            return
        first = entries[0].index
        if not self.snapshot_index < first <= self.last_index + 1:
            raise InvalidArgument(
                "append.entries[0].index",
                f"{first} must be above the snapshot index {self.snapshot_index} and at most "
                f"{self.last_index + 1} (one past the last stored entry)",
            )
        previous = self.term_at(first - 1)
        assert previous is not None, "validated states know every entry above the snapshot"
        for i, entry in enumerate(entries):
            if entry.index != first + i:
                raise InvalidArgument(
                    f"append.entries[{i}].index", f"{entry.index}, expected {first + i}"
                )
            if entry.term < max(previous, 1):
                raise InvalidArgument(
                    f"append.entries[{i}].term",
                    f"{entry.term} is below the term before it ({previous}) or zero",
                )
            previous = entry.term

    def check_hard_state(self, hard_state: HardState) -> None:
        """Refuse a hard state that would undo a durable promise (term, vote, commit)."""
        old = self.hard_state
        if hard_state.term < old.term:
            raise InvalidArgument("hard_state.term", f"{hard_state.term} < stored {old.term}")
        same_term = hard_state.term == old.term
        if same_term and old.vote != NONE and hard_state.vote != old.vote:
            raise InvalidArgument(
                "hard_state.vote",
                f"vote for {old.vote} in term {old.term} is durable; cannot become "
                f"{hard_state.vote}",
            )
        if hard_state.commit < old.commit:
            raise InvalidArgument("hard_state.commit", f"{hard_state.commit} < stored {old.commit}")

    def check_snapshot(self, meta: SnapshotMeta) -> int:
        """Refuse a snapshot that is not newer; return the last index kept after it."""
        if meta.index <= self.snapshot_index:
            raise InvalidArgument(
                "snapshot.meta.index",
                f"{meta.index} is not above the stored snapshot's index {self.snapshot_index}",
            )
        if meta.term < max(self.snapshot_term, 1):
            raise InvalidArgument(
                "snapshot.meta.term",
                f"{meta.term} is below the stored snapshot's term {self.snapshot_term} or zero",
            )
        if meta.index < self.last_index and self.term_at(meta.index) == meta.term:
            return self.last_index
        return meta.index

    # -- application (also the replay of stored operations) ----------------------------

    def apply_entry(self, entry: Entry) -> None:
        if not self.snapshot_index < entry.index <= self.last_index + 1:
            raise ReplayError(
                f"entry {entry.index} does not follow the log (snapshot {self.snapshot_index}, "
                f"last {self.last_index})"
            )
        self._truncate_after(entry.index - 1)
        self.terms.append(entry.term)
        if self.keep_entries:
            self.entries.append(entry)
        self.last_index = entry.index

    def apply_hard_state(self, hard_state: HardState) -> None:
        self.hard_state = hard_state

    def apply_snapshot(self, index: int, term: int, retained_last: int) -> None:
        if index <= self.snapshot_index or not index <= retained_last:
            raise ReplayError(
                f"snapshot marker {index} (keeping up to {retained_last}) does not follow "
                f"the snapshot at {self.snapshot_index}"
            )
        if retained_last == index:  # the log disagreed with the snapshot, or ended before it
            self.terms = array("Q")
            self.entries = []
        else:  # the log agreed: keep what follows the snapshot
            if retained_last != self.last_index:
                raise ReplayError(
                    f"marker keeps up to {retained_last}, the log ends at {self.last_index}"
                )
            known = self.term_at(index)
            if known is not None and known != term:
                raise ReplayError(f"marker keeps entries but the term at {index} is {known}")
            drop = max(0, index + 1 - self.first_known())
            del self.terms[:drop]
            if self.keep_entries:
                del self.entries[:drop]
        self.last_index = retained_last
        self.snapshot_index, self.snapshot_term = index, term

    def _truncate_after(self, index: int) -> None:
        """Drop known entries above `index` (the log then ends at `index`)."""
        if index >= self.last_index:
            return
        keep = max(0, index - self.first_known() + 1)
        del self.terms[keep:]
        if self.keep_entries:
            del self.entries[keep:]
        self.last_index = index
