"""SVG pieces shared by the timeline and the latency plot: the time scale, its ticks,
and elements written as strings (escaped, numbers formatted by `fmt.num`).

Both charts put their time axis in a nested `<svg class="zoom">` whose viewBox the
page's script narrows to zoom in on a time window (`assets.SCRIPT`); text inside it is
marked so the script can keep it unstretched, and ticks come in three levels of detail
that the script shows as the zoom deepens.
"""

from __future__ import annotations

from typing import Final

import attrs

from chaos.report.fmt import axis_label, esc, nice_step, num

PLOT_W: Final = 1120.0  # width of the time axis at zoom 1, in pixels
LABEL_W: Final = 112.0  # the column of row labels left of it
TICKS: Final = 10  # about this many labelled ticks at zoom 1
# Finer tick levels, shown from these zoom factors on (the script toggles `z1`, `z2`).
TICK_LEVELS: Final = ((1, 1), (5, 4), (25, 20))


@attrs.frozen
class Scale:
    """Milliseconds of the run to pixels of the plot (at zoom 1)."""

    end_ms: float
    width: float = PLOT_W

    def x(self, t: float) -> float:
        if self.end_ms <= 0:
            return 0.0
        return max(0.0, min(self.width, t / self.end_ms * self.width))

    def w(self, start: float, end: float, minimum: float = 1.5) -> float:
        """The width of [start, end], at least `minimum` so that short spans stay visible."""
        return max(minimum, self.x(end) - self.x(start))


def title(text: str) -> str:
    return f"<title>{esc(text)}</title>"


def rect(
    x: float,
    y: float,
    w: float,
    h: float,
    cls: str,
    tip: str | None = None,
    ident: str | None = None,
) -> str:
    ident_attr = f' id="{esc(ident)}"' if ident else ""
    head = (
        f'<rect{ident_attr} x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" '
        f'class="{cls}"'
    )
    return f"{head}>{title(tip)}</rect>" if tip else head + "/>"


def text(x: float, y: float, words: str, cls: str, zoomed: bool = False) -> str:
    """A label; `zoomed` when it sits in a zoomable plot (the script keeps it unstretched)."""
    mark = ' data-z="1"' if zoomed else ""
    return f'<text x="{num(x)}" y="{num(y)}" class="{cls}"{mark}>{esc(words)}</text>'


def vline(x: float, y0: float, y1: float, cls: str) -> str:
    return f'<line x1="{num(x)}" y1="{num(y0)}" x2="{num(x)}" y2="{num(y1)}" class="{cls}"/>'


def hline(x0: float, x1: float, y: float, cls: str) -> str:
    return f'<line x1="{num(x0)}" y1="{num(y)}" x2="{num(x1)}" y2="{num(y)}" class="{cls}"/>'


def time_grid(scale: Scale, top: float, bottom: float, label_y: float | None) -> list[str]:
    """Grid lines over [top, bottom] and tick labels at `label_y`, at three levels."""
    base = nice_step(scale.end_ms, TICKS)
    parts: list[str] = []
    drawn: set[int] = set()
    for level, (divide, _) in enumerate(TICK_LEVELS):
        step = base / divide
        count = int(scale.end_ms // step) + 1
        cls = f"tk{level}"
        for i in range(count):
            t = i * step
            key = round(t * 1000)
            if key in drawn:
                continue
            drawn.add(key)
            x = scale.x(t)
            parts.append(vline(x, top, bottom, f"grid {cls}"))
            if label_y is not None:
                label = axis_label(t, base)
                parts.append(text(x + 3, label_y, label, f"tick {cls}", zoomed=True))
    return parts


def zoom_plot(scale: Scale, height: float, inner: list[str]) -> str:
    """The nested, zoomable plot area, placed right of the label column."""
    width = scale.width
    return (
        f'<svg class="zoom" x="{num(LABEL_W)}" y="0" width="{num(width)}" height="{num(height)}"'
        f' viewBox="0 0 {num(width)} {num(height)}" preserveAspectRatio="none"'
        f' data-end-ms="{num(scale.end_ms)}">'
        f'<rect class="drag" x="0" y="0" width="{num(width)}" height="{num(height)}"/>'
        + "".join(inner)
        + "</svg>"
    )


def chart(name: str, height: float, labels: list[str], plot: str, defs: str = "") -> str:
    """A whole chart: its label column and its zoomable plot."""
    width = LABEL_W + PLOT_W + 4
    return (
        f'<svg class="chart" width="{num(width)}" height="{num(height)}" role="img" '
        f'aria-label="{esc(name)}">{defs}' + "".join(labels) + plot + "</svg>"
    )
