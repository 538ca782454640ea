"""The timeline: one SVG with time across and, from top to bottom,

- the time axis;
- fault lanes: each fault a bar from its start to its end, packed into lanes so that
  overlapping faults do not hide each other;
- one row per node: its role (leader in blue with its term, candidate, follower), its
  conditions drawn hatched over it (crashed, paused, isolated), the row tinted by side
  while a partition cuts it, and a thin strip in the fault's colour for other faults
  that touch the node;
- client lanes, one per process: each operation a bar from invoke to answer, coloured
  by outcome; an operation with an unknown outcome (info) stays pending to the end, drawn
  as a thin tail to the end of the lane;
- violations: a line at their time, a mark on their nodes, and their operations ringed.

Past `MAX_DRAWN_OPS` operations the lanes are aggregated into `BIN_PX`-pixel bins
(coloured by the worst outcome in them, counts on hover), and only the operations that
violations name are drawn one by one; the page says so.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Final

import attrs

from chaos.report import svg
from chaos.report.fmt import describe, ms, nodes, num, op_line, span
from chaos.report.record import (
    KNOWN_FAULT_KINDS,
    ClientOp,
    Fault,
    Interval,
    IntervalKind,
    OpType,
    Record,
)
from chaos.report.svg import LABEL_W, PLOT_W, Scale

MAX_DRAWN_OPS: Final = 4_000  # operations drawn one by one; past it lanes are aggregated
MAX_HIGHLIGHTED: Final = 500  # violation operations drawn one by one in any case
MAX_LANES: Final = 64  # client lanes; more processes share lanes (process rank mod 64)
MAX_FAULT_LANES: Final = 8  # fault lanes; more overlapping faults share the last one
MAX_DRAWN_FAULTS: Final = 1_000
MAX_DRAWN_INTERVALS: Final = 5_000
BIN_PX: Final = 4.0  # width of an aggregation bin at zoom 1
AXIS_H: Final = 24.0
FAULT_LANE_H: Final = 16.0
NODE_ROW_H: Final = 26.0
ROLE_H: Final = 12.0
# Client lanes are thinner when there are many: (lanes up to, height, gap).
OP_LANE_SIZES: Final = ((8, 14.0, 4.0), (24, 11.0, 3.0), (MAX_LANES, 8.0, 2.0))
SECTION_GAP: Final = 14.0
SIDES: Final = 4  # partition sides get one of this many tints
OUTCOME_RANK: Final = {OpType.OK: 0, OpType.INFO: 1, OpType.FAIL: 2}  # the worst shows


@attrs.frozen
class Timeline:
    """The rendered timeline and what the page should say about what it left out."""

    svg: str
    notes: tuple[str, ...]


def highlighted_ops(record: Record) -> dict[int, str]:
    """Operation index -> its highlight class: `blk` for a witness's blocked operation,
    `hl` for every other operation a violation names (its ops, candidates and core)."""
    marks: dict[int, str] = {}
    for violation in record.violations:
        named = set(violation.ops)
        if violation.witness is not None:
            named |= set(violation.witness.candidates) | set(violation.witness.core or ())
            marks[violation.witness.blocked] = "blk"
        for index in named:
            marks.setdefault(index, "hl")
    return marks


class _Builder:
    def __init__(self, record: Record) -> None:
        self.record = record
        self.scale = Scale(float(record.end_ms))
        self.labels: list[str] = []
        self.back: list[str] = []  # drawn first: grid, tints
        self.parts: list[str] = []
        self.front: list[str] = []  # drawn last: violation marks
        self.notes: list[str] = []
        self.y = AXIS_H + 6
        self.node_y: dict[int, float] = {}
        self.lane_h = 0.0  # the height of a client lane

    def section(self, name: str) -> None:
        self.labels.append(svg.text(8, self.y + 11, name, "sect"))
        self.y += 16

    def label(self, y: float, words: str, cls: str = "row") -> None:
        self.labels.append(svg.text(LABEL_W - 10, y, words, cls))


def render_timeline(record: Record) -> Timeline:
    b = _Builder(record)
    _faults(b)
    _nodes(b)
    _clients(b)
    _violations(b)
    height = b.y + 8
    inner = svg.time_grid(b.scale, AXIS_H - 6, height, 14) + b.back + b.parts + b.front
    chart = svg.chart("timeline", height, b.labels, svg.zoom_plot(b.scale, height, inner), DEFS)
    return Timeline(chart, tuple(b.notes))


# Hatching for conditions, and the ring around violation operations.
DEFS: Final = (
    "<defs>"
    '<pattern id="h-crashed" patternUnits="userSpaceOnUse" width="6" height="6" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fee2e2"/>'
    '<rect width="2.5" height="6" fill="#991b1b"/></pattern>'
    '<pattern id="h-paused" patternUnits="userSpaceOnUse" width="6" height="6" '
    'patternTransform="rotate(-45)"><rect width="6" height="6" fill="#e2e8f0"/>'
    '<rect width="2" height="6" fill="#475569"/></pattern>'
    '<pattern id="h-isolated" patternUnits="userSpaceOnUse" width="5" height="5">'
    '<rect width="5" height="5" fill="#f3e8ff"/><rect width="1.5" height="5" fill="#7e22ce"/>'
    '<rect width="5" height="1.5" fill="#7e22ce"/></pattern>'
    "</defs>"
)


# ---------------------------------------------------------------------------------------
# Faults


def _fault_lanes(faults: tuple[Fault, ...], end_ms: float) -> list[int]:
    """A lane per fault (in record order), packed greedily in order of start: the first
    lane whose faults have all ended by then; past MAX_FAULT_LANES, the last lane."""
    ends: list[float] = []
    lanes = [0] * len(faults)
    for i in sorted(range(len(faults)), key=lambda i: (faults[i].start_ms, i)):
        fault = faults[i]
        finish = end_ms if fault.end_ms is None else float(fault.end_ms)
        lane = next((k for k, e in enumerate(ends) if e <= fault.start_ms), None)
        if lane is None and len(ends) < MAX_FAULT_LANES:
            lane = len(ends)
            ends.append(finish)
        elif lane is None:
            lane = MAX_FAULT_LANES - 1
        ends[lane] = max(ends[lane], finish)
        lanes[i] = lane
    return lanes


def _fault_tip(fault: Fault) -> str:
    detail = f": {fault.detail}" if fault.detail else ""
    when = span(fault.start_ms, fault.end_ms)
    return f"{fault.kind}{detail} \u00b7 {when} \u00b7 nodes {nodes(fault.nodes)}"


def _faults(b: _Builder) -> None:
    faults = b.record.faults[:MAX_DRAWN_FAULTS]
    if len(b.record.faults) > MAX_DRAWN_FAULTS:
        b.notes.append(
            f"The timeline draws the first {MAX_DRAWN_FAULTS:,} of "
            f"{len(b.record.faults):,} faults; the table below lists them."
        )
    if not faults:
        return
    b.section("faults")
    lanes = _fault_lanes(faults, b.scale.end_ms)
    for fault, lane in zip(faults, lanes, strict=True):
        y = b.y + lane * FAULT_LANE_H
        end = b.scale.end_ms if fault.end_ms is None else fault.end_ms
        x, w = b.scale.x(fault.start_ms), b.scale.w(fault.start_ms, end, 3)
        kind = _kind_class(fault.kind)
        b.parts.append(svg.rect(x, y + 1, w, FAULT_LANE_H - 3, f"fault {kind}", _fault_tip(fault)))
        words = _fitting(w, f"{fault.kind} {fault.detail}".strip(), fault.kind)
        if words:
            b.parts.append(svg.text(x + 4, y + FAULT_LANE_H - 5, words, "fl", zoomed=True))
    b.y += (max(lanes) + 1) * FAULT_LANE_H + SECTION_GAP


def _kind_class(kind: str) -> str:
    return f"k-{kind}" if kind in KNOWN_FAULT_KINDS else "k-other"


def _fitting(width: float, *choices: str, char_px: float = 6.2) -> str:
    """The first of `choices` whose estimated width fits in `width`, else ''."""
    for words in choices:
        if len(words) * char_px + 8 <= width:
            return words
    return ""


# ---------------------------------------------------------------------------------------
# Nodes


def _nodes(b: _Builder) -> None:
    b.section("nodes")
    for node in b.record.run.nodes:
        b.node_y[node] = b.y
        b.label(b.y + NODE_ROW_H / 2 + 4, f"node {node}")
        b.back.append(svg.rect(0, b.y, PLOT_W, NODE_ROW_H - 2, "lane"))
        b.y += NODE_ROW_H
    _fault_marks(b)
    intervals = b.record.intervals[:MAX_DRAWN_INTERVALS]
    if len(b.record.intervals) > MAX_DRAWN_INTERVALS:
        b.notes.append(
            f"The timeline draws the first {MAX_DRAWN_INTERVALS:,} of "
            f"{len(b.record.intervals):,} node intervals."
        )
    roles = [i for i in intervals if i.kind.is_role]
    conditions = [i for i in intervals if not i.kind.is_role]
    for interval in roles + conditions:
        _interval(b, interval)
    b.y += SECTION_GAP


def _interval(b: _Builder, interval: Interval) -> None:
    top = b.node_y[interval.node]
    x, w = b.scale.x(interval.start_ms), b.scale.w(interval.start_ms, interval.end_ms, 1)
    term = f", term {interval.term}" if interval.term is not None else ""
    tip = (
        f"node {interval.node} \u00b7 {interval.kind.value}{term} \u00b7 "
        f"{span(interval.start_ms, interval.end_ms)}"
    )
    if interval.kind.is_role:
        y = top + (NODE_ROW_H - 2 - ROLE_H) / 2
        b.parts.append(svg.rect(x, y, w, ROLE_H, f"r-{interval.kind.value}", tip))
        if interval.kind is IntervalKind.LEADER:
            words = _fitting(w, f"term {interval.term}", f"t{interval.term}")
            if words:
                b.parts.append(svg.text(x + 4, y + ROLE_H - 4, words, "tl", zoomed=True))
        return
    b.parts.append(svg.rect(x, top + 1, w, NODE_ROW_H - 4, f"c-{interval.kind.value}", tip))
    words = _fitting(w, interval.kind.value)
    if words:
        b.parts.append(svg.text(x + 4, top + NODE_ROW_H / 2 + 3, words, "cl", zoomed=True))


def _fault_marks(b: _Builder) -> None:
    """Partitions tint each side's rows; other faults mark the rows they touch."""
    for fault in b.record.faults[:MAX_DRAWN_FAULTS]:
        end = b.scale.end_ms if fault.end_ms is None else fault.end_ms
        x, w = b.scale.x(fault.start_ms), b.scale.w(fault.start_ms, end, 2)
        if fault.groups:
            for side, group in enumerate(fault.groups):
                tip = f"{_fault_tip(fault)} \u00b7 this side: {{{nodes(group)}}}"
                for node in group:
                    y = b.node_y[node]
                    b.back.append(svg.rect(x, y, w, NODE_ROW_H - 2, f"side{side % SIDES}", tip))
            continue
        for node in fault.nodes:
            b.back.append(svg.rect(x, b.node_y[node], w, 3, f"mark {_kind_class(fault.kind)}"))


