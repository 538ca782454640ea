"""`render(record) -> str`: the run report, one self-contained HTML page (docs/report.md).

Inline style, inline SVG charts and a little inline script (tooltips, zoom, copy): the page
loads nothing from anywhere. Every value from the record is escaped, and none goes into
the script. The page is a function of the record alone, wall-clock fields excepted (they
are not shown: they are in summary.json), so two runs of one seed give the same bytes.

Size: past `timeline.MAX_DRAWN_OPS` operations the client lanes are aggregated and the
latency plot samples its points (`latency.MAX_POINTS`); faults and intervals drawn are
capped too. A record at the schema's limits gives a page of about 3 MB (10,000
operations: about 0.4 MB); the page says what it left out (docs/report.md, "Limits").
"""

from __future__ import annotations

from typing import Final

from chaos.report import sections
from chaos.report.assets import SCRIPT, STYLE
from chaos.report.fmt import esc
from chaos.report.latency import render_latency
from chaos.report.record import Record
from chaos.report.timeline import render_timeline

TIMELINE_LEGEND: Final = (
    ("r-leader", "leader (term)"),
    ("r-candidate", "candidate"),
    ("r-follower", "follower"),
    ("crashed", "crashed"),
    ("paused", "paused"),
    ("isolated", "isolated"),
    ("side0", "partition: one side"),
    ("side1", "another side"),
    ("o-ok", "ok"),
    ("o-fail", "fail"),
    ("o-info", "info (outcome unknown)"),
    ("tail", "pending to the end"),
    ("hl", "named by a violation"),
)
LATENCY_LEGEND: Final = (
    ("dot o-ok", "ok"),
    ("dot o-fail", "fail"),
    ("p50", "median (ok)"),
    ("p99", "99th percentile (ok)"),
    ("o-info", "pending (tick at its call)"),
)
# Swatch colours of the legend's classes that the SVG styles by fill.
SWATCH: Final = {
    "r-leader": "#2563eb",
    "r-candidate": "#f59e0b",
    "r-follower": "#cbd5e1",
    "side0": "#fecdd3",
    "side1": "#bfdbfe",
    "o-ok": "#16a34a",
    "o-fail": "#ea580c",
    "o-info": "#9ca3af",
}


def _legend(items: tuple[tuple[str, str], ...]) -> str:
    spans = []
    for cls, words in items:
        colour = SWATCH.get(cls.split()[-1])
        style = f' style="background:{colour}"' if colour else ""
        spans.append(f'<span><i class="sw {cls}"{style}></i>{esc(words)}</span>')
    return f'<div class="legend">{"".join(spans)}</div>'


ZOOM_BAR: Final = (
    '<div class="zoombar"><button type="button" data-zoom="in">zoom in</button>'
    '<button type="button" data-zoom="out">zoom out</button>'
    '<button type="button" data-zoom="reset">reset</button>'
    '<span class="zstate"></span><span class="muted">drag across a chart to zoom in on a '
    "time window, double-click to zoom out; hover for details</span></div>"
)


def render(record: Record) -> str:
    """The report page for `record`: the same record always gives the same text."""
    timeline = render_timeline(record)
    latency = render_latency(record)
    run = record.run
    title = f"seed {run.seed} \u00b7 {run.verdict.value} \u00b7 {run.engine.value} chaos run"
    body = [
        sections.header(record),
        '<section id="timeline"><h2>Timeline</h2><div class="chartbox">',
        ZOOM_BAR,
        timeline.svg,
        _legend(TIMELINE_LEGEND),
        "</div></section>",
        '<section id="latency"><h2>Latency</h2><div class="chartbox">',
        latency.svg,
        _legend(LATENCY_LEGEND),
        "</div></section>",
        sections.violations(record),
        sections.faults_table(record),
        sections.leaders_table(record),
        sections.notes_section(record, list(timeline.notes + latency.notes)),
        "<footer>Run record format 1. This page is a function of the record alone: the same "
        "run gives the same bytes. Wall-clock facts (when it ran, how long it took) are in "
        "summary.json only.</footer>",
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
            f"<title>{esc(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            '<div id="tip"></div>',
            "<main>",
            *body,
            "</main>",
            f"<script>{SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )
