"""A campaign's report directory: one subdirectory per seed (`seed-N/`, a run's report),
`summary.json` (the campaign's JSON document) and `index.html`, a page that links each
seed's page. The index shows no wall-clock fact (those are in summary.json), so a
campaign's index is a function of its seeds and settings.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from chaos.campaign.campaign import INDEX, SUMMARY, CampaignResult, SeedRow, seed_dir
from chaos.report.directory import REPORT

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1c1917}
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #e7e5e4;
text-align:right}td.l,th.l{text-align:left}.ok{color:#15803d}.bad{color:#b91c1c;font-weight:600}
code{background:#f5f5f4;padding:.1em .3em}
"""


def write_index(directory: Path, campaign: CampaignResult) -> None:
    """Write `summary.json` and `index.html` into the campaign's report directory."""
    directory.mkdir(parents=True, exist_ok=True)
    summary = json.dumps(campaign.to_json(), indent=2, sort_keys=True) + "\n"
    (directory / SUMMARY).write_text(summary, encoding="utf-8")
    (directory / INDEX).write_text(render_index(campaign), encoding="utf-8")


def render_index(campaign: CampaignResult) -> str:
    rows = campaign.rows
    totals = campaign.totals()
    first, last = campaign.specs[0].seed, campaign.specs[-1].seed
    title = f"chaos campaign: seeds {first}..{last}"
    verdict = "OK" if not campaign.failed else f"{len(campaign.failed)} FAILED"
    settings = " ".join(campaign.specs[0].flags()[2:])  # all but the seed
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f'<h1>{_e(title)}: <span class="{"ok" if not campaign.failed else "bad"}">'
        f"{_e(verdict)}</span></h1>",
        f"<p>Settings: <code>{_e(settings)}</code>. {totals['seeds']} seeds run"
        + (" (stopped at the first failure)" if campaign.stopped_early else "")
        + ".</p>",
    ]
    if campaign.failed:
        parts.append("<h2>Replay a failing seed</h2><ul>")
        parts += [
            f"<li><code>{_e(r.replay)}</code> ({_e(r.finding)})</li>" for r in campaign.failed
        ]
        parts.append("</ul>")
    parts.append(
        "<table><tr><th>seed</th><th class=l>verdict</th><th>elections</th><th>ops</th>"
        "<th>faults</th><th>virtual s</th><th class=l>found</th><th class=l>report</th></tr>"
    )
    parts += [_row(r) for r in rows]
    parts.append(
        f"<tr><th>total</th><th class=l>{totals['ok']} ok, {totals['failed']} failed</th>"
        f"<th>{totals['elections']:,}</th><th>{totals['ops']:,}</th>"
        f"<th>{totals['faults']:,}</th><th>{totals['virtual_s']:,.1f}</th><th></th><th></th></tr>"
    )
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def _row(r: SeedRow) -> str:
    link = f"{seed_dir(r.seed)}/{REPORT}"
    css = "ok" if r.ok else "bad"
    return (
        f'<tr><td>{r.seed}</td><td class="l {css}">{_e(r.verdict)}</td>'
        f"<td>{r.elections:,}</td><td>{r.ops:,}</td><td>{r.faults:,}</td>"
        f"<td>{r.virtual_s:,.1f}</td><td class=l>{_e(r.finding)}</td>"
        f'<td class=l><a href="{_e(link)}">{_e(link)}</a></td></tr>'
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)
