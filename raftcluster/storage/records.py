"""WAL records: the frame every record is written in, and the payload of each type.

A frame is a 16-byte header and a payload, all integers little-endian:

    offset 0   u16  magic 0x5257 ("RW")
    offset 2   u8   record type (RecordType)
    offset 3   u8   reserved, 0
    offset 4   u32  payload length in bytes
    offset 8   u32  header CRC: CRC-32 (zlib.crc32, the ISO-HDLC polynomial) of bytes 0..8
    offset 12  u32  payload CRC: CRC-32 of the payload
    offset 16  payload

The header has its own CRC so that its length can be trusted before the payload is
read: a record whose header checks and whose declared payload runs past the end of the
file was cut short by a crash (a torn write), while a header that fails its CRC with all
16 bytes present is damage. With one CRC over header and payload (format version 1), a
flipped bit in the length looked exactly like a record cut short. `read_frame` tells the
two apart; recovery.py explains why that decision is exact.

Payloads are fixed layouts of u64 integers (entry data is the raw bytes at the end);
see docs/storage.md for each. The segment header record carries the format version.
"""

from __future__ import annotations

import enum
import struct
import zlib

import attrs

from raftcluster.raft.types import Entry, EntryKind, HardState
from statemachine.errors import InvalidArgument, LimitExceeded

MAGIC = 0x5257
_CHECKED = struct.Struct("<HBBI")  # magic, type, reserved, length: what the header CRC covers
_CRCS = struct.Struct("<II")  # header CRC, payload CRC
HEADER = struct.Struct("<HBBIII")
HEADER_BYTES = HEADER.size  # 16
SEGMENT_VERSION = 2  # 1: 12-byte headers, one CRC over header and payload


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
SEGMENT_FRAME_BYTES = HEADER_BYTES + _SEGMENT.size  # the first record of every segment


class PayloadError(Exception):
    """A payload whose CRC is right but whose layout is not (a bug or a newer format)."""


class VersionError(PayloadError):
    """A segment written in a format version this code does not read."""

    def __init__(self, version: int) -> None:
        super().__init__(f"segment format version {version}, this code reads {SEGMENT_VERSION}")
        self.version = version


def frame(kind: RecordType, payload: bytes) -> bytes:
    head = _CHECKED.pack(MAGIC, kind, 0, len(payload))
    return head + _CRCS.pack(zlib.crc32(head), zlib.crc32(payload)) + payload


@attrs.frozen
class Frame:
    kind: RecordType
    payload: bytes
    end: int  # offset just past the frame


@attrs.frozen
class BadFrame:
    """The bytes at an offset are not a valid frame.

    `torn`: they can be a frame cut short by a crash (a prefix of a frame: fewer bytes
    than a header, or an intact header whose payload runs past the end of the bytes).
    Otherwise they are damaged: bytes that no prefix of a written frame can be.
    """

    torn: bool
    reason: str


def read_frame(buf: bytes | memoryview, offset: int, max_payload_bytes: int) -> Frame | BadFrame:
    """The frame at `offset`, or why the bytes there are not one."""
    left = len(buf) - offset
    if left < HEADER_BYTES:
        return BadFrame(True, f"{left} bytes, fewer than a record header ({HEADER_BYTES})")
    magic, kind, reserved, length, head_crc, payload_crc = HEADER.unpack_from(buf, offset)
    if zlib.crc32(buf[offset : offset + _CHECKED.size]) != head_crc:
        return BadFrame(False, "a record header that fails its CRC check")
    if magic != MAGIC or reserved != 0 or kind not in _KINDS:
        return BadFrame(
            False,
            f"a record header with a valid CRC but magic {magic:#06x}, reserved byte "
            f"{reserved}, type {kind}: not a record of this format",
        )
    if length > max_payload_bytes:
        return BadFrame(
            False,
            f"a record of {length} bytes, over max_record_bytes ({max_payload_bytes}); "
            "was it written with a larger limit?",
        )
    end: int = offset + HEADER_BYTES + length
    if end > len(buf):
        return BadFrame(True, f"a record of {length} bytes that runs past the end of the file")
    payload = bytes(buf[offset + HEADER_BYTES : end])
    if zlib.crc32(payload) != payload_crc:
        return BadFrame(False, f"a whole record of {length} bytes that fails its payload CRC")
    return Frame(_KINDS[kind], payload, end)


_LEGACY_HEADER = struct.Struct("<HBBII")  # format version 1: magic, type, 0, length, CRC


def legacy_segment_version(buf: bytes | memoryview) -> int | None:
    """The version of a segment that starts with a format-1 segment header record (a
    12-byte header, one CRC over header and payload), else None."""
    if len(buf) < _LEGACY_HEADER.size + _SEGMENT.size:
        return None
    magic, kind, reserved, length, crc = _LEGACY_HEADER.unpack_from(buf)
    if (magic, kind, reserved, length) != (MAGIC, RecordType.SEGMENT, 0, _SEGMENT.size):
        return None
    head = bytes(buf[:8])
    payload = bytes(buf[_LEGACY_HEADER.size : _LEGACY_HEADER.size + _SEGMENT.size])
    if zlib.crc32(payload, zlib.crc32(head)) != crc:
        return None
    version: int = struct.unpack_from("<I", payload)[0]
    return version


_KINDS = {int(k): k for k in RecordType}  # (a lookup, not the enum's call: one per record read)


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
        return Entry(term, index, _ENTRY_KINDS[kind], payload[_ENTRY.size :])
    except (LimitExceeded, InvalidArgument) as e:
        raise PayloadError(str(e)) from None


_ENTRY_KINDS = {int(k): k for k in EntryKind}


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
        raise VersionError(version)
    if first < 1 or first - 1 < s_index:
        raise PayloadError(f"segment first index {first} is not above snapshot index {s_index}")
    snapshot = SnapshotMarker(s_index, s_term, first - 1, s_crc)
    return SegmentHeader(seq, first, snapshot, HardState(h_term, h_vote, h_commit))
