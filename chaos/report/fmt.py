"""Formatting for the report: escaping, numbers, times, values, operations.

Everything the page shows goes through `esc` (text and attribute values alike), and
every number through one of the formatters here, so the same record always gives the
same bytes: no locale, no platform float printing, no dict order.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any, Final

from chaos.checker.values import thaw
from chaos.report.reading import Millis
from chaos.report.record import ClientOp, LinearizabilityWitness, OpType

MAX_VALUE_CHARS: Final = 60  # a value shown in a tooltip or a list, before "…"
MAX_TEXT_CHARS: Final = 2_000  # a message or detail shown in the page


def esc(text: object) -> str:
    """`text` as HTML text or a quoted attribute value: nothing in it can open a tag."""
    return html.escape(str(text), quote=True)


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def num(x: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros, never `-0`."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def ms(t: Millis) -> str:
    """A time on the run's clock for people: `3,012 ms`, `12.5 ms`."""
    if float(t).is_integer():
        return f"{int(t):,} ms"
    return f"{t:,.1f} ms"


def span(start: Millis, end: Millis | None) -> str:
    """`3,000 – 6,000 ms`, or `from 3,000 ms to the end`."""
    if end is None:
        return f"from {ms(start)} to the end"
    return f"{ms(start).removesuffix(' ms')} \u2013 {ms(end)}"


def duration(length: Millis) -> str:
    """A duration for people: `850 ms`, `12.3 s`, `4 min 5 s`."""
    if length < 10_000:
        return ms(length)
    seconds = length / 1000
    if seconds < 600:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def axis_label(t: float, base_step: float) -> str:
    """A tick label: seconds when the coarsest ticks are a second or more apart, else
    milliseconds (finer ticks keep the unit of the coarse ones)."""
    if base_step >= 1000:
        return f"{round(t / 1000, 6):g} s"
    return f"{round(t, 6):g} ms"


def value(frozen: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A JSON value, compact, cut to `limit` characters."""
    text = json.dumps(thaw(frozen), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return clip(text, limit)


def call(op: ClientOp) -> str:
    """`write(3)`, `cas(1, 2)`, `read()`, `append("k", "x")`: the call as made."""
    args = []
    if op.key is not None:
        args.append(value(op.key))
    raw = thaw(op.input)
    if isinstance(raw, list) and op.f == "cas":
        args.extend(value(item) for item in raw)
    elif raw is not None:
        args.append(value(op.input))
    return f"{op.f}({', '.join(args)})"


def describe(op: ClientOp, witness: LinearizabilityWitness | None = None) -> str:
    """The operation and what came back, in the checker's words: `read() -> 2`,
    `write(3) -> ok`, `cas(1, 2) -> fail`, `write(3) -> ?` (unknown outcome).

    The witness's model description wins when it has one (it knows the model's words).
    """
    if witness is not None:
        described = witness.description(op.index)
        if described is not None:
            return clip(described, 2 * MAX_VALUE_CHARS)
    if op.type is OpType.INFO:
        return f"{call(op)} -> ?"
    if op.type is OpType.FAIL or op.output is None:
        return f"{call(op)} -> {op.type.value}"
    return f"{call(op)} -> {value(op.output)}"


def op_line(op: ClientOp, witness: LinearizabilityWitness | None = None) -> str:
    """One line about an operation, for tooltips (text, not yet escaped)."""
    if op.type is OpType.INFO:
        gave_up = "" if op.complete_ms is None else f", gave up at {ms(op.complete_ms)}"
        when = f"called at {ms(op.invoke_ms)}, outcome unknown{gave_up}: pending to the end"
    else:
        assert op.complete_ms is not None, "ok and fail operations have an answer"
        when = f"{span(op.invoke_ms, op.complete_ms)} ({ms(op.complete_ms - op.invoke_ms)})"
    node = "" if op.node is None else f" \u00b7 node {op.node}"
    error = "" if op.error is None else f" \u00b7 {value(op.error)}"
    what = describe(op, witness)
    return f"#{op.index} \u00b7 process {op.process} \u00b7 {what} \u00b7 {when}{node}{error}"


def nodes(ids: tuple[int, ...]) -> str:
    return ", ".join(str(n) for n in ids) if ids else "\u2013"


def nice_step(span_ms: float, ticks: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `ticks` ticks."""
    if span_ms <= 0:
        return 1.0
    raw = span_ms / ticks
    if not (raw > 0 and math.isfinite(raw)):
        return 1.0  # a span too small to divide (a denormal) or infinite: one ms a tick
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)
