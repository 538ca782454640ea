"""The WAL on the real disk: torn tails cut and logged, corruption refused with file and
offset, segments rolled over and deleted after a snapshot, snapshot files atomic, the
directory locked, I/O errors final."""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from raftcluster.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftcluster.storage import (
    DurableState,
    FileStorage,
    StorageCorrupted,
    StorageFailed,
    StorageFormatUnsupported,
    StorageLocked,
    WalOptions,
)
from raftcluster.storage.fs import File, OsDirectory
from raftcluster.storage.layout import parse_segment_name
from raftcluster.storage.records import (
    HEADER_BYTES,
    Frame,
    RecordType,
    entry_payload,
    frame,
    read_frame,
)
from statemachine.errors import InvalidArgument, LimitExceeded

SMALL = WalOptions(max_segment_bytes=1024, max_record_bytes=256)


def entry(index: int, term: int = 1, data: bytes | None = None) -> Entry:
    return Entry(term, index, data=f"entry {index}".encode() if data is None else data)


def write(path: Path, batches: list[list[Entry]], options: WalOptions = SMALL) -> None:
    with FileStorage.open(path, options) as wal:
        wal.load()
        for batch in batches:
            wal.append(batch)
            wal.sync()


def load(path: Path, options: WalOptions = SMALL) -> DurableState:
    with FileStorage.open(path, options) as wal:
        return wal.load()


def segments(path: Path) -> list[Path]:
    found = [(parse_segment_name(p.name), p) for p in path.iterdir()]
    return [p for name, p in sorted((n.seq, p) for n, p in found if n is not None)]


def record_offsets(segment: Path) -> list[int]:
    """Start of every record in a segment, then its end."""
    data, offsets = segment.read_bytes(), [0]
    while isinstance(found := read_frame(data, offsets[-1], 1 << 20), Frame):
        offsets.append(found.end)
    assert offsets[-1] == len(data)
    return offsets


def flip(path: Path, offset: int, mask: int = 0x40) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


# -- torn tails ---------------------------------------------------------------------------


def test_a_tail_cut_anywhere_is_cut_back_to_the_last_whole_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The directory copied with its segment cut at every record boundary and at every
    byte inside the last records: each loads as the entries wholly before the cut."""
    source = tmp_path / "source"
    written = [entry(i) for i in range(1, 9)]
    write(source, [[e] for e in written])
    (segment,) = segments(source)
    offsets = record_offsets(segment)  # header, then one record per entry
    content = segment.read_bytes()
    cuts = sorted(set(offsets) | set(range(offsets[-3], len(content))))
    for cut in cuts:
        copy = tmp_path / f"cut-{cut}"
        shutil.copytree(source, copy)
        (copy / segment.name).write_bytes(content[:cut])
        whole = sum(1 for end in offsets[1:] if end <= cut)  # complete records
        caplog.clear()
        with caplog.at_level(logging.WARNING, "raftcluster.storage"):
            loaded = load(copy)
        assert loaded.entries == tuple(written[: max(whole - 1, 0)]), cut
        if cut in offsets:
            assert not caplog.records, cut
            assert segments(copy) == ([] if cut == 0 else [copy / segment.name])
            continue
        assert any("torn tail" in r.getMessage() for r in caplog.records), cut
        if whole == 0:  # torn inside the header: the segment itself goes
            assert segments(copy) == []
        else:
            assert (copy / segment.name).stat().st_size == offsets[whole], cut


def test_writing_goes_on_after_a_cut_tail(tmp_path: Path) -> None:
    write(tmp_path, [[entry(1)], [entry(2)]])
    (segment,) = segments(tmp_path)
    segment.write_bytes(segment.read_bytes()[:-4])
    with FileStorage.open(tmp_path, SMALL) as wal:
        assert wal.load().entries == (entry(1),)
        wal.append([entry(2, data=b"again"), entry(3)])
        wal.sync()
    assert load(tmp_path).entries == (entry(1), entry(2, data=b"again"), entry(3))


def test_a_record_cut_after_entry_data_that_looks_like_a_record_is_still_torn(
    tmp_path: Path,
) -> None:
    """The decision is taken at the bad record's header; nothing after it is read, so a
    valid record inside an entry's data cannot turn a torn tail into corruption."""
    inner = frame(RecordType.ENTRY, entry_payload(entry(9)))
    write(tmp_path, [[entry(1)], [entry(2, data=b"x" + inner + b"y" * 40)]])
    (segment,) = segments(tmp_path)
    start = record_offsets(segment)[-2]
    segment.write_bytes(segment.read_bytes()[:-20])  # the inner record is whole, the outer cut
    assert load(tmp_path).entries == (entry(1),)
    assert segment.stat().st_size == start


