"""The HTML parts of the page around the charts: the summary header, the violations with
their witness in words, and the tables of faults and leaders. Each function returns
HTML with every value escaped (`fmt.esc`).
"""

from __future__ import annotations

import json
import shlex
from collections import defaultdict
from collections.abc import Sequence
from typing import Final

from chaos.checker.values import thaw
from chaos.report.fmt import clip, describe, duration, esc, ms, nodes, value
from chaos.report.record import (
    ClientOp,
    IntervalKind,
    LinearizabilityWitness,
    Record,
    RunVerdict,
    Violation,
)

MAX_LISTED_OPS: Final = 40  # operations listed per violation (and per witness part)
MAX_PREFIX_SHOWN: Final = 5  # the last operations of a witness's prefix
MAX_TABLE_ROWS: Final = 1_000
HISTORY_FILE: Final = "history.jsonl"
SEP: Final = " \u00b7 "


def check_command(record: Record) -> str | None:
    """`raftcluster chaos check history.jsonl --model M --option k=v ...`, when known."""
    for checker in record.checkers:
        if checker.model is not None:
            args = ["raftcluster", "chaos", "check", HISTORY_FILE, "--model", checker.model]
            options = thaw(checker.options) or {}
            for key in sorted(options):
                args += ["--option", f"{key}={_option_text(options[key])}"]
            return shlex.join(args)
    return None


def _option_text(option: object) -> str:
    """As `--option` reads it back: JSON, or a bare string when that is not JSON."""
    if isinstance(option, str):
        try:
            json.loads(option)
        except json.JSONDecodeError:
            return option
    return json.dumps(option, separators=(",", ":"), sort_keys=True)


def header(record: Record) -> str:
    run = record.run
    facts = [
        run.engine.value,
        f"{run.mode.value} mode",
        f"{len(run.nodes)} nodes ({nodes(run.nodes)})",
        duration(run.duration_ms),
        f"workload {run.workload}",
        "nemeses " + (", ".join(run.nemeses) if run.nemeses else "none"),
    ]
    found = f"{len(record.violations)} violation{'s' if len(record.violations) != 1 else ''}"
    lines = [
        '<header class="top">',
        f'<div class="verdict v-{run.verdict.value}">{esc(run.verdict.value.upper())}'
        f'<span class="found">{esc(found)}</span></div>',
        f'<div class="title"><h1>Chaos run <span class="seed">seed {run.seed}</span></h1>',
        f'<p class="facts">{SEP.join(esc(f) for f in facts)}</p>',
        _settings(record),
        "</div>",
        "</header>",
        '<section class="cmds">',
        _command("replay", "cmd-replay", run.replay, "runs it again, identically"),
    ]
    check = check_command(record)
    if check is not None:
        lines.append(_command("check", "cmd-check", check, "checks the history file again"))
    lines.append("</section>")
    lines.append('<section class="cards">')
    lines.append(_counts(record))
    lines.append(_checkers(record))
    lines.append(_facts(record))
    lines.append("</section>")
    return "\n".join(lines)


def _settings(record: Record) -> str:
    """The engine's settings for the run, one line (nothing when the record has none)."""
    run = record.run
    if not run.settings:
        return ""
    items = SEP.join(f"{esc(key)} <b>{esc(_setting(value))}</b>" for key, value in run.settings)
    return f'<p class="facts settings">{esc(run.engine.value)} settings: {items}</p>'


def _setting(value: object) -> str:
    """A setting as it would be written: true, 250, 0.5, a bare string."""
    return value if isinstance(value, str) else json.dumps(value)


def _command(name: str, ident: str, command: str, hint: str) -> str:
    return (
        f'<div class="cmd"><span class="cmdname" title="{esc(hint)}">{esc(name)}</span>'
        f'<code id="{ident}">{esc(command)}</code>'
        f'<button type="button" class="copy" data-copy="{ident}">copy</button></div>'
    )


def _counts(record: Record) -> str:
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for name, count in record.run.counts:
        group, dot, rest = name.partition(".")
        groups[group if dot else ""].append((rest if dot else name, count))
    rows = []
    for group in sorted(groups):
        cells = "".join(
            f'<span class="cnt"><b>{count:,}</b> {esc(name)}</span>'
            for name, count in groups[group]
        )
        rows.append(f'<div class="crow"><span class="cgroup">{esc(group)}</span>{cells}</div>')
    body = "".join(rows) or '<p class="muted">no counters</p>'
    return f'<div class="card"><h3>Counts</h3>{body}</div>'


