"""A sorted set of byte keys with O(log n + sqrt n) insertion and removal.

A plain sorted list pays a memmove of the whole tail on each insertion, which is
O(n) per new key; here keys live in chunks of at most `2 * LOAD` (a sorted list of
sorted lists, indexed by each chunk's largest key), so a change moves one chunk.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from itertools import chain

LOAD = 512


class SortedKeys:
    __slots__ = ("_chunks", "_maxes", "_len")

    def __init__(self) -> None:
        self._chunks: list[list[bytes]] = []
        self._maxes: list[bytes] = []  # _maxes[i] == _chunks[i][-1]
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, key: bytes) -> None:
        """Insert `key`, which must not be present."""
        maxes = self._maxes
        if not maxes:
            self._chunks.append([key])
            maxes.append(key)
        else:
            i = bisect_left(maxes, key)
            if i == len(maxes):  # beyond every key: append to the last chunk
                i -= 1
                self._chunks[i].append(key)
                maxes[i] = key
            else:
                chunk = self._chunks[i]
                assert chunk[bisect_left(chunk, key)] != key, "key already present"
                insort(chunk, key)
            if len(self._chunks[i]) > 2 * LOAD:
                self._split(i)
        self._len += 1

    def remove(self, key: bytes) -> None:
        """Remove `key`, which must be present."""
        i = bisect_left(self._maxes, key)
        chunk = self._chunks[i]
        j = bisect_left(chunk, key)
        assert chunk[j] == key, "key not present"
        del chunk[j]
        if not chunk:
            del self._chunks[i]
            del self._maxes[i]
        else:
            self._maxes[i] = chunk[-1]
        self._len -= 1

    def irange(self, low: bytes, high: bytes | None) -> Iterator[bytes]:
        """Keys k with low <= k < high (high None: no upper bound), ascending."""
        chunks = self._chunks
        i = bisect_left(self._maxes, low)
        if i == len(chunks):
            return
        j = bisect_left(chunks[i], low)
        while i < len(chunks):
            chunk = chunks[i]
            if high is not None and chunk[-1] >= high:
                yield from chunk[j : bisect_left(chunk, high, j)]
                return
            yield from chunk[j:] if j else chunk
            i += 1
            j = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            yield from chunk

    def as_list(self) -> list[bytes]:
        """Every key, ascending, as a new list (C-level copying: a snapshot's copy)."""
        return list(chain.from_iterable(self._chunks))

    def _split(self, i: int) -> None:
        chunk = self._chunks[i]
        half = len(chunk) // 2
        self._chunks[i : i + 1] = [chunk[:half], chunk[half:]]
        self._maxes[i : i + 1] = [chunk[half - 1], chunk[-1]]