# -- corruption ---------------------------------------------------------------------------


def test_a_bad_record_followed_by_valid_ones_is_refused_with_file_and_offset(
    tmp_path: Path,
) -> None:
    write(tmp_path, [[entry(1)], [entry(2)], [entry(3)]])
    (segment,) = segments(tmp_path)
    bad = record_offsets(segment)[2]  # the record of entry 2
    flip(segment, bad + HEADER_BYTES + 4)
    before = segment.read_bytes()
    with pytest.raises(StorageCorrupted) as refused:
        load(tmp_path)
    assert (refused.value.path, refused.value.offset) == (str(segment), bad)
    assert "fails its payload CRC" in refused.value.reason
    message = str(refused.value)
    assert f"{segment} at byte {bad}" in message
    assert "Keep a copy of the directory" in message
    assert "restore it from a backup taken after the node last ran" in message
    assert "or replace the member" in message
    assert "member replace ID" in message and "--join" in message
    assert "docs/storage.md" in message
    assert segment.read_bytes() == before, "nothing is cut when refusing"


@pytest.mark.parametrize("last", [False, True], ids=["followed-by-synced", "last-synced"])
def test_a_flipped_length_bit_in_a_synced_record_is_refused_not_cut(
    tmp_path: Path, last: bool
) -> None:
    """Issue 11: one flipped bit in the length field of a synced record in the last
    segment made recovery take it for a torn tail and cut entries 7 to 10 and the vote,
    from three synced batches, with only a warning: the node came back at term 1 with no
    vote. With the header's own CRC it is corruption, whether synced records follow it or
    it is the very last one."""
    batches: list[tuple[list[Entry], HardState]] = [
        ([entry(i) for i in range(1, 7)], HardState(1, 0, 6)),
        ([entry(7), entry(8)], HardState(1, 0, 8)),
        ([entry(9), entry(10)], HardState(1, 0, 10)),
        ([], HardState(2, 2, 10)),  # the vote
    ]
    with FileStorage.open(tmp_path, SMALL) as wal:
        wal.load()
        for entries, hard_state in batches:
            wal.append(entries)
            wal.set_hard_state(hard_state)
            wal.sync()
    (segment,) = segments(tmp_path)
    offsets = record_offsets(segment)
    # Records: segment header, entries 1-6, hard state, 7, 8, hard state, 9, 10, hard
    # state, vote. Entry 7's record follows three synced batches; the vote is the last.
    bad = offsets[-2] if last else offsets[8]
    flip(segment, bad + 5, 0x01)  # length += 256: the record now seems to run past the end
    with pytest.raises(StorageCorrupted) as refused:
        load(tmp_path)
    assert (refused.value.path, refused.value.offset) == (str(segment), bad)
    assert "header that fails its CRC" in refused.value.reason
    assert f"{segment} at byte {bad}" in str(refused.value)
    flip(segment, bad + 5, 0x01)
    assert load(tmp_path) == DurableState(
        HardState(2, 2, 10), None, tuple(map(entry, range(1, 11)))
    )


def test_a_whole_last_record_with_a_bad_payload_crc_is_refused(tmp_path: Path) -> None:
    """A crash cuts records short; it does not change bytes of a whole record."""
    write(tmp_path, [[entry(1)], [entry(2)], [entry(3)]])
    (segment,) = segments(tmp_path)
    bad = record_offsets(segment)[-2]
    flip(segment, bad + 20)
    with pytest.raises(StorageCorrupted) as refused:
        load(tmp_path)
    assert refused.value.offset == bad


def test_a_zero_filled_tail_is_refused_not_cut(tmp_path: Path) -> None:
    """Zeros after the last record are not a prefix of a record: a file system that
    shows them after a crash breaks the assumption recovery relies on, and zeros are
    also what a lost sector reads back as. Refused, never silently cut."""
    write(tmp_path, [[entry(1)], [entry(2)]])
    (segment,) = segments(tmp_path)
    size = segment.stat().st_size
    with segment.open("ab") as f:
        f.write(bytes(4096))
    with pytest.raises(StorageCorrupted, match="header that fails its CRC") as refused:
        load(tmp_path)
    assert refused.value.offset == size
    segment.write_bytes(segment.read_bytes()[: size + HEADER_BYTES - 1])  # fewer: a cut
    assert load(tmp_path).entries == (entry(1), entry(2))