# ---------------------------------------------------------------------------------------
# Client operations


def _lanes(ops: tuple[ClientOp, ...]) -> tuple[dict[int, int], list[list[int]]]:
    """Lane per process (processes in increasing order; more than MAX_LANES share)."""
    processes = sorted({op.process for op in ops})
    lane_of = {p: rank % MAX_LANES for rank, p in enumerate(processes)}
    members: list[list[int]] = [[] for _ in range(min(len(processes), MAX_LANES))]
    for p in processes:
        members[lane_of[p]].append(p)
    return lane_of, members


def _clients(b: _Builder) -> None:
    ops = b.record.operations
    if not ops:
        return
    b.section("clients")
    lane_of, members = _lanes(ops)
    if len(members) < len({op.process for op in ops}):
        b.notes.append(
            f"{len(lane_of)} processes share {MAX_LANES} client lanes "
            f"(process rank mod {MAX_LANES})."
        )
    b.lane_h, gap = next((h, g) for n, h, g in OP_LANE_SIZES if len(members) <= n)
    tops = []
    for lane, procs in enumerate(members):
        top = b.y + lane * (b.lane_h + gap)
        tops.append(top)
        name = f"process {procs[0]}" if len(procs) == 1 else f"p{procs[0]} +{len(procs) - 1}"
        b.label(top + b.lane_h / 2 + 3, name, "lanel")
    _pending_tails(b, ops, lane_of, tops)
    marks = highlighted_ops(b.record)
    if len(ops) <= MAX_DRAWN_OPS:
        for op in ops:
            if op.index not in marks:
                _op_bar(b, op, tops[lane_of[op.process]])
    else:
        _aggregate(b, ops, lane_of, tops)
        b.notes.append(
            f"{len(ops):,} operations: more than {MAX_DRAWN_OPS:,}, so client lanes show them "
            f"aggregated in {BIN_PX:g}-pixel bins (the worst outcome colours a bin; hover for "
            "counts); operations named by violations are still drawn one by one."
        )
    _highlighted(b, ops, marks, lane_of, tops)
    b.y += len(members) * (b.lane_h + gap) + SECTION_GAP


