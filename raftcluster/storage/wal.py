"""The file-backed storage: a write-ahead log in segments, plus snapshot files.

Writes are buffered in memory; `sync()` makes the whole batch durable with one write
and one fsync of the current segment (group commit), plus, only when needed, the
fsync of a new segment or snapshot file and of the directory. On-disk format,
guarantees and recovery: docs/storage.md.

Blocking: every call does its I/O on the calling thread. The trio runtime calls it
from a worker thread (`trio.to_thread.run_sync`), one call at a time, except
`stage_snapshot`, which another worker thread runs beside them (the slow part of saving
a snapshot: encoding, writing and fsyncing its file, while the log keeps being
persisted); the state the two share (`_staged`) is behind a lock.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import NoReturn

import attrs

from raftcluster.raft.types import MAX_ENTRY_BYTES, Entry, HardState, Snapshot
from raftcluster.storage.errors import StorageClosed, StorageFailed
from raftcluster.storage.fs import Directory, File, OsDirectory
from raftcluster.storage.interface import DurableState
from raftcluster.storage.layout import SegmentName, is_snapshot_name, snapshot_name
from raftcluster.storage.logstate import LogState
from raftcluster.storage.records import (
    ENTRY_OVERHEAD_BYTES,
    HEADER_BYTES,
    SEGMENT_FRAME_BYTES,
    RecordType,
    SegmentHeader,
    SnapshotMarker,
    entry_payload,
    frame,
    hard_state_payload,
    segment_payload,
    snapshot_payload,
)
from raftcluster.storage.recovery import recover
from raftcluster.storage.snapfile import (
    STAGED_SUFFIX,
    EncodedSnapshot,
    StagedSnapshot,
    encode_snapshot,
    write_snapshot,
)
from statemachine.codec import int_range
from statemachine.errors import InvalidArgument, LimitExceeded

log = logging.getLogger("raftcluster.storage")

MiB = 1024 * 1024


@attrs.frozen
class WalOptions:
    """Limits of one data directory. Every one bounds memory or disk use."""

    max_segment_bytes: int = attrs.field(default=64 * MiB, validator=int_range(256))
    # A record's payload; entries are bounded by MAX_ENTRY_BYTES, so the default fits any.
    max_record_bytes: int = attrs.field(
        default=MAX_ENTRY_BYTES + ENTRY_OVERHEAD_BYTES, validator=int_range(64)
    )
    max_snapshot_bytes: int = attrs.field(default=1024 * MiB, validator=int_range(64))
    # Buffered, unsynced bytes (records and snapshot files); past this a write syncs on its
    # own (durable earlier than asked: allowed).
    max_buffer_bytes: int = attrs.field(default=16 * MiB, validator=int_range(1))

    def __attrs_post_init__(self) -> None:
        if self.max_segment_bytes < SEGMENT_FRAME_BYTES + HEADER_BYTES + self.max_record_bytes:
            raise InvalidArgument(
                "WalOptions.max_segment_bytes",
                f"{self.max_segment_bytes} cannot hold a record of max_record_bytes "
                f"{self.max_record_bytes} after a segment header",
            )


@attrs.define
class _Chunk:
    """Buffered bytes for one segment; `new` when the segment file does not exist yet."""

    segment: SegmentName
    new: bool
    data: bytearray = attrs.field(factory=bytearray)


class FileStorage:
    """The `Storage` protocol on a data directory (one directory per node)."""

    def __init__(self, directory: Directory, options: WalOptions | None = None) -> None:
        """Take `directory` (locking it: `StorageLocked` if another storage has it).
        Nothing is read until `load()`."""
        self._options = options or WalOptions()
        directory.lock()
        self._dir = directory
        self._closed = False
        self._failed: StorageFailed | None = None
        self._state: LogState | None = None  # the log as the buffered writes leave it
        self._snapshot_crc = 0
        self._durable_snapshot = (0, 0)  # (index, term) as of the last sync
        self._compacted_at = -1  # the snapshot index the last compaction went up to
        self._segments: list[SegmentName] = []
        self._active: File | None = None
        self._active_bytes = 0  # size of the last segment, buffered bytes included
        self._chunks: list[_Chunk] = []
        self._snapshots: list[EncodedSnapshot] = []  # to write at the next sync
        self._buffered_bytes = 0
        # Snapshot files written ahead by `stage_snapshot` (durable, not yet recorded), by
        # name: `save_snapshot` of the same snapshot only records it, and `_compact` keeps
        # them. At most one per snapshot job the node has out (one at a time), plus ones
        # a leader's snapshot overtook, forgotten at the next compaction past them.
        self._staged: dict[str, StagedSnapshot] = {}
        self._staged_lock = threading.Lock()  # `_staged`, shared with the staging thread
        # Held while a staged file is written: `close` waits for it, so that no file
        # appears in the directory once the storage is closed.
        self._staging_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str], options: WalOptions | None = None) -> FileStorage:
        """The storage in directory `path` (created if missing), locked for this process."""
        return cls(OsDirectory.open(path), options)

    def __enter__(self) -> FileStorage:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- Storage protocol ------------------------------------------------------------

    def load(self) -> DurableState:
        """Recover the directory: cut a torn tail (logged), remove leftovers, refuse
        corruption with `StorageCorrupted`. Must be called once, before any write.
        An I/O error (recovery writes too) raises `StorageFailed`, as in `sync()`."""
        self._check_open()
        if self._state is not None:
            raise StorageClosed("load() was already called on this storage")
        options = self._options
        try:  # recovery writes too: it cuts a torn tail and removes leftovers
            found = recover(self._dir, options.max_record_bytes, options.max_snapshot_bytes)
            if found.segments:
                self._active = self._dir.append(found.segments[-1].name)
        except OSError as e:
            self._fail(e)
        entries = tuple(found.state.entries)
        self._state = found.state
        self._state.keep_entries = False  # the core holds the entries; the writer needs terms
        self._state.entries = []
        self._snapshot_crc = found.snapshot_crc
        self._durable_snapshot = (found.state.snapshot_index, found.state.snapshot_term)
        self._segments = found.segments
        self._active_bytes = found.last_segment_bytes
        self._compact()
        return DurableState(found.state.hard_state, found.snapshot, entries)

    def append(self, entries: Sequence[Entry]) -> None:
        """Buffer entries; see `Storage.append`. Invalid input raises `InvalidArgument`
        and buffers nothing."""
        state = self._writable()
        state.check_append(entries)
        limit = self._options.max_record_bytes - ENTRY_OVERHEAD_BYTES
        for i, entry in enumerate(entries):
            if len(entry.data) > limit:
                raise LimitExceeded(f"append.entries[{i}].data", limit, len(entry.data))
        for entry in entries:
            self._record(RecordType.ENTRY, entry_payload(entry))
            state.apply_entry(entry)
        self._sync_if_full()

    def set_hard_state(self, hard_state: HardState) -> None:
        state = self._writable()
        if hard_state == state.hard_state:
            return
        state.check_hard_state(hard_state)
        self._record(RecordType.HARD_STATE, hard_state_payload(hard_state))
        state.apply_hard_state(hard_state)
        self._sync_if_full()

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Buffer a snapshot: its file is written (atomically) at the next `sync()`,
        before the log records that refer to it; if `stage_snapshot(snapshot)` wrote
        it already, only the record that refers to it is buffered."""
        state = self._writable()
        meta = snapshot.meta
        staged = self._staged_file(snapshot)
        encoded = None
        if staged is not None:
            crc = staged.crc
        else:
            encoded = encode_snapshot(snapshot, self._options.max_snapshot_bytes)
            crc = encoded.crc
        retained_last = state.check_snapshot(meta)
        if staged is not None:
            # Recorded from now on: the snapshot `_compact` keeps once this is synced.
            with self._staged_lock:
                self._staged.pop(staged.name, None)
        marker = SnapshotMarker(meta.index, meta.term, retained_last, crc)
        self._record(RecordType.SNAPSHOT, snapshot_payload(marker))
        state.apply_snapshot(meta.index, meta.term, retained_last)
        self._snapshot_crc = crc
        if encoded is not None:
            self._snapshots.append(encoded)
            self._buffered_bytes += len(encoded.content)
        self._sync_if_full()

    def stage_snapshot(self, snapshot: Snapshot) -> None:
        """Write `snapshot`'s file now, durably, without recording it: encoded, written to
        a temporary file, fsynced, renamed, the directory fsynced. Nothing refers to it
        until `save_snapshot(snapshot)` (which then only records it) is synced, so a crash
        before leaves a file the next `load()` deletes; the file is durable before any
        record refers to it, which is what makes that record safe.

        Unlike the other calls, this one may run in another thread while one other call
        runs (the node stages in its snapshot thread while its persists go on): it is the
        slow part of saving a large snapshot (at 100,000 keys, 13 MB: 50-200 ms). Errors
        as for `sync()`: `StorageFailed`, and the storage refuses further calls."""
        self._writable()
        encoded = encode_snapshot(snapshot, self._options.max_snapshot_bytes)
        staged = StagedSnapshot(encoded.name, snapshot.meta.index, encoded.crc, snapshot.data)
        with self._staging_lock:
            self._writable()  # not closed meanwhile
            with self._staged_lock:  # from now on `_compact` leaves the name alone
                self._staged[staged.name] = staged
            try:
                write_snapshot(self._dir, encoded, STAGED_SUFFIX)
                self._dir.sync()  # the name is durable before any record refers to it
            except OSError as e:
                self._fail(e)

    def sync(self) -> None:
        """Make every buffered write durable: snapshot files first (each written to a
        temporary file, fsynced, renamed; then the directory fsynced), then the log
        (one write and one fsync per segment touched; a new segment's directory entry
        fsynced too). Then delete what the newest durable snapshot makes useless.
        An I/O error raises `StorageFailed` and the storage refuses further calls."""
        self._writable()
        if not self._chunks and not self._snapshots:
            return
        try:
            self._write_snapshots()
            self._write_chunks()
        except OSError as e:
            self._fail(e)
        state = self._state
        assert state is not None
        self._durable_snapshot = (state.snapshot_index, state.snapshot_term)
        self._compact()

    def close(self) -> None:
        """Release the directory. Writes not synced are dropped, as in a crash. A staged
        snapshot file being written (another thread) is finished first."""
        if self._closed:
            return
        with self._staging_lock:
            self._closed = True
        self._chunks, self._snapshots = [], []
        try:
            if self._active is not None:
                self._active.close()
        except OSError as e:
            log.warning("storage: closing %s: %s", self._dir.path, e)
        finally:
            self._active = None
            self._dir.unlock()

    # -- writing ---------------------------------------------------------------------

    def _record(self, kind: RecordType, payload: bytes) -> None:
        assert len(payload) <= self._options.max_record_bytes, "bounded by the entry limit"
        data = frame(kind, payload)
        no_segment = not self._segments and not self._chunks
        if no_segment or self._active_bytes + len(data) > self._options.max_segment_bytes:
            self._start_segment()
        elif not self._chunks:
            self._chunks.append(_Chunk(self._segments[-1], new=False))
        self._chunks[-1].data += data
        self._active_bytes += len(data)
        self._buffered_bytes += len(data)

    def _start_segment(self) -> None:
        """Buffer a new segment whose header is the log as the writes so far leave it."""
        state = self._state
        assert state is not None
        last = self._chunks[-1].segment if self._chunks else None
        if last is None and self._segments:
            last = self._segments[-1]
        seq = last.seq + 1 if last is not None else 1
        name = SegmentName(seq, state.last_index + 1)
        snapshot = SnapshotMarker(
            state.snapshot_index, state.snapshot_term, state.last_index, self._snapshot_crc
        )
        header = frame(
            RecordType.SEGMENT,
            segment_payload(SegmentHeader(seq, name.first_index, snapshot, state.hard_state)),
        )
        assert len(header) == SEGMENT_FRAME_BYTES
        self._chunks.append(_Chunk(name, True, bytearray(header)))
        self._active_bytes = len(header)
        self._buffered_bytes += len(header)

    def _sync_if_full(self) -> None:
        if self._buffered_bytes > self._options.max_buffer_bytes:
            self.sync()

    def _write_snapshots(self) -> None:
        for encoded in self._snapshots:
            write_snapshot(self._dir, encoded)
        if self._snapshots:
            self._dir.sync()
        self._buffered_bytes -= sum(len(encoded.content) for encoded in self._snapshots)
        self._snapshots = []

    def _write_chunks(self) -> None:
        # In order: a segment is complete and durable before the next one is created, so
        # only the last segment can ever end in a torn record.
        while self._chunks:
            chunk = self._chunks[0]
            if chunk.new:
                self._open_new(chunk.segment)
            assert self._active is not None
            self._active.write(bytes(chunk.data))
            self._active.sync()
            if chunk.new:
                self._dir.sync()  # the new segment's name is durable before anything uses it
            self._chunks.pop(0)
            self._buffered_bytes -= len(chunk.data)
        assert self._buffered_bytes == 0

    def _open_new(self, segment: SegmentName) -> None:
        if self._active is not None:
            self._active.close()
            self._active = None
        self._active = self._dir.create(segment.name)
        self._segments.append(segment)

    def _compact(self) -> None:
        """Delete snapshot files other than the durable one, and segments whose entries
        the durable snapshot covers (oldest first, so any crash leaves a valid suffix).
        A segment may go when the one after it starts at or below the snapshot index:
        replay from there already knows every entry it needs."""
        index, term = self._durable_snapshot
        if index == self._compacted_at:
            return
        keep = {snapshot_name(index, term)}
        with self._staged_lock:
            # A staged file past the durable snapshot is still to be recorded; one at or
            # below it was overtaken (by a leader's snapshot) and goes now.
            self._staged = {n: s for n, s in self._staged.items() if s.index > index}
            keep.update(self._staged)
        drop = 0
        for i in range(len(self._segments) - 1):
            if self._segments[i + 1].first_index - 1 <= index:
                drop = i + 1
        try:
            stale = [n for n in self._dir.names() if is_snapshot_name(n) and n not in keep]
            for name in stale:
                self._dir.remove(name)
            for segment in self._segments[:drop]:
                self._dir.remove(segment.name)
        except OSError as e:
            self._fail(e)
        del self._segments[:drop]
        self._compacted_at = index

    def _staged_file(self, snapshot: Snapshot) -> StagedSnapshot | None:
        """The staged file of exactly `snapshot` (same name and bytes), if any."""
        name = snapshot_name(snapshot.meta.index, snapshot.meta.term)
        with self._staged_lock:
            staged = self._staged.get(name)
        if staged is None or not (staged.data is snapshot.data or staged.data == snapshot.data):
            return None
        return staged

    # -- state -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise StorageClosed(f"storage on {self._dir.path} is closed")

    def _writable(self) -> LogState:
        self._check_open()
        if self._state is None:
            raise StorageClosed("call load() before writing")
        return self._state

    def _fail(self, error: OSError) -> NoReturn:
        self._failed = StorageFailed(self._dir.path, f"{type(error).__name__}: {error}")
        raise self._failed from error
