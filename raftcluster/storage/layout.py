"""Names of the files in a data directory.

    wal-<seq, 12 digits>-<first index, 20 digits>.log   a WAL segment
    snap-<index, 20 digits>-<term, 20 digits>.snap      a snapshot
    <name>.tmp                                          a file being written (never read)
    LOCK                                                the lock (holds the owner's pid)

Segments are ordered by `seq`. The first index (the index the next entry would have
when the segment was started) is in the name for people reading a directory listing
and is checked against the segment's header; it is not monotonic in `seq`, because a
conflict may overwrite entries below the start of the current segment.
"""

from __future__ import annotations

import re

import attrs

TMP_SUFFIX = ".tmp"
_SEGMENT = re.compile(r"wal-(\d{12})-(\d{20})\.log")
_SNAPSHOT = re.compile(r"snap-(\d{20})-(\d{20})\.snap")


@attrs.frozen
class SegmentName:
    seq: int
    first_index: int

    @property
    def name(self) -> str:
        return f"wal-{self.seq:012d}-{self.first_index:020d}.log"


def parse_segment_name(name: str) -> SegmentName | None:
    match = _SEGMENT.fullmatch(name)
    return SegmentName(int(match[1]), int(match[2])) if match else None


def snapshot_name(index: int, term: int) -> str:
    return f"snap-{index:020d}-{term:020d}.snap"


def is_snapshot_name(name: str) -> bool:
    return _SNAPSHOT.fullmatch(name) is not None
