"""Reading a data directory back: replay the segments, cut a torn tail, refuse corruption.

The rules (docs/storage.md, "Torn tails and corruption"):
- Segments are replayed in `seq` order; their numbers must have no gap, and each one's
  header must agree with the state the segments before it left.
- In the last segment, a bad record (short, bad magic or type, bad CRC) with nothing
  valid after it is a torn tail: the interrupted last write. The file is cut there,
  and the cut is logged. A last segment cut to nothing is removed.
- A bad record with a valid record after it, a bad record in any other segment, a
  record that contradicts the log before it, a missing segment or a missing snapshot
  is corruption: `StorageCorrupted` with the file and byte offset; nothing is changed.
"""

from __future__ import annotations

import logging

import attrs

from raftcluster.raft.types import Snapshot
from raftcluster.storage.errors import StorageCorrupted
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
    Frame,
    PayloadError,
    RecordType,
    SegmentHeader,
    declared_end,
    find_frame,
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


def recover(directory: Directory, max_record_bytes: int, max_snapshot_bytes: int) -> Recovered:
    """Recover the directory (see module docstring). Repairs only torn tails and litter."""
    names = directory.names()
    litter = [n for n in names if n.endswith(TMP_SUFFIX)]
    for name in litter:
        log.info(
            "storage: removing %s/%s, a file whose write was interrupted", directory.path, name
        )
        directory.remove(name)
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
    removed = bool(litter)
    if sizes and sizes[-1] == 0:  # the last segment was torn inside its header
        directory.remove(segments.pop().name)
        sizes.pop()
        removed = True
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
    removed |= _remove_stale_snapshots(directory, state)
    if removed:
        directory.sync()
    return Recovered(state, snapshot, replay.snapshot_crc, segments, sizes[-1] if sizes else 0)


def _replay_one(
    directory: Directory,
    segment: SegmentName,
    replay: _Replay,
    is_last: bool,
    max_record_bytes: int,
) -> int:
    where = f"{directory.path}/{segment.name}"
    data = directory.read(segment.name)
    offset = 0
    while True:
        frame = read_frame(data, offset, max_record_bytes)
        if frame is None:
            break
        try:
            _apply(frame, offset, segment, replay)
        except (ReplayError, PayloadError) as e:
            raise StorageCorrupted(where, offset, str(e)) from None
        offset = frame.end
    if offset == len(data) and offset > 0:
        return offset
    if not is_last:
        reason = "bad record" if data else "empty file"
        raise StorageCorrupted(where, offset, f"{reason} in a segment that is not the last")
    if not data:
        log.info("storage: removing %s: empty, created just before a crash", where)
        return 0
    _check_torn(where, data, offset, max_record_bytes)
    log.warning(
        "storage: torn tail in %s: cutting %d bytes at byte %d (a write interrupted by a crash)",
        where,
        len(data) - offset,
        offset,
    )
    if offset > 0:  # a segment torn inside its header is removed by the caller
        directory.truncate(segment.name, offset)
    return offset


def _check_torn(where: str, data: bytes, offset: int, max_record_bytes: int) -> None:
    """Raise unless the bad bytes at `offset` can be the interrupted last write."""
    end = declared_end(data, offset, max_record_bytes)
    if end is not None and end >= len(data):
        return  # a plausible header whose record runs to or past the end: cut short
    # Look for a valid record after the bad one (after its declared extent when its header
    # is plausible, so that entry data that looks like a record cannot fool the check).
    start = end if end is not None else offset + 1
    found = find_frame(data, start, max_record_bytes)
    if found is not None:
        raise StorageCorrupted(
            where, offset, f"bad record followed by a valid record at byte {found}"
        )


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
