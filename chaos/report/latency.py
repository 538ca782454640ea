"""The latency plot: each answered operation a point at (call time, latency), coloured by
outcome, with the median and 99th percentile of successful operations over time as
lines; operations with an unknown outcome (no latency) as ticks in a `pending` row at
the top. The time axis is the timeline's, and zooms with it.

Points are drawn one by one with a tooltip up to `MAX_TIPPED` operations, and past it
as one path per outcome holding at most `MAX_POINTS` of them (every k-th operation, k
as small as fits); the percentile lines always use every operation. Operations that
violations name are always drawn, ringed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import attrs

from chaos.report import svg
from chaos.report.fmt import ms, nice_step, num, op_line
from chaos.report.record import ClientOp, OpType, Record
from chaos.report.svg import LABEL_W, PLOT_W, Scale
from chaos.report.timeline import highlighted_ops

MAX_TIPPED: Final = 1_500
MAX_POINTS: Final = 5_000
# Percentile lines: one point per time bin, about OPS_PER_BIN successful operations a bin
# on average, between MIN_BINS and MAX_BINS bins; a bin with fewer than MIN_BIN_OPS
# successful operations has no point (the line breaks there).
OPS_PER_BIN: Final = 20
MIN_BINS: Final = 4
MAX_BINS: Final = 48
MIN_BIN_OPS: Final = 5
PENDING_Y: Final = 6.0
PLOT_TOP: Final = 30.0
PLOT_H: Final = 190.0
MIN_LOG_MS: Final = 1e-6  # the smallest latency a log scale shows (a nanosecond)
LOG_RANGE: Final = 50.0  # a log scale once the slowest is this many times the fastest


@attrs.frozen
class LatencyPlot:
    svg: str
    notes: tuple[str, ...]


@attrs.frozen
class YScale:
    """Latency (ms) to y, linear from 0 or logarithmic over whole decades."""

    lo: float
    hi: float
    log: bool

    @classmethod
    def fit(cls, latencies: Sequence[float]) -> YScale:
        hi = max(latencies, default=1.0)
        # Latencies under a nanosecond are below any clock a history is taken with; a
        # log scale down to them would reach 10**-324, which is 0.0 (a float underflow).
        positive = [max(v, MIN_LOG_MS) for v in latencies if v > 0]
        lo = min(positive, default=hi)
        if positive and hi / lo >= LOG_RANGE:
            d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
            return cls(10.0**d0, 10.0 ** max(d1, d0 + 1), True)
        step = nice_step(hi or 1.0, 4)
        return cls(0.0, step * math.ceil((hi or 1.0) / step), False)

    def y(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = v / self.hi if self.hi else 0.0
        return PLOT_TOP + PLOT_H * (1 - min(max(f, 0.0), 1.0))

    def ticks(self) -> list[float]:
        if self.log:
            d0, d1 = round(math.log10(self.lo)), round(math.log10(self.hi))
            return [10.0**d for d in range(d0, d1 + 1)]
        step = nice_step(self.hi, 4)
        return [i * step for i in range(int(round(self.hi / step)) + 1)]


def latency(op: ClientOp) -> float | None:
    if op.type is OpType.INFO or op.complete_ms is None:
        return None
    return float(op.complete_ms - op.invoke_ms)


def render_latency(record: Record) -> LatencyPlot:
    ops = record.operations
    scale = Scale(float(record.end_ms))
    answered = [op for op in ops if latency(op) is not None]
    ys = YScale.fit([latency(op) or 0.0 for op in answered])
    height = PLOT_TOP + PLOT_H + 24
    labels = [
        svg.text(LABEL_W - 10, PENDING_Y + 9, "pending", "lanel"),
    ]
    inner = svg.time_grid(scale, PLOT_TOP, PLOT_TOP + PLOT_H, height - 6)
    for tick in ys.ticks():
        y = ys.y(tick)
        labels.append(svg.text(LABEL_W - 10, y + 4, _latency_label(tick), "row"))
        inner.append(svg.hline(0, PLOT_W, y, "grid ygrid"))
    notes: list[str] = []
    inner += _pending(record, scale)
    inner += _points(record, answered, scale, ys, notes)
    inner += _percentiles(answered, scale, ys)
    for violation in record.violations:
        if violation.time_ms is not None:
            inner.append(svg.vline(scale.x(violation.time_ms), 0, PLOT_TOP + PLOT_H, "vline"))
    plot = svg.zoom_plot(scale, height, inner)
    return LatencyPlot(svg.chart("latency", height, labels, plot), tuple(notes))


def _latency_label(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g} s"
    return f"{v:g} ms"


def _dot(x: float, y: float) -> str:
    return f"M{num(x)} {num(y)}h0"


def _point(op: ClientOp, x: float, y: float) -> str:
    tip = svg.title(op_line(op))
    return f'<path class="pt o-{op.type.value}" d="{_dot(x, y)}">{tip}</path>'


def _pending(record: Record, scale: Scale) -> list[str]:
    """A tick per operation with an unknown outcome, at its call; one path past MAX_TIPPED."""
    pending = [op for op in record.operations if op.type is OpType.INFO]
    if len(pending) > MAX_TIPPED:
        d = "".join(f"M{num(scale.x(op.invoke_ms))} {num(PENDING_Y)}v12" for op in pending)
        return [f'<path class="ptick" d="{d}"/>']
    return [
        f'<path class="ptick" d="M{num(scale.x(op.invoke_ms))} {num(PENDING_Y)}v12">'
        f"{svg.title(op_line(op))}</path>"
        for op in pending
    ]


def _points(
    record: Record, answered: list[ClientOp], scale: Scale, ys: YScale, notes: list[str]
) -> list[str]:
    marks = highlighted_ops(record)

    def at(op: ClientOp) -> tuple[float, float]:
        return scale.x(op.invoke_ms), ys.y(latency(op) or 0.0)

    parts: list[str] = []
    if len(answered) <= MAX_TIPPED:
        parts.extend(_point(op, *at(op)) for op in answered if op.index not in marks)
    else:
        stride = math.ceil(len(answered) / MAX_POINTS)
        for kind in (OpType.OK, OpType.FAIL):
            chosen = [op for op in answered[::stride] if op.type is kind]
            d = "".join(_dot(*at(op)) for op in chosen)
            parts.append(f'<path class="pt o-{kind.value}" d="{d}"/>')
        if stride > 1:
            notes.append(
                f"The latency plot shows every {stride}th of {len(answered):,} answered "
                "operations (its percentile lines use them all)."
            )
    for op in answered:
        if op.index in marks:
            x, y = at(op)
            parts.append(f'<path class="ring" d="{_dot(x, y)}"/>')
            parts.append(_point(op, x, y))
    return parts


def _percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p of them at or below it."""
    rank = max(1, math.ceil(p * len(sorted_values)))
    return sorted_values[rank - 1]


