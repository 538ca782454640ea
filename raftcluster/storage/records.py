"""WAL records: the frame every record is written in, and the payload of each type.

A frame is a 12-byte header and a payload, all integers little-endian:

    offset 0   u16  magic 0x5257 ("RW")
    offset 2   u8   record type (RecordType)
    offset 3   u8   reserved, 0
    offset 4   u32  payload length in bytes
    offset 8   u32  CRC-32 (zlib.crc32, the ISO-HDLC polynomial) of bytes 0..8 and the payload
    offset 12  payload

The CRC covers the type and length, so a frame whose header was torn fails the check.
Payloads are fixed layouts of u64 integers (entry data is the raw bytes at the end);
see docs/storage.md for each.
"""

from __future__ import annotations

import enum
import struct
import zlib

import attrs

from raftcluster.raft.types import Entry, EntryKind, HardState
from statemachine.errors import InvalidArgument, LimitExceeded

MAGIC = 0x5257
HEADER = struct.Struct("<HBBII")
HEADER_BYTES = HEADER.size  # 12
_CRC = struct.Struct("<I")
SEGMENT_VERSION = 1


class RecordType(enum.IntEnum):
    SEGMENT = 1  # first record of every segment: where the log stands when it starts
    ENTRY = 2  # one log entry; replaces the stored suffix from its index on
    HARD_STATE = 3
    SNAPSHOT = 4  # a snapshot was saved: its position and the last index kept after it


_ENTRY = struct.Struct("<QQB")
_HARD_STATE = struct.Struct("<QQQ")
_SNAPSHOT = struct.Struct("<QQQI")
_SEGMENT = struct.Struct("<IQQQQIQQQ")
ENTRY_OVERHEAD_BYTES = _ENTRY.size  # term, index, kind: the bytes before an entry's data


class PayloadError(Exception):
    """A payload whose CRC is right but whose layout is not (a bug or a newer format)."""


def frame(kind: RecordType, payload: bytes) -> bytes:
    head = struct.pack("<HBBI", MAGIC, kind, 0, len(payload))
    return head + _CRC.pack(zlib.crc32(payload, zlib.crc32(head))) + payload


@attrs.frozen
class Frame:
    kind: RecordType
    payload: bytes
    end: int  # offset just past the frame


def read_frame(buf: bytes | memoryview, offset: int, max_payload_bytes: int) -> Frame | None:
    """The valid frame at `offset`, or None if the bytes there are not one (short, bad
    magic, unknown type, length over the limit or past the end, CRC mismatch)."""
    end = declared_end(buf, offset, max_payload_bytes)
    if end is None or end > len(buf):
        return None
    (crc,) = _CRC.unpack_from(buf, offset + 8)
    payload = bytes(buf[offset + HEADER_BYTES : end])
    if zlib.crc32(payload, zlib.crc32(buf[offset : offset + 8])) != crc:
        return None
    return Frame(RecordType(buf[offset + 2]), payload, end)


def declared_end(buf: bytes | memoryview, offset: int, max_payload_bytes: int) -> int | None:
    """Where the frame at `offset` says it ends, if its header is plausible; else None.
    The end may lie past the end of `buf` (a frame cut short)."""
    if offset + HEADER_BYTES > len(buf):
        return None
    magic, kind, reserved, length, _ = HEADER.unpack_from(buf, offset)
    if magic != MAGIC or reserved != 0 or kind not in _KINDS or length > max_payload_bytes:
        return None
    end: int = offset + HEADER_BYTES + length
    return end


def find_frame(buf: bytes | memoryview, start: int, max_payload_bytes: int) -> int | None:
    """The offset of the first valid frame at or after `start`, if any.

    Only offsets whose first two bytes are the magic are checked, so a scan of random
    bytes costs about one CRC per 64 KiB.
    """
    needle = struct.pack("<H", MAGIC)
    data = bytes(buf)
    at = data.find(needle, start)
    while at != -1:
        if read_frame(data, at, max_payload_bytes) is not None:
            return at
        at = data.find(needle, at + 1)
    return None


_KINDS = frozenset(int(k) for k in RecordType)


# -- payloads ---------------------------------------------------------------------------


def entry_payload(entry: Entry) -> bytes:
    return _ENTRY.pack(entry.term, entry.index, entry.kind) + entry.data


def parse_entry(payload: bytes) -> Entry:
    if len(payload) < _ENTRY.size:
        raise PayloadError(f"entry record of {len(payload)} bytes, under {_ENTRY.size}")
    term, index, kind = _ENTRY.unpack_from(payload)
    if kind not in _ENTRY_KINDS:
        raise PayloadError(f"entry kind {kind} is unknown")
    try:
        return Entry(term, index, EntryKind(kind), payload[_ENTRY.size :])
    except (LimitExceeded, InvalidArgument) as e:
        raise PayloadError(str(e)) from None


_ENTRY_KINDS = frozenset(int(k) for k in EntryKind)


def hard_state_payload(hard_state: HardState) -> bytes:
    return _HARD_STATE.pack(hard_state.term, hard_state.vote, hard_state.commit)


def parse_hard_state(payload: bytes) -> HardState:
    if len(payload) != _HARD_STATE.size:
        raise PayloadError(f"hard state record of {len(payload)} bytes, not {_HARD_STATE.size}")
    return HardState(*_HARD_STATE.unpack(payload))


@attrs.frozen
class SnapshotMarker:
    index: int
    term: int
    retained_last: int  # the last log index kept after the snapshot (== index: log cleared)
    file_crc: int  # CRC of the snapshot file's payload, to check the file is the one meant


def snapshot_payload(marker: SnapshotMarker) -> bytes:
    return _SNAPSHOT.pack(marker.index, marker.term, marker.retained_last, marker.file_crc)


def parse_snapshot(payload: bytes) -> SnapshotMarker:
    if len(payload) != _SNAPSHOT.size:
        raise PayloadError(f"snapshot record of {len(payload)} bytes, not {_SNAPSHOT.size}")
    return SnapshotMarker(*_SNAPSHOT.unpack(payload))


@attrs.frozen
class SegmentHeader:
    """Where the log stood when the segment was started, so that the segments before it
    can be deleted once a snapshot covers their entries."""

    seq: int  # segments are numbered 1, 2, 3... without gaps among the surviving ones
    first_index: int  # index the next appended entry would have had (last index + 1)
    snapshot: SnapshotMarker  # the snapshot in force (index 0: none); retained_last is
    # first_index - 1, the last index of the log when the segment started
    hard_state: HardState


def segment_payload(header: SegmentHeader) -> bytes:
    snap, hs = header.snapshot, header.hard_state
    return _SEGMENT.pack(
        SEGMENT_VERSION,
        header.seq,
        header.first_index,
        snap.index,
        snap.term,
        snap.file_crc,
        hs.term,
        hs.vote,
        hs.commit,
    )


def parse_segment(payload: bytes) -> SegmentHeader:
    if len(payload) != _SEGMENT.size:
        raise PayloadError(f"segment header of {len(payload)} bytes, not {_SEGMENT.size}")
    version, seq, first, s_index, s_term, s_crc, h_term, h_vote, h_commit = _SEGMENT.unpack(payload)
    if version != SEGMENT_VERSION:
        raise PayloadError(f"segment format version {version}, this code reads {SEGMENT_VERSION}")
    if first < 1 or first - 1 < s_index:
        raise PayloadError(f"segment first index {first} is not above snapshot index {s_index}")
    snapshot = SnapshotMarker(s_index, s_term, first - 1, s_crc)
    return SegmentHeader(seq, first, snapshot, HardState(h_term, h_vote, h_commit))
