"""Run records and reports (docs/report.md).

from chaos.report import Record, render, write_report
record = Record.from_json(json.load(f))       # validated; RecordError(path, reason) if not
html = render(record)                          # one self-contained page, deterministic
write_report("run-7", record, history_lines, trace_lines)
"""

from __future__ import annotations

from chaos.report.directory import (
    ReportPaths,
    check_history,
    history_events,
    history_lines,
    read_record,
    write_report,
)
from chaos.report.errors import RecordError
from chaos.report.html import render
from chaos.report.record import (
    FORMAT,
    CheckerRun,
    ClientOp,
    Engine,
    Fault,
    Interval,
    IntervalKind,
    LinearizabilityWitness,
    Mode,
    OpType,
    Record,
    RunInfo,
    RunVerdict,
    Violation,
    dumps,
    loads,
)

__all__ = [
    "FORMAT",
    "CheckerRun",
    "ClientOp",
    "Engine",
    "Fault",
    "Interval",
    "IntervalKind",
    "LinearizabilityWitness",
    "Mode",
    "OpType",
    "Record",
    "RecordError",
    "ReportPaths",
    "RunInfo",
    "RunVerdict",
    "Violation",
    "check_history",
    "dumps",
    "history_events",
    "history_lines",
    "loads",
    "read_record",
    "render",
    "write_report",
]
