"""The in-memory Raft log: entries since the last snapshot, and how much of it is durable.

Indexes run from `snapshot_index + 1` to `last_index`. `committed` only grows.
Entries from `unstable_from` on have not been confirmed durable yet: the core hands them
to the shell in the next `Ready` and moves `unstable_from` when the shell advances.
"""

from __future__ import annotations

from collections.abc import Sequence

from raftcluster.raft.types import Entry

ENTRY_OVERHEAD_BYTES = 16  # what an entry costs beyond its payload, for size limits


def entry_size(entry: Entry) -> int:
    return len(entry.data) + ENTRY_OVERHEAD_BYTES


class RaftLog:
    __slots__ = ("snapshot_index", "snapshot_term", "committed", "unstable_from", "_entries")

    def __init__(
        self, snapshot_index: int, snapshot_term: int, entries: Sequence[Entry], committed: int
    ) -> None:
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        self._entries: list[Entry] = list(entries)
        self.committed = max(committed, snapshot_index)
        self.unstable_from = self.last_index() + 1  # what we were given is durable
        self._check()

    def _check(self) -> None:
        expected, floor = self.snapshot_index + 1, self.snapshot_term
        for e in self._entries:
            assert e.index == expected and e.term >= floor, f"log not contiguous at {e}"
            expected, floor = expected + 1, e.term
        assert self.committed <= self.last_index(), "commit beyond the log"

    # -- reading ------------------------------------------------------------------------

    def first_index(self) -> int:
        return self.snapshot_index + 1

    def last_index(self) -> int:
        return self.snapshot_index + len(self._entries)

    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.snapshot_term

    def term(self, index: int) -> int | None:
        """The term at `index`, or None when it is compacted away or beyond the log."""
        offset = index - self.snapshot_index  # (last_index inlined: asked very often)
        if offset == 0:
            return self.snapshot_term
        if 0 < offset <= len(self._entries):
            return self._entries[offset - 1].term
        return None

    def matches(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def entry(self, index: int) -> Entry:
        assert self.snapshot_index < index <= self.last_index(), f"no entry {index}"
        return self._entries[index - self.snapshot_index - 1]

    def slice(
        self, low: int, high: int, max_bytes: int, max_count: int | None = None
    ) -> list[Entry]:
        """Entries [low, high), at most `max_bytes` (but always the first one) and `max_count`."""
        assert self.snapshot_index < low, f"entry {low} is compacted"
        high = min(high, self.last_index() + 1)
        if max_count is not None:
            high = min(high, low + max_count)
        out: list[Entry] = []
        total = 0
        for i in range(low - self.snapshot_index - 1, high - self.snapshot_index - 1):
            e = self._entries[i]
            total += entry_size(e)
            if out and total > max_bytes:
                break
            out.append(e)
        return out

    def unstable_entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries[self.unstable_from - self.snapshot_index - 1 :])

    def persisted_index(self) -> int:
        return self.unstable_from - 1

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft's election restriction: is a candidate's log at least as recent as ours?"""
        return (last_term, last_index) >= (self.last_term(), self.last_index())

    def conflict_hint(self, index: int, term: int) -> tuple[int, int] | None:
        """The largest (i, term(i)) with i <= index whose term is at most `term`, or None
        when no index this log still holds qualifies.

        Entries between it and `index` have larger terms, so none can match a log whose
        term at `index` is `term` (terms only grow along a log).
        """
        i = min(index, self.last_index())
        if i < self.snapshot_index:
            return None
        while i > self.snapshot_index:
            t = self.entry(i).term
            if t <= term:
                return i, t
            i -= 1
        return (i, self.snapshot_term) if self.snapshot_term <= term else None

    # -- changing -----------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Add entries; any of ours from `entries[0].index` on are replaced (a conflict).

        The caller has found a real conflict (or none): a matching entry is never replaced
        because callers pass only the part after the last matching one.
        """
        if not entries:
            return
        first = entries[0].index
        assert self.snapshot_index < first <= self.last_index() + 1, f"gap before {first}"
        assert first > self.committed, f"truncating committed entry {first} <= {self.committed}"
        prev_term = self.term(first - 1)
        assert prev_term is not None and entries[0].term >= prev_term, "terms go backwards"
        del self._entries[first - self.snapshot_index - 1 :]
        self._entries.extend(entries)
        self.unstable_from = min(self.unstable_from, first)

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Position in `entries` of the first one we lack or hold with another term."""
        for pos, e in enumerate(entries):
            if e.index <= self.snapshot_index:
                continue  # covered by our snapshot: committed, so it matches
            if self.term(e.index) != e.term:
                return pos
        return len(entries)

    def commit_to(self, index: int) -> bool:
        """Raise the commit index (never lowers it). Returns whether it moved."""
        if index <= self.committed:
            return False
        assert index <= self.last_index(), f"commit {index} beyond last {self.last_index()}"
        self.committed = index
        return True

    def stable_to(self, written: Sequence[Entry]) -> None:
        """The shell made `written` durable. The newest of them still in the log (a conflict
        may have replaced some meanwhile) and everything before it are now stable: an entry
        with the same index and term is the same entry, with the same log before it."""
        for e in reversed(written):
            if self.matches(e.index, e.term):
                if e.index >= self.unstable_from:
                    self.unstable_from = e.index + 1
                return

    def restore(self, snapshot_index: int, snapshot_term: int) -> None:
        """Replace the whole log by a snapshot (a follower installing the leader's)."""
        assert snapshot_index > self.committed, "restoring a snapshot we already cover"
        self._entries.clear()
        self.snapshot_index, self.snapshot_term = snapshot_index, snapshot_term
        self.committed = snapshot_index
        self.unstable_from = snapshot_index + 1

    def compact(self, index: int) -> None:
        """Drop entries up to `index` (already in a snapshot the shell has)."""
        assert self.snapshot_index < index <= self.committed, f"cannot compact to {index}"
        assert index < self.unstable_from, "compacting entries not yet durable"
        term = self.entry(index).term
        del self._entries[: index - self.snapshot_index]
        self.snapshot_index, self.snapshot_term = index, term
