"""The file WAL on this machine's disk: appends + sync per second, and recovery speed.

For batches of 1, 16 and 64 entries of 100 bytes, each batch is one `append` and one
`sync` (one write, one fsync). The peer is the floor: the same bytes appended to a
plain file with one `os.write` and one `os.fsync` per batch, measured in the same run.
Then `load()` of the log written, in entries per second.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.table import Row
from raftcluster.raft.types import Entry
from raftcluster.storage import FileStorage
from raftcluster.storage.records import RecordType, entry_payload, frame

ENTRY_BYTES = 100
BATCHES = (1, 16, 64)


def run(quick: bool) -> list[Row]:
    # Rounds alternate WAL and peer and the median is kept: the disk is shared and noisy.
    rounds, seconds = (1, 0.5) if quick else (5, 1.0)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as root:
        for batch in BATCHES:
            wal_rates, raw_rates = [], []
            for r in range(rounds):
                wal_rate, entries = _wal(Path(root) / f"wal-{batch}-{r}", batch, seconds)
                wal_rates.append(wal_rate)
                raw_rates.append(_raw(Path(root) / f"raw-{batch}-{r}", batch, seconds))
            wal_rate, raw_rate = statistics.median(wal_rates), statistics.median(raw_rates)
            rows.append(
                Row(
                    f"wal append+sync, {batch} x {ENTRY_BYTES} B",
                    wal_rate,
                    "batches/s",
                    "raw write+fsync",
                    raw_rate,
                    note=f"{wal_rate * batch:,.0f} entries/s; median of {rounds}",
                )
            )
        load_rate, count = _load(Path(root) / f"wal-{BATCHES[-1]}-{rounds - 1}", entries)
        rows.append(Row("wal load", load_rate, "entries/s", note=f"{count:,} entries"))
    return rows


def _wal(path: Path, batch: int, seconds: float) -> tuple[float, int]:
    data = bytes(ENTRY_BYTES)
    index = 0
    with FileStorage.open(path) as wal:
        wal.load()
        started = time.perf_counter()
        batches = 0
        while time.perf_counter() - started < seconds:
            wal.append([Entry(1, index + i + 1, data=data) for i in range(batch)])
            wal.sync()
            index += batch
            batches += 1
        elapsed = time.perf_counter() - started
    return batches / elapsed, index


def _raw(path: Path, batch: int, seconds: float) -> float:
    record = frame(RecordType.ENTRY, entry_payload(Entry(1, 1, data=bytes(ENTRY_BYTES))))
    chunk = record * batch
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        started = time.perf_counter()
        batches = 0
        while time.perf_counter() - started < seconds:
            os.write(fd, chunk)
            os.fsync(fd)
            batches += 1
        return batches / (time.perf_counter() - started)
    finally:
        os.close(fd)


def _load(path: Path, expected: int) -> tuple[float, int]:
    started = time.perf_counter()
    with FileStorage.open(path) as wal:
        state = wal.load()
    elapsed = time.perf_counter() - started
    assert len(state.entries) == expected, (len(state.entries), expected)
    return expected / elapsed, expected
