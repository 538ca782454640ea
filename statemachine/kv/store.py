"""The multi-version key index behind the configuration database.

Every key keeps the tuple of its versions in revision order (`Version`, a tombstone
when deleted; a write replaces the tuple, so a snapshot copies the store by reference,
`statemachine.kv.snapshot.KvCopy`, without allocating an object per key), and a sorted
index of keys answers ranges. A change log records
(revision, key) of every change at or after the compact revision, in order, which
both serves changes queries and tells compaction which keys to trim, so that no
operation scans the whole store.

The store only offers primitives; `statemachine.kv.txn` checks a request completely
before calling any writing primitive, which is what makes requests atomic.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import NamedTuple

from statemachine.kv.keys import KeyRange
from statemachine.kv.sortedkeys import SortedKeys


class Version(NamedTuple):
    mod_revision: int
    create_revision: int  # 0 for a tombstone
    version: int  # 0 for a tombstone
    value: bytes | None  # None: the key was deleted at mod_revision


def _mod(version: Version) -> int:
    return version.mod_revision


def version_bytes(key: bytes, version: Version) -> int:
    """What one retained version costs against `KvConfig.max_store_bytes`."""
    return len(key) + (len(version.value) if version.value is not None else 0)


class ChangeLog:
    """(revision, key) of every change from the compact revision on, ordered by both.

    Compaction drops a prefix; the dropped slots are reclaimed in bulk once they are
    half the list, so dropping costs amortised O(1) per entry.
    """

    __slots__ = ("revs", "keys", "start")

    def __init__(self) -> None:
        self.revs: list[int] = []
        self.keys: list[bytes] = []
        self.start = 0  # entries before this index are dropped

    def __len__(self) -> int:
        return len(self.revs)

    def append(self, revision: int, key: bytes) -> None:
        self.revs.append(revision)
        self.keys.append(key)

    def sort_from(self, position: int) -> None:
        """Order the keys of the entries from `position` on (all of one revision)."""
        self.keys[position:] = sorted(self.keys[position:])

    def first_at(self, revision: int) -> int:
        """Position of the first entry with revision >= `revision`."""
        return bisect_left(self.revs, revision, self.start)

    def drop_before(self, revision: int) -> list[bytes]:
        """Forget entries below `revision`; return their keys."""
        end = self.first_at(revision)
        dropped = self.keys[self.start : end]
        self.start = end
        if self.start > 1024 and self.start * 2 > len(self.revs):
            del self.revs[: self.start]
            del self.keys[: self.start]
            self.start = 0
        return dropped


class Store:
    """Keys, their versions, the current and compact revisions, and the change log."""

    def __init__(self) -> None:
        self.revision = 1  # like etcd: an empty store is at revision 1
        self.compact_revision = 0  # 0: never compacted
        self.stored_bytes = 0  # keys and values of every retained version
        self.index = SortedKeys()  # keys with at least one retained version
        self.history: dict[bytes, tuple[Version, ...]] = {}
        self.log = ChangeLog()

    # -- reads ----------------------------------------------------------------------

    def latest(self, key: bytes) -> Version | None:
        """The key's newest version, including writes of a request in progress; None if
        it does not exist."""
        versions = self.history.get(key)
        if versions is None:
            return None
        last = versions[-1]
        return last if last.value is not None else None

    def at(self, key: bytes, revision: int) -> Version | None:
        """The key's version at `revision` (not compacted); None if it did not exist."""
        versions = self.history.get(key)
        if versions is None:
            return None
        last = versions[-1]
        if last.mod_revision > revision:
            i = bisect_right(versions, revision, key=_mod) - 1
            if i < 0:
                return None
            last = versions[i]
        return last if last.value is not None else None

    def keys(self, keys: KeyRange) -> Iterator[bytes]:
        """Indexed keys in range, ascending (some may be deleted: check their versions)."""
        if keys.single:
            if keys.low in self.history:
                yield keys.low
            return
        yield from self.index.irange(keys.low, keys.high)

    def live(self, keys: KeyRange, revision: int = 0) -> Iterator[tuple[bytes, Version]]:
        """Existing keys in range with their version at `revision` (0: newest)."""
        for key in self.keys(keys):
            found = self.latest(key) if revision == 0 else self.at(key, revision)
            if found is not None:
                yield key, found

    def change_at(self, key: bytes, revision: int) -> tuple[Version, Version | None]:
        """The key's version written at `revision`, and the live version it replaced."""
        versions = self.history[key]
        i = len(versions) - 1
        if versions[i].mod_revision != revision:
            i = bisect_left(versions, revision, key=_mod)
        assert versions[i].mod_revision == revision, "change log and history disagree"
        prev = versions[i - 1] if i > 0 else None
        return versions[i], prev if prev is not None and prev.value is not None else None

    # -- writes (only after the request was checked whole) -----------------------------

    def put(self, key: bytes, value: bytes, revision: int) -> Version | None:
        """Write `key` at `revision`; return the live version it replaced."""
        versions = self.history.get(key)
        if versions is None:
            versions = ()
            self.index.add(key)
        prev = versions[-1] if versions and versions[-1].value is not None else None
        if prev is None:
            new = Version(revision, revision, 1, value)
        else:
            assert prev.mod_revision < revision, "a key changes at most once per revision"
            new = Version(revision, prev.create_revision, prev.version + 1, value)
        self.history[key] = (*versions, new)
        self.log.append(revision, key)
        self.stored_bytes += len(key) + len(value)
        return prev

    def delete(self, key: bytes, revision: int) -> Version:
        """Delete the existing `key` at `revision`; return the version deleted."""
        versions = self.history[key]
        prev = versions[-1]
        assert prev.value is not None and prev.mod_revision < revision, "delete of a live key"
        self.history[key] = (*versions, Version(revision, 0, 0, None))
        self.log.append(revision, key)
        self.stored_bytes += len(key)
        return prev

    def commit(self, revision: int, log_mark: int) -> None:
        """Publish the writes made at `revision` since the log was `log_mark` long."""
        changes = len(self.log) - log_mark
        assert revision == self.revision + 1 and changes > 0
        if changes > 1:  # (one change is in order already)
            self.log.sort_from(log_mark)
        self.revision = revision

    # -- compaction -------------------------------------------------------------------

    def compact(self, revision: int) -> None:
        """Forget what only reads below `revision` could see.

        Each key keeps every version from `revision` on, plus the newest one before it
        unless that is a tombstone: enough to read at any revision >= `revision` and to
        give the previous pair of any change from `revision` on. Only keys changed
        since the last compaction can have anything to drop.
        """
        assert self.compact_revision < revision <= self.revision
        for key in dict.fromkeys(self.log.drop_before(revision)):  # dedup, in log order
            self._trim(key, revision)
        self.compact_revision = revision

    def _trim(self, key: bytes, revision: int) -> None:
        versions = self.history[key]
        newest_before = bisect_left(versions, revision, key=_mod) - 1
        if newest_before < 0:
            return
        keep_from = newest_before + (versions[newest_before].value is None)
        if keep_from == 0:
            return
        self.stored_bytes -= sum(version_bytes(key, v) for v in versions[:keep_from])
        if keep_from < len(versions):
            self.history[key] = versions[keep_from:]
        else:
            del self.history[key]
            self.index.remove(key)
