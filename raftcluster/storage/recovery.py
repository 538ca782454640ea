"""Reading a data directory back: replay the segments, cut a torn tail, refuse corruption.

What a crash can leave, and what is assumed
-------------------------------------------
The writer (wal.py) only ever appends to a segment, one `write` of whole records then
one fsync per `sync()`, and a segment is complete and fsynced before the next one is
created. We assume the file system keeps appends *prefix-only* across a power cut: a
file then holds every byte up to its last completed fsync, followed by a prefix
(possibly empty) of the bytes appended since, and nothing else. Its size covers only
bytes that reached the disk, and those bytes are the ones written. Ordered journaling
gives this: ext4 in its default `data=ordered` mode (and `data=journal`) writes a
file's new data blocks before it commits the size that exposes them, XFS updates the
on-disk size only once the data is written, and btrfs and ZFS copy on write. A sector
is written whole or not at all, and rewriting the partly filled last sector of a file
rewrites its old bytes unchanged.

So a crash damages nothing but the end of the last segment, and the damage is always a
record *cut short*: a prefix of a record that was written. Synced records are whole.

The rule, decided at the bad record, without scanning
-----------------------------------------------------
Every record has a 16-byte header with its own CRC (magic, type, length) and a CRC of
its payload (records.py). Replay stops at the first bad record, at `offset`. In the last
segment it is a **torn tail**, cut off (and logged), only if it can be a prefix of a
record:
- fewer than a header's 16 bytes remain (the header itself was cut), or
- the header is intact (its CRC checks) and the record it declares runs past the end of
  the file (the payload was cut).
Anything else is **corruption**: `StorageCorrupted(path, offset, reason)`, nothing
changed. A header whose CRC fails with all 16 bytes present cannot be a cut (a cut
leaves fewer bytes), nor can a record whose bytes are all there but whose payload fails
its CRC (a cut leaves fewer than declared). A bad record in a segment that is not the
last is always corruption: that segment was complete and fsynced before the next one
existed.

Why no synced record can be mistaken for a torn tail: it is whole, so it has its full
header and all of its payload; damage to it (a flipped bit, a sector read back as
zeros) makes one of its two CRCs fail (CRC-32 catches every error within 32 bits; a
longer burst, such as a whole zeroed sector, slips through with probability 2**-32), and
its length is believed only when the header's CRC checks, so a damaged length cannot
make it look cut short. In format version 1 a single CRC covered header and payload: a
flipped bit in a length made the record appear to run past the end of the file, exactly
like a cut, and recovery silently dropped it and every synced record after it.

The decision needs no search for valid records after the bad one (version 1 did that
to tell a tail from damage in the middle; it could be fooled by entry data containing
record bytes, and cost a scan of the rest of the file).

What breaks the assumption, and what happens then:
- a file system that can expose zeros or stale bytes inside a file's unsynced tail
  after a crash (ext4 `data=writeback`, some network file systems), or persist later
  pages of an append before earlier ones: those bytes fail a CRC with the bytes present,
  so recovery refuses the directory. A false alarm, never a silent loss; the unsynced
  tail was never acknowledged, but the node stops until an operator acts;
- a disk that acknowledges a flush it did not do and loses the synced end of a file:
  the file is then a shorter run of whole records, which nothing in the directory can
  tell from a crash before those syncs. The Raft-level checks are what see it.

The other rules (docs/storage.md, "Recovery: torn tails and corruption"):
- segments are replayed in `seq` order; their numbers must have no gap, and each one's
  header must agree with the state the segments before it left;
- a last segment that is empty, or torn inside its first record, is removed;
- a record that contradicts the log before it, a missing segment or a missing or
  damaged snapshot is corruption;
- a segment in another format version raises `StorageFormatUnsupported`;
- once every check has passed and the repairs are done, every surviving segment and
  the directory are fsynced: what the node is about to act on must be durable, even if
  it was read from the page cache after a failed fsync.
"""

from __future__ import annotations

import logging

import attrs

from raftcluster.raft.types import Snapshot
from raftcluster.storage.errors import StorageCorrupted, StorageFormatUnsupported
from raftcluster.storage.fs import LOCK_NAME, Directory
from raftcluster.storage.layout import (
    TMP_SUFFIX,
    SegmentName,
    is_snapshot_name,
    parse_segment_name,
    snapshot_name,
)
from raftcluster.storage.logstate import LogState, ReplayError
from raftcluster.storage.records import (
    SEGMENT_VERSION,
    BadFrame,
    Frame,
    PayloadError,
    RecordType,
    SegmentHeader,
    VersionError,
    legacy_segment_version,
    parse_entry,
    parse_hard_state,
    parse_segment,
    parse_snapshot,
    read_frame,
)
from raftcluster.storage.snapfile import read_snapshot