def _percentiles(answered: list[ClientOp], scale: Scale, ys: YScale) -> list[str]:
    ok = [op for op in answered if op.type is OpType.OK]
    count = max(MIN_BINS, min(MAX_BINS, len(ok) // OPS_PER_BIN))
    width = scale.end_ms / count if scale.end_ms > 0 else 1.0
    bins: list[list[float]] = [[] for _ in range(count)]
    for op in ok:
        bins[min(int(op.invoke_ms // width), count - 1)].append(latency(op) or 0.0)
    return [_line(bins, width, scale, ys, p, cls) for p, cls in ((0.5, "p50"), (0.99, "p99"))]


def _line(
    bins: list[list[float]], width: float, scale: Scale, ys: YScale, p: float, cls: str
) -> str:
    d, pen_down = [], False
    for k, values in enumerate(bins):
        if len(values) < MIN_BIN_OPS:
            pen_down = False
            continue
        x, y = scale.x((k + 0.5) * width), ys.y(_percentile(sorted(values), p))
        d.append(f"{'L' if pen_down else 'M'}{num(x)} {num(y)}")
        pen_down = True
    which = "median" if cls == "p50" else "99th percentile"
    tip = svg.title(f"{which} latency of successful operations, per {ms(round(width))}")
    return f'<path class="{cls}" d="{"".join(d) or "M0 0"}">{tip}</path>'