def _op_bar(b: _Builder, op: ClientOp, top: float, extra: str = "") -> None:
    end = op.complete_ms if op.complete_ms is not None else op.invoke_ms
    x, w = b.scale.x(op.invoke_ms), b.scale.w(op.invoke_ms, end)
    cls = f"op o-{op.type.value}{extra}"
    b.parts.append(svg.rect(x, top, w, b.lane_h, cls, op_line(op), f"op-{op.index}"))


def _pending_tails(
    b: _Builder, ops: tuple[ClientOp, ...], lane_of: dict[int, int], tops: list[float]
) -> None:
    """One tail per lane, from its first info operation's answer (or call) to the end."""
    first: dict[int, ClientOp] = {}
    count: dict[int, int] = defaultdict(int)
    for op in ops:
        if op.type is OpType.INFO:
            lane = lane_of[op.process]
            count[lane] += 1
            first.setdefault(lane, op)
    for lane, op in sorted(first.items()):
        start = op.complete_ms if op.complete_ms is not None else op.invoke_ms
        x = b.scale.x(start)
        tip = (
            f"{count[lane]} operation(s) with an unknown outcome in this lane stay pending to "
            f"the end (the first: #{op.index} {describe(op)}, called at {ms(op.invoke_ms)})"
        )
        y = tops[lane] + b.lane_h / 2 - 1.5
        b.back.append(svg.rect(x, y, PLOT_W - x, 3, "tail", tip))