log = logging.getLogger("raftcluster.storage")


@attrs.define
class Recovered:
    """What a directory holds once recovered, and where the writer goes on."""

    state: LogState  # with entries
    snapshot: Snapshot | None
    snapshot_crc: int
    segments: list[SegmentName]  # surviving segments, oldest first
    last_segment_bytes: int  # size of the last segment after any cut


@attrs.define
class _Replay:
    state: LogState | None = None
    snapshot_crc: int = 0
    torn: _TornTail | None = None  # found in the last segment, cut once all checks pass


@attrs.frozen
class _TornTail:
    name: str
    offset: int  # where the torn record starts; 0: the segment goes
    cut_bytes: int
    reason: str


def recover(directory: Directory, max_record_bytes: int, max_snapshot_bytes: int) -> Recovered:
    """Recover the directory (see module docstring). Repairs only torn tails and litter,
    and only once every check has passed: a refused directory is left as it was."""
    names = directory.names()
    litter = [n for n in names if n.endswith(TMP_SUFFIX)]
    segments = sorted(
        (s for s in map(parse_segment_name, names) if s is not None), key=lambda s: s.seq
    )
    _warn_unknown(directory, names)
    _check_sequence(directory, segments)
    replay = _Replay()
    sizes = [
        _replay_one(directory, segment, replay, segment is segments[-1], max_record_bytes)
        for segment in segments
    ]
    dropped = None
    if sizes and sizes[-1] == 0:  # the last segment was empty or torn in its first record
        dropped = segments.pop().name
        sizes.pop()
    state = replay.state if replay.state is not None else LogState()
    _check_complete(directory, segments, state)
    snapshot = None
    if state.snapshot_index:
        snapshot = read_snapshot(
            directory,
            state.snapshot_index,
            state.snapshot_term,
            replay.snapshot_crc,
            max_snapshot_bytes,
        )
    # Every check passed: repair.
    for name in litter:
        log.info(
            "storage: removing %s/%s, a file whose write was interrupted", directory.path, name
        )
        directory.remove(name)
    removed = bool(litter)
    torn = replay.torn
    if torn is not None:
        log.warning(
            "storage: torn tail in %s/%s: cutting %d bytes at byte %d (%s: a write "
            "interrupted by a crash)",
            directory.path,
            torn.name,
            torn.cut_bytes,
            torn.offset,
            torn.reason,
        )
        if torn.offset > 0:
            directory.truncate(torn.name, torn.offset)
    if dropped is not None:
        directory.remove(dropped)
        removed = True
    removed |= _remove_stale_snapshots(directory, state)
    # The node will act on what was read: make it durable first. After a failed fsync, a
    # restart without a power cut reads bytes the kernel still caches but never wrote
    # (and may have given up on); acting on them, then losing them to a later power cut,
    # would forget a vote or an acknowledged entry. (PostgreSQL fsyncs its data
    # directory at startup after a crash for the same reason.) Clean files cost little.
    for segment in segments:
        _sync_file(directory, segment.name)
    if removed or segments:
        directory.sync()
    return Recovered(state, snapshot, replay.snapshot_crc, segments, sizes[-1] if sizes else 0)


def _replay_one(
    directory: Directory,
    segment: SegmentName,
    replay: _Replay,
    is_last: bool,
    max_record_bytes: int,
) -> int:
    """Replay one segment; return its size once a torn tail is cut (0: the segment is
    empty or torn in its first record, and goes). Changes nothing on the disk."""
    where = f"{directory.path}/{segment.name}"
    data = directory.read(segment.name)
    offset = 0
    bad = None
    while offset < len(data):
        found = read_frame(data, offset, max_record_bytes)
        if isinstance(found, BadFrame):
            bad = found
            break
        try:
            _apply(found, offset, segment, replay)
        except VersionError as e:
            raise StorageFormatUnsupported(where, e.version, SEGMENT_VERSION) from None
        except (ReplayError, PayloadError) as e:
            raise StorageCorrupted(where, offset, str(e)) from None
        offset = found.end
    if bad is None:
        if data:
            return offset
        if not is_last:
            raise StorageCorrupted(where, 0, "empty file in a segment that is not the last")
        log.info("storage: %s is empty, created just before a crash: removing it", where)
        return 0
    if offset == 0 and not bad.torn:
        legacy = legacy_segment_version(data)
        if legacy is not None:
            raise StorageFormatUnsupported(where, legacy, SEGMENT_VERSION)
    if not is_last:
        raise StorageCorrupted(
            where,
            offset,
            f"{bad.reason}, in a segment that is not the last (it was complete and "
            "fsynced before the next one was created)",
        )
    if not bad.torn:
        raise StorageCorrupted(
            where,
            offset,
            f"{bad.reason}: damage, not a write cut short by a crash (only a record cut "
            "short at the end of the last segment is a torn tail)",
        )
    replay.torn = _TornTail(segment.name, offset, len(data) - offset, bad.reason)
    return offset


