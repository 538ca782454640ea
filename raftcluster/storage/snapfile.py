"""Snapshot files: one file per snapshot, written atomically, checked when read.

Layout (little-endian): 8 bytes magic ``RCSNAP01``, u64 payload length, u32 CRC-32 of
the payload, then the payload: the snapshot encoded by `statemachine.codec` (canonical
CBOR of `raftcluster.raft.types.Snapshot`).

Atomic write: the bytes go to `<name>.tmp`, which is fsynced, then renamed over the
final name; the caller fsyncs the directory before anything refers to the file. A
crash leaves either no file, a complete one, or a `.tmp` that recovery removes.

A file may also be written ahead of the log record that refers to it ("staged",
`FileStorage.stage_snapshot`, in the node's snapshot thread): through
`<name>.staged.tmp`, so that it never shares a temporary file with the same snapshot
saved the usual way. Until its record is synced it is a file recovery deletes.
"""

from __future__ import annotations

import struct
import zlib

import attrs

from raftcluster.raft.types import Snapshot
from raftcluster.storage.errors import StorageCorrupted
from raftcluster.storage.fs import Directory
from raftcluster.storage.layout import TMP_SUFFIX, snapshot_name
from statemachine.codec import decode, encode
from statemachine.errors import DecodeError, LimitExceeded

MAGIC = b"RCSNAP01"
_HEAD = struct.Struct("<8sQI")


STAGED_SUFFIX = ".staged" + TMP_SUFFIX


@attrs.frozen(eq=False)
class StagedSnapshot:
    """A snapshot file written (durably) ahead of its record: its name, index, the CRC
    the record must carry, and the snapshot bytes it holds (to recognise the snapshot)."""

    name: str
    index: int
    crc: int
    data: bytes = attrs.field(repr=False)


@attrs.frozen
class EncodedSnapshot:
    name: str
    content: bytes  # the whole file
    crc: int  # CRC-32 of the payload, also recorded in the WAL's snapshot marker


def encode_snapshot(snapshot: Snapshot, max_bytes: int) -> EncodedSnapshot:
    """The file for `snapshot`; `LimitExceeded` if it would be over `max_bytes`."""
    payload = encode(snapshot)
    if len(payload) + _HEAD.size > max_bytes:
        raise LimitExceeded("snapshot file", max_bytes, len(payload) + _HEAD.size)
    crc = zlib.crc32(payload)
    name = snapshot_name(snapshot.meta.index, snapshot.meta.term)
    return EncodedSnapshot(name, _HEAD.pack(MAGIC, len(payload), crc) + payload, crc)


def write_snapshot(
    directory: Directory, encoded: EncodedSnapshot, suffix: str = TMP_SUFFIX
) -> None:
    """Write and fsync `<name><suffix>`, then rename it to `<name>`. The caller syncs the
    directory afterwards (once for several files)."""
    temporary = encoded.name + suffix
    file = directory.create(temporary)
    try:
        file.write(encoded.content)
        file.sync()
    finally:
        file.close()
    directory.rename(temporary, encoded.name)


def read_snapshot(
    directory: Directory, index: int, term: int, crc: int, max_bytes: int
) -> Snapshot:
    """The snapshot the WAL refers to by (index, term, crc), or `StorageCorrupted`."""
    name = snapshot_name(index, term)
    where = f"{directory.path}/{name}"
    if name not in directory.names():
        raise StorageCorrupted(where, 0, "the snapshot the log refers to is missing")
    if directory.size(name) > max_bytes:
        raise StorageCorrupted(where, 0, f"snapshot file over the limit of {max_bytes} bytes")
    content = directory.read(name)
    if len(content) < _HEAD.size:
        raise StorageCorrupted(where, 0, "snapshot file shorter than its header")
    magic, length, stored_crc = _HEAD.unpack_from(content)
    payload = content[_HEAD.size :]
    if magic != MAGIC or length != len(payload):
        raise StorageCorrupted(where, 0, "bad snapshot header (magic or length)")
    if zlib.crc32(payload) != stored_crc or stored_crc != crc:
        raise StorageCorrupted(where, _HEAD.size, "snapshot payload fails its CRC check")
    try:
        snapshot = decode(payload, Snapshot)
    except DecodeError as e:
        raise StorageCorrupted(where, _HEAD.size, f"snapshot does not decode: {e}") from None
    if (snapshot.meta.index, snapshot.meta.term) != (index, term):
        raise StorageCorrupted(where, _HEAD.size, "snapshot position differs from its name")
    return snapshot