def _aggregate(
    b: _Builder, ops: tuple[ClientOp, ...], lane_of: dict[int, int], tops: list[float]
) -> None:
    bins = int(PLOT_W // BIN_PX) + 1
    worst: dict[tuple[int, int], int] = {}
    started: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for op in ops:
        lane = lane_of[op.process]
        end = op.complete_ms if op.complete_ms is not None else op.invoke_ms
        first = int(b.scale.x(op.invoke_ms) // BIN_PX)
        last = max(first, int(b.scale.x(end) // BIN_PX))
        rank = OUTCOME_RANK[op.type]
        started[(lane, first)][rank] += 1
        for k in range(first, min(last, bins - 1) + 1):
            worst[(lane, k)] = max(worst.get((lane, k), -1), rank)
    for lane, top in enumerate(tops):
        _aggregate_lane(b, lane, top, worst, started, bins)


def _aggregate_lane(
    b: _Builder,
    lane: int,
    top: float,
    worst: dict[tuple[int, int], int],
    started: dict[tuple[int, int], list[int]],
    bins: int,
) -> None:
    """Runs of bins with the same worst outcome become one bar with summed counts."""
    names = ("ok", "info", "fail")
    k = 0
    while k < bins:
        rank = worst.get((lane, k))
        if rank is None:
            k += 1
            continue
        first, counts = k, [0, 0, 0]
        while k < bins and worst.get((lane, k)) == rank:
            for i, n in enumerate(started.get((lane, k), (0, 0, 0))):
                counts[i] += n
            k += 1
        t0 = first * BIN_PX / PLOT_W * b.scale.end_ms
        t1 = min(k * BIN_PX / PLOT_W * b.scale.end_ms, b.scale.end_ms)
        summary = ", ".join(f"{n} {names[i]}" for i, n in enumerate(counts) if n)
        tip = f"{span(round(t0), round(t1))}: operations called: {summary or 'none'}"
        x = first * BIN_PX
        b.parts.append(
            svg.rect(x, top, min(k * BIN_PX, PLOT_W) - x, b.lane_h, f"op o-{names[rank]}", tip)
        )


def _highlighted(
    b: _Builder,
    ops: tuple[ClientOp, ...],
    marks: dict[int, str],
    lane_of: dict[int, int],
    tops: list[float],
) -> None:
    """Violation operations: a halo behind, the bar with a ring on top, blocked first."""
    chosen = sorted(marks, key=lambda i: (marks[i] != "blk", i))[:MAX_HIGHLIGHTED]
    if len(marks) > MAX_HIGHLIGHTED:
        b.notes.append(
            f"Violations name {len(marks):,} operations; the timeline rings the first "
            f"{MAX_HIGHLIGHTED}."
        )
    for index in sorted(chosen):
        op = ops[index]
        top = tops[lane_of[op.process]]
        end = op.complete_ms if op.complete_ms is not None else op.invoke_ms
        x, w = b.scale.x(op.invoke_ms), b.scale.w(op.invoke_ms, end)
        b.back.append(svg.rect(x, top, w, b.lane_h, f"halo {marks[index]}"))
        _op_bar(b, op, top, f" {marks[index]}")


# ---------------------------------------------------------------------------------------
# Violations


def _violations(b: _Builder) -> None:
    for n, violation in enumerate(b.record.violations):
        if violation.time_ms is None:
            continue
        x = b.scale.x(violation.time_ms)
        tip = f"violation {n + 1}: {violation.kind} at {ms(violation.time_ms)}"
        b.front.append(svg.vline(x, AXIS_H - 6, b.y, "vline"))
        words = f"\u26a0 {violation.kind}"[:28]
        b.front.append(
            f'<g class="vflag" data-z="1" data-x="{num(x)}">{svg.title(tip)}'
            + svg.rect(x - 1, 1, len(words) * 6.6 + 8, 15, "vflagbox")
            + svg.text(x + 3, 12, words, "vflagt")
            + "</g>"
        )
        for node in violation.nodes:
            y = b.node_y[node] + (NODE_ROW_H - 2) / 2
            b.front.append(
                f'<path class="vnode" data-z="1" data-x="{num(x)}" '
                f'd="M{num(x)} {num(y - 7)}l7 7l-7 7l-7 -7z">'
                f"{svg.title(f'{tip}, node {node}')}</path>"
            )