def _apply(frame: Frame, offset: int, segment: SegmentName, replay: _Replay) -> None:
    if offset == 0:
        if frame.kind != RecordType.SEGMENT:
            raise ReplayError("the first record is not a segment header")
        _start_segment(parse_segment(frame.payload), segment, replay)
        return
    state = replay.state
    assert state is not None, "a segment header came first"
    if frame.kind == RecordType.ENTRY:
        state.apply_entry(parse_entry(frame.payload))
    elif frame.kind == RecordType.HARD_STATE:
        state.apply_hard_state(parse_hard_state(frame.payload))
    elif frame.kind == RecordType.SNAPSHOT:
        marker = parse_snapshot(frame.payload)
        state.apply_snapshot(marker.index, marker.term, marker.retained_last)
        replay.snapshot_crc = marker.file_crc
    else:
        raise ReplayError(f"a {frame.kind.name} record in the middle of a segment")


def _start_segment(header: SegmentHeader, segment: SegmentName, replay: _Replay) -> None:
    if (header.seq, header.first_index) != (segment.seq, segment.first_index):
        raise ReplayError(
            f"header says segment {header.seq} from index {header.first_index}, "
            "the file name says otherwise"
        )
    snap = header.snapshot
    state = replay.state
    if state is None:  # the oldest surviving segment: the log starts from its header
        replay.state = LogState.starting_at(
            keep_entries=True,
            hard_state=header.hard_state,
            snapshot=(snap.index, snap.term),
            last=header.first_index - 1,
        )
        replay.snapshot_crc = snap.file_crc
        return
    expected = (state.last_index + 1, state.snapshot_index, state.snapshot_term, state.hard_state)
    found = (header.first_index, snap.index, snap.term, header.hard_state)
    if found != expected or snap.file_crc != replay.snapshot_crc:
        raise ReplayError(
            f"segment header {found} does not match the log before it {expected}: "
            "a segment is missing or was replaced"
        )


def _sync_file(directory: Directory, name: str) -> None:
    file = directory.append(name)
    try:
        file.sync()
    finally:
        file.close()


def _check_sequence(directory: Directory, segments: list[SegmentName]) -> None:
    for before, after in zip(segments, segments[1:], strict=False):
        if after.seq != before.seq + 1:
            raise StorageCorrupted(
                f"{directory.path}/{after.name}",
                0,
                f"segment {before.seq + 1} is missing between {before.name} and {after.name}",
            )


def _check_complete(directory: Directory, segments: list[SegmentName], state: LogState) -> None:
    missing = state.missing()
    if missing is not None:
        raise StorageCorrupted(
            f"{directory.path}/{segments[0].name}",
            0,
            f"entries {missing[0]}..{missing[1]} are in no segment and under no snapshot: "
            "an older segment was deleted",
        )


def _remove_stale_snapshots(directory: Directory, state: LogState) -> bool:
    """Snapshots other than the one the log refers to: older ones (compaction was cut
    short) and newer ones whose marker never became durable."""
    current = snapshot_name(state.snapshot_index, state.snapshot_term)
    stale = [n for n in directory.names() if is_snapshot_name(n) and n != current]
    for name in stale:
        log.info(
            "storage: removing %s/%s, a snapshot the log does not refer to", directory.path, name
        )
        directory.remove(name)
    return bool(stale)


def _warn_unknown(directory: Directory, names: list[str]) -> None:
    for name in names:
        known = (
            name == LOCK_NAME
            or name.endswith(TMP_SUFFIX)
            or is_snapshot_name(name)
            or parse_segment_name(name) is not None
        )
        if not known:
            log.warning("storage: ignoring unknown file %s/%s", directory.path, name)
