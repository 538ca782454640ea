"""The report directory: `write_report(dir, record, history_jsonl, trace_jsonl)`.

It writes four files, each atomically (a temporary file in the same directory, fsynced,
then renamed over the name), `summary.json` last:

- `history.jsonl`: the client history as given, in the checker's format
  (docs/checker.md), so `raftcluster chaos check DIR/history.jsonl --model ...` reads it
  back. It is parsed first and must hold the record's operations, in the same order
  (same process, f, key, input and outcome): the report's operation numbers are then the
  checker's;
- `trace.jsonl`: the engine's trace as given (opaque here; `run.trace_hash` is its digest);
- `report.html`: `chaos.report.html.render(record)`;
- `summary.json`: the whole record, `chaos.report.record.dumps` (`read_record` reads it back).
  Wall-clock facts are in its `run.wall` only: two runs of one seed give identical
  history, trace and report files, and summaries that differ in `run.wall` alone.

Nothing is written unless the record and the history agree.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import attrs

from chaos.checker import Event, HistoryError, Status, parse_history, thaw
from chaos.report.errors import RecordError
from chaos.report.html import render
from chaos.report.record import OpType, Record, dumps, loads

SUMMARY: Final = "summary.json"
HISTORY: Final = "history.jsonl"
TRACE: Final = "trace.jsonl"
REPORT: Final = "report.html"
FILE_MODE: Final = 0o644  # reports are for reading by anyone who can see the directory
MAX_SUMMARY_BYTES: Final = 512 * 1024 * 1024  # read_record refuses larger files

Lines = str | bytes | Iterable[str] | Iterable[bytes]
_STATUS: Final = {Status.OK: OpType.OK, Status.FAIL: OpType.FAIL, Status.INFO: OpType.INFO}


@attrs.frozen
class ReportPaths:
    """Where `write_report` put each file."""

    directory: Path
    summary: Path
    history: Path
    trace: Path
    html: Path


def write_report(
    directory: str | Path, record: Record, history_jsonl: Lines, trace_jsonl: Lines
) -> ReportPaths:
    """Write the report directory for `record` (created if missing; files replaced).

    `history_jsonl` and `trace_jsonl` are the files' contents: text or bytes, whole or as
    lines (with their newlines). Raises `RecordError` when the history cannot be read or
    does not hold the record's operations, before writing anything; `OSError` from the
    file system. A crash while writing leaves each file either old or new, never torn.
    """
    root = Path(directory)
    history = _joined(history_jsonl)
    check_history(record, history)
    page = render(record).encode("utf-8")
    root.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(root, root / SUMMARY, root / HISTORY, root / TRACE, root / REPORT)
    _atomic_write(paths.history, [history])
    _atomic_write(paths.trace, _chunks(trace_jsonl))
    _atomic_write(paths.html, [page])
    _atomic_write(paths.summary, [dumps(record).encode("utf-8")])
    _fsync_directory(root)
    return paths


def read_record(directory: str | Path) -> Record:
    """The record of a report directory (its summary.json). Raises `RecordError`."""
    path = Path(directory) / SUMMARY
    with open(path, "rb") as handle:
        data = handle.read(MAX_SUMMARY_BYTES + 1)
    if len(data) > MAX_SUMMARY_BYTES:
        raise RecordError("", f"{path} is larger than the limit of {MAX_SUMMARY_BYTES} bytes")
    return loads(data)


def history_events(record: Record) -> list[Event]:
    """The history of the record's operations, for writers that have no history file of
    their own (live runs, the example): an invoke at each call and an answer at each
    `complete_ms` (none for an info operation that never got one), in time order.

    At equal times answers come before calls (the answered operation precedes the called
    one in real time), except an operation's own answer, which follows its call.
    """
    keyed: list[tuple[tuple[float, int, int, int], Event]] = []
    for op in record.operations:
        invoke = Event(op.process, "invoke", op.f, thaw(op.input), thaw(op.key), op.invoke_ms)
        keyed.append(((op.invoke_ms, 1, op.index, 0), invoke))
        if op.complete_ms is None:
            continue
        output = thaw(op.output) if op.type is OpType.OK else thaw(op.input)
        answer = Event(
            op.process, op.type.value, op.f, output, thaw(op.key), op.complete_ms, thaw(op.error)
        )
        instant = op.complete_ms == op.invoke_ms
        keyed.append(((op.complete_ms, 1 if instant else 0, op.index, 1), answer))
    keyed.sort(key=lambda pair: pair[0])
    return [event for _, event in keyed]


def history_lines(record: Record) -> list[str]:
    """`history_events(record)` as the lines of a history file."""
    return [event.to_json_line(i) + "\n" for i, event in enumerate(history_events(record))]


def check_history(record: Record, history: bytes) -> None:
    """The history file holds the record's operations, in order. Raises `RecordError`."""
    try:
        parsed = parse_history(history.splitlines(keepends=True), HISTORY)
    except HistoryError as e:
        raise RecordError(f"{HISTORY}:{e.line}", e.reason) from None
    ops = parsed.operations
    if len(ops) != len(record.operations):
        raise RecordError(
            HISTORY, f"holds {len(ops)} operations, the record {len(record.operations)}"
        )
    for op, mine in zip(ops, record.operations, strict=True):
        theirs = (op.process, op.f, op.key, op.input, _STATUS[op.status])
        ours = (mine.process, mine.f, mine.key, mine.input, mine.type)
        if theirs != ours or (mine.type is OpType.OK and op.output != mine.output):
            raise RecordError(
                f"{HISTORY}:{op.line}",
                f"operation {op.id} is {_summary(theirs, op.output)} in the history but "
                f"{_summary(ours, mine.output)} in the record",
            )


def _summary(fields: tuple[object, ...], output: object) -> str:
    process, f, key, value, outcome = fields
    assert isinstance(outcome, OpType)
    at = "" if key is None else f"[{thaw(key)!r}]"
    return f"process {process} {f}{at}({thaw(value)!r}) -> {outcome.value} {thaw(output)!r}"


def _joined(lines: Lines) -> bytes:
    return b"".join(_chunks(lines))


def _chunks(lines: Lines) -> Iterable[bytes]:
    if isinstance(lines, bytes):
        yield lines
    elif isinstance(lines, str):
        yield lines.encode("utf-8")
    else:
        for line in lines:
            yield line.encode("utf-8") if isinstance(line, str) else line


def _atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        # Any failure, cancellation included, must not leave the temporary file behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _fsync_directory(path: Path) -> None:
    """Make the renames durable (where the platform can open a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