def _checkers(record: Record) -> str:
    items = []
    for checker in record.checkers:
        model = f" ({checker.model})" if checker.model else ""
        reason = (
            f' <span class="muted">{esc(clip(checker.reason, 300))}</span>'
            if checker.reason
            else ""
        )
        items.append(
            f'<li><span class="pill v-{checker.verdict.value}">{esc(checker.verdict.value)}</span> '
            f"{esc(checker.name)}{esc(model)}{reason}</li>"
        )
    body = (
        f'<ul class="plain">{"".join(items)}</ul>'
        if items
        else '<p class="muted">none recorded</p>'
    )
    return f'<div class="card"><h3>Checkers</h3>{body}</div>'


def _facts(record: Record) -> str:
    ops = record.operations
    by_type = {t: sum(1 for op in ops if op.type.value == t) for t in ("ok", "fail", "info")}
    rows = [
        (
            "operations",
            f"{len(ops):,} ({by_type['ok']:,} ok, {by_type['fail']:,} fail, "
            f"{by_type['info']:,} info)",
        ),
        ("faults", f"{len(record.faults):,}"),
        ("terms", f"{len({i.term for i in record.intervals if i.kind is IntervalKind.LEADER}):,}"),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    if record.trace_hash:
        short = clip(record.trace_hash, 17)
        body += (
            f'<tr><th>trace hash</th><td><code title="{esc(record.trace_hash)}">'
            f"{esc(short)}</code></td></tr>"
        )
    return f'<div class="card"><h3>Run</h3><table class="kv">{body}</table></div>'


# ---------------------------------------------------------------------------------------
# Violations


def violations(record: Record) -> str:
    if not record.violations:
        verdict = record.run.verdict
        words = (
            "No violations: every checker found the run consistent."
            if verdict is RunVerdict.OK
            else "No violations were found, but the run proved nothing: "
            + "; ".join(c.reason for c in record.checkers if c.verdict is RunVerdict.VACUOUS)
            if verdict is RunVerdict.VACUOUS
            else "No violations were found, but not every check reached a verdict."
        )
        return (
            '<section id="violations"><h2>Violations</h2>'
            f'<p class="muted">{esc(words)}</p></section>'
        )
    cards = [_violation(record, n, v) for n, v in enumerate(record.violations)]
    return (
        f'<section id="violations"><h2>Violations ({len(record.violations)})</h2>'
        + "".join(cards)
        + "</section>"
    )


def _violation(record: Record, n: int, violation: Violation) -> str:
    when = "" if violation.time_ms is None else f" at {ms(violation.time_ms)}"
    where = f" \u00b7 nodes {nodes(violation.nodes)}" if violation.nodes else ""
    parts = [
        f'<article class="violation" id="violation-{n}">',
        f'<h3><span class="pill kind">{esc(violation.kind)}</span>{esc(when + where)}</h3>',
        f'<p class="msg">{esc(clip(violation.message))}</p>',
    ]
    if violation.witness is not None:
        parts.append(witness_words(record, violation.witness))
    elif violation.ops:
        parts.append("<p>Operations involved:</p>")
        parts.append(_op_list(record, violation.ops, None, None))
    parts.append("</article>")
    return "".join(parts)


def _op_item(op: ClientOp, witness: LinearizabilityWitness | None, blocked: int | None) -> str:
    cls = ' class="blocked"' if op.index == blocked else ""
    answered = "pending" if op.type.value == "info" else op.type.value
    end = "" if op.complete_ms is None else f" \u2192 {ms(op.complete_ms)}"
    node = "" if op.node is None else f" \u00b7 node {op.node}"
    return (
        f'<li{cls}><a href="#op-{op.index}" class="opref">#{op.index}</a> '
        f"<code>{esc(describe(op, witness))}</code> "
        f'<span class="muted">process {op.process} \u00b7 {esc(answered)} \u00b7 '
        f"{esc(ms(op.invoke_ms))}{esc(end)}{esc(node)}</span></li>"
    )


def _op_list(
    record: Record,
    indexes: tuple[int, ...],
    witness: LinearizabilityWitness | None,
    blocked: int | None,
) -> str:
    shown = indexes[:MAX_LISTED_OPS]
    items = "".join(_op_item(record.operations[i], witness, blocked) for i in shown)
    more = len(indexes) - len(shown)
    tail = f'<li class="muted">and {more:,} more</li>' if more else ""
    return f'<ul class="ops">{items}{tail}</ul>'


def witness_words(record: Record, w: LinearizabilityWitness) -> str:
    """The witness explained in words, with the operations it names."""
    ops = record.operations
    blocked = ops[w.blocked]
    partition = f" (in partition {w.partition + 1} of the history)" if w.partition else ""
    state = value(w.state, 120)
    others = tuple(i for i in w.candidates if i != w.blocked)
    node = f", answered by node {blocked.node}" if blocked.node is not None else ""
    returned = ms(blocked.complete_ms) if blocked.complete_ms is not None else "the end"
    parts = [
        '<div class="witness">',
        f"<p>The checker put <b>{len(w.prefix):,}</b> operations in a legal order that respects "
        f"real time{esc(partition)}: the longest linearizable prefix it could find. After them "
        f"the state is <code>{esc(state)}</code>.</p>",
        f'<p>Operation <a href="#op-{w.blocked}" class="opref">#{w.blocked}</a> '
        f"<code>{esc(describe(blocked, w))}</code> (process {blocked.process}{esc(node)}) "
        f"returned first among the rest, at {esc(returned)}, so it had to take effect next: "
        "but it <b>cannot</b> take effect in that state.</p>",
    ]
    if others:
        parts.append(
            f"<p>Nor can any of the {len(others)} other operations called before it returned, "
            "which could have come next instead:</p>"
        )
        parts.append(_op_list(record, others, w, None))
    parts.append(
        "<p>So no order of the operations agrees both with the model and with the order in "
        "which they were called and answered: <b>the history is not linearizable</b>.</p>"
    )
    if w.core is not None:
        quality = "A minimal" if w.core_minimal else "A (not proven minimal)"
        parts.append(
            f"<p>{quality} core of {len(w.core)} operations is not linearizable even when "
            "every other operation is relaxed (may have taken effect at any time after its "
            "call, or never): these are the ones to look at.</p>"
        )
        parts.append(_op_list(record, w.core, w, w.blocked))
    parts.append(_prefix_tail(record, w))
    if w.explanation:
        parts.append(f'<blockquote class="muted">checker: {esc(clip(w.explanation))}</blockquote>')
    parts.append("</div>")
    return "".join(parts)


def _prefix_tail(record: Record, w: LinearizabilityWitness) -> str:
    if not w.prefix:
        return "<p>The prefix is empty: not even the first operation can be ordered.</p>"
    shown = w.prefix[-MAX_PREFIX_SHOWN:]
    before = len(w.prefix) - len(shown)
    lead = f"the {len(shown)} last of the prefix" + (f" ({before:,} before them)" if before else "")
    return f"<details><summary>{esc(lead)}</summary>{_op_list(record, shown, w, None)}</details>"


# ---------------------------------------------------------------------------------------
# Tables


def _table(
    ident: str, title: str, head: tuple[str, ...], rows: Sequence[tuple[str, ...]], total: int
) -> str:
    if not rows:
        return f'<section id="{ident}"><h2>{esc(title)}</h2><p class="muted">none</p></section>'
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    more = total - len(rows)
    note = f'<p class="muted">and {more:,} more, not listed</p>' if more > 0 else ""
    return (
        f'<section id="{ident}"><h2>{esc(title)} ({total:,})</h2>'
        f'<table class="data"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'
        f"{note}</section>"
    )


def faults_table(record: Record) -> str:
    rows = []
    for n, fault in enumerate(record.faults[:MAX_TABLE_ROWS]):
        end = "end of run" if fault.end_ms is None else ms(fault.end_ms)
        length = "" if fault.end_ms is None else duration(fault.end_ms - fault.start_ms)
        rows.append(
            (
                str(n + 1),
                fault.kind,
                ms(fault.start_ms),
                end,
                length,
                nodes(fault.nodes),
                clip(fault.detail, 300),
            )
        )
    head = ("#", "kind", "start", "end", "length", "nodes", "detail")
    return _table("faults", "Faults", head, rows, len(record.faults))


def leaders_table(record: Record) -> str:
    leaders = sorted(
        (i for i in record.intervals if i.kind is IntervalKind.LEADER),
        key=lambda i: (i.start_ms, i.node),
    )
    rows = [
        (str(i.term), str(i.node), ms(i.start_ms), ms(i.end_ms), duration(i.end_ms - i.start_ms))
        for i in leaders[:MAX_TABLE_ROWS]
    ]
    head = ("term", "node", "from", "to", "length")
    return _table("leaders", "Leaders", head, rows, len(leaders))


def notes_section(record: Record, rendering: list[str]) -> str:
    items = [f"<li>{esc(clip(note))}</li>" for note in record.notes]
    items += [f'<li class="muted">{esc(note)}</li>' for note in rendering]
    if not items:
        return ""
    return f'<section id="notes"><h2>Notes</h2><ul>{"".join(items)}</ul></section>'