def test_a_segment_in_format_version_1_is_named_as_such(tmp_path: Path) -> None:
    """The previous format (12-byte headers, one CRC) is not read, and not taken for
    damage either."""
    legacy = tmp_path / f"wal-{1:012d}-{1:020d}.log"
    payload = struct.pack("<IQQQQIQQQ", 1, 1, 1, 0, 0, 0, 0, 0, 0)
    head = struct.pack("<HBBI", 0x5257, 1, 0, len(payload))
    legacy.write_bytes(head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload)
    with pytest.raises(StorageFormatUnsupported, match="format version 1; this release") as e:
        load(tmp_path)
    assert (e.value.path, e.value.found, e.value.supported) == (str(legacy), 1, 2)


def test_damage_in_a_header_of_a_middle_record_is_refused(tmp_path: Path) -> None:
    write(tmp_path, [[entry(1)], [entry(2)], [entry(3)]])
    (segment,) = segments(tmp_path)
    bad = record_offsets(segment)[2]
    flip(segment, bad)  # the magic, under the header's CRC
    with pytest.raises(StorageCorrupted) as refused:
        load(tmp_path)
    assert refused.value.offset == bad


def many_segments(path: Path) -> list[Path]:
    write(path, [[entry(i, data=bytes(100))] for i in range(1, 40)])
    found = segments(path)
    assert len(found) >= 4
    return found


def test_a_bad_record_at_the_end_of_an_earlier_segment_is_refused(tmp_path: Path) -> None:
    first = many_segments(tmp_path)[0]
    bad = record_offsets(first)[-2]
    flip(first, bad + 20)
    with pytest.raises(StorageCorrupted) as refused:
        load(tmp_path)
    assert (refused.value.path, refused.value.offset) == (str(first), bad)
    assert "not the last" in refused.value.reason
    assert "payload CRC" in refused.value.reason


def test_an_earlier_segment_cut_short_is_refused(tmp_path: Path) -> None:
    first = many_segments(tmp_path)[0]
    first.write_bytes(first.read_bytes()[:-5])
    with pytest.raises(StorageCorrupted, match="not the last"):
        load(tmp_path)


def test_an_empty_earlier_segment_is_refused(tmp_path: Path) -> None:
    found = many_segments(tmp_path)
    found[1].write_bytes(b"")
    with pytest.raises(StorageCorrupted, match="empty file") as refused:
        load(tmp_path)
    assert (refused.value.path, refused.value.offset) == (str(found[1]), 0)


def test_an_empty_last_segment_is_removed(tmp_path: Path) -> None:
    write(tmp_path, [[entry(1)]])
    empty = tmp_path / f"wal-{2:012d}-{2:020d}.log"
    empty.write_bytes(b"")  # created, then the power went before its first write
    assert load(tmp_path).entries == (entry(1),)
    assert not empty.exists()


def test_a_missing_middle_segment_is_refused(tmp_path: Path) -> None:
    found = many_segments(tmp_path)
    found[1].unlink()
    with pytest.raises(StorageCorrupted, match="segment 2 is missing") as refused:
        load(tmp_path)
    assert refused.value.path == str(found[2])


def test_a_missing_first_segment_is_refused(tmp_path: Path) -> None:
    found = many_segments(tmp_path)
    found[0].unlink()
    with pytest.raises(StorageCorrupted, match="are in no segment") as refused:
        load(tmp_path)
    assert refused.value.path == str(found[1])


def test_a_missing_or_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    with FileStorage.open(tmp_path, SMALL) as wal:
        wal.load()
        wal.append([entry(1), entry(2)])
        wal.save_snapshot(Snapshot(SnapshotMeta(2, 1), b"state"))
        wal.sync()
    (snap,) = tmp_path.glob("snap-*.snap")
    flip(snap, snap.stat().st_size - 1)
    with pytest.raises(StorageCorrupted, match="CRC"):
        load(tmp_path)
    snap.unlink()
    with pytest.raises(StorageCorrupted, match="missing") as refused:
        load(tmp_path)
    assert refused.value.path == str(snap)


def test_a_refused_directory_is_left_as_it_was(tmp_path: Path) -> None:
    """A torn tail and a leftover temporary file are repaired only once every check has
    passed: here the snapshot the log refers to is missing, so nothing is touched."""
    with FileStorage.open(tmp_path, SMALL) as wal:
        wal.load()
        wal.append([entry(1), entry(2)])
        wal.save_snapshot(Snapshot(SnapshotMeta(2, 1), b"state"))
        wal.append([entry(3)])
        wal.sync()
    (segment,) = segments(tmp_path)
    segment.write_bytes(segment.read_bytes()[:-3])  # a torn tail
    (tmp_path / "snap-x.snap.tmp").write_bytes(b"half")
    next(tmp_path.glob("snap-*.snap")).unlink()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(StorageCorrupted, match="missing"):
        load(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# -- segments and snapshots ---------------------------------------------------------------


def test_segments_roll_over_and_those_below_a_snapshot_are_deleted(tmp_path: Path) -> None:
    written = [entry(i, data=bytes(100)) for i in range(1, 60)]
    with FileStorage.open(tmp_path, SMALL) as wal:
        wal.load()
        for e in written:
            wal.append([e])
            wal.sync()
        before = segments(tmp_path)
        names = [parse_segment_name(p.name) for p in before]
        assert [n.seq for n in names if n] == list(range(1, len(before) + 1))
        assert all(p.stat().st_size <= SMALL.max_segment_bytes for p in before)
        wal.save_snapshot(Snapshot(SnapshotMeta(40, 1), b"state"))
        wal.sync()
    after = [parse_segment_name(p.name) for p in segments(tmp_path)]
    assert len(after) < len(before)
    first, second = after[0], after[1]
    assert first is not None and second is not None
    assert second.first_index - 1 > 40, "the oldest kept segment holds entries above 40"
    assert first.first_index - 1 <= 40, "every segment before it held only entries <= 40"
    loaded = load(tmp_path)
    assert loaded.snapshot is not None and loaded.snapshot.meta.index == 40
    assert loaded.entries == tuple(written[40:])


def test_a_leftover_temporary_file_and_an_unreferenced_snapshot_are_removed(
    tmp_path: Path,
) -> None:
    write(tmp_path, [[entry(1), entry(2)]])
    leftover = tmp_path / f"snap-{2:020d}-{1:020d}.snap.tmp"
    leftover.write_bytes(b"half a snapsh")
    unreferenced = tmp_path / f"snap-{1:020d}-{1:020d}.snap"
    unreferenced.write_bytes(b"its marker never reached the log")
    assert load(tmp_path) == DurableState(entries=(entry(1), entry(2)))
    assert not leftover.exists() and not unreferenced.exists()


def test_a_snapshot_is_written_before_the_log_refers_to_it(tmp_path: Path) -> None:
    """The order of a sync: snapshot file, fsync, rename, directory fsync, then the log."""
    calls: list[str] = []
    directory = RecordingDirectory(str(tmp_path), calls)
    with FileStorage(directory, SMALL) as wal:
        wal.load()
        wal.append([entry(1), entry(2)])
        wal.sync()
        calls.clear()
        wal.save_snapshot(Snapshot(SnapshotMeta(2, 1, ConfState((1,))), b"state"))
        wal.sync()
    snap = f"snap-{2:020d}-{1:020d}.snap"
    assert calls[:5] == [
        f"create {snap}.tmp",
        f"write {snap}.tmp",
        f"fsync {snap}.tmp",
        f"rename {snap}.tmp {snap}",
        "fsync-dir",
    ]
    assert calls[5:7] == ["write wal", "fsync wal"]


def test_a_batch_is_one_write_and_one_fsync(tmp_path: Path) -> None:
    calls: list[str] = []
    with FileStorage(RecordingDirectory(str(tmp_path), calls), SMALL) as wal:
        wal.load()
        wal.append([entry(1)])
        wal.sync()
        assert calls == ["create wal", "write wal", "fsync wal", "fsync-dir"]  # new segment
        calls.clear()
        wal.append([entry(2), entry(3)])
        wal.set_hard_state(HardState(1, 1, 1))
        wal.append([entry(4)])
        wal.sync()
        wal.sync()  # nothing pending: no I/O
        assert calls == ["write wal", "fsync wal"]


# -- the directory ------------------------------------------------------------------------


def test_a_second_opener_in_this_process_is_refused(tmp_path: Path) -> None:
    with FileStorage.open(tmp_path) as wal:
        with pytest.raises(StorageLocked, match=f"pid {os.getpid()}"):
            FileStorage.open(tmp_path)
        wal.load()
    with FileStorage.open(tmp_path) as again:
        assert again.load() == DurableState()


def test_a_second_process_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from raftcluster.storage import FileStorage;"
            f"s = FileStorage.open({str(tmp_path)!r}); print('ready', flush=True);"
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        with pytest.raises(StorageLocked, match=f"pid {holder.pid}"):
            FileStorage.open(tmp_path)
    finally:
        holder.communicate("")
    with FileStorage.open(tmp_path) as wal:  # the lock went with the process
        wal.load()


def test_a_failed_fsync_is_final(tmp_path: Path) -> None:
    failing = FailingDirectory(str(tmp_path))
    wal = FileStorage(failing, SMALL)
    wal.load()
    wal.append([entry(1)])
    wal.sync()
    failing.fail = True
    wal.append([entry(2)])
    with pytest.raises(StorageFailed, match="EIO|Input/output"):
        wal.sync()
    failing.fail = False
    with pytest.raises(StorageFailed):
        wal.append([entry(3)])
    wal.close()
    assert load(tmp_path).entries in ((entry(1),), (entry(1), entry(2)))


def test_limits(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="max_segment_bytes"):
        WalOptions(max_segment_bytes=300, max_record_bytes=256)
    with FileStorage.open(tmp_path, SMALL) as wal:
        wal.load()
        with pytest.raises(LimitExceeded, match="append.entries\\[1\\].data"):
            wal.append([entry(1), entry(2, data=bytes(240))])
        wal.sync()
    assert load(tmp_path) == DurableState()


def test_a_full_buffer_is_synced_without_waiting(tmp_path: Path) -> None:
    options = WalOptions(max_buffer_bytes=1000)
    wal = FileStorage.open(tmp_path, options)
    wal.load()
    for i in range(1, 30):
        wal.append([entry(i, data=bytes(100))])
    wal.close()  # without sync: only what overflowed the buffer is on disk
    entries = load(tmp_path).entries
    assert 0 < len(entries) < 29
    assert entries == tuple(entry(i, data=bytes(100)) for i in range(1, len(entries) + 1))


def test_hard_state_and_snapshot_survive_the_deletion_of_their_segments(tmp_path: Path) -> None:
    with FileStorage.open(tmp_path, SMALL) as wal:
        wal.load()
        wal.set_hard_state(HardState(3, 2, 0))
        for i in range(1, 50):
            wal.append([entry(i, term=3, data=bytes(100))])
            wal.sync()
        wal.save_snapshot(Snapshot(SnapshotMeta(45, 3), b"s"))
        wal.sync()
    assert segments(tmp_path)[0].name != f"wal-{1:012d}-{1:020d}.log"
    loaded = load(tmp_path)
    assert loaded.hard_state == HardState(3, 2, 0)
    assert loaded.snapshot == Snapshot(SnapshotMeta(45, 3), b"s")


# -- file layers used above ---------------------------------------------------------------


class RecordingFile:
    def __init__(self, inner: File, name: str, calls: list[str]) -> None:
        self.inner, self.calls = inner, calls
        self.name = "wal" if name.endswith(".log") else name

    def write(self, data: bytes) -> None:
        self.calls.append(f"write {self.name}")
        self.inner.write(data)

    def sync(self) -> None:
        self.calls.append(f"fsync {self.name}")
        self.inner.sync()

    def close(self) -> None:
        self.inner.close()


class RecordingDirectory(OsDirectory):
    def __init__(self, path: str, calls: list[str]) -> None:
        super().__init__(path)
        self.calls = calls

    def create(self, name: str) -> File:
        self.calls.append(f"create {'wal' if name.endswith('.log') else name}")
        return RecordingFile(super().create(name), name, self.calls)

    def append(self, name: str) -> File:
        return RecordingFile(super().append(name), name, self.calls)

    def rename(self, src: str, dst: str) -> None:
        self.calls.append(f"rename {src} {dst}")
        super().rename(src, dst)

    def sync(self) -> None:
        self.calls.append("fsync-dir")
        super().sync()


class FailingFile:
    def __init__(self, inner: File, directory: FailingDirectory) -> None:
        self.inner, self.directory = inner, directory

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def sync(self) -> None:
        if self.directory.fail:
            raise OSError(5, "Input/output error")
        self.inner.sync()

    def close(self) -> None:
        self.inner.close()


class FailingDirectory(OsDirectory):
    fail = False

    def create(self, name: str) -> File:
        return FailingFile(super().create(name), self)

    def append(self, name: str) -> File:
        return FailingFile(super().append(name), self)
