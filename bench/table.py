"""A benchmark result row and the table that prints them."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Row:
    name: str
    value: float
    unit: str
    peer: str = ""  # the peer measured in the same run, if any
    peer_value: float | None = None
    higher_is_better: bool = True
    note: str = ""
    failed: bool = False  # a wrong answer (not a slow one) makes `make bench` exit 1

    @property
    def ratio(self) -> float | None:
        """How many times better than the peer (>1 is better), or None without a peer."""
        if not self.peer_value or not self.value:
            return None
        if self.higher_is_better:
            return self.value / self.peer_value
        return self.peer_value / self.value

    def as_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self)
        d["ratio_vs_peer"] = self.ratio
        return d


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render(rows: list[Row]) -> str:
    header = ("benchmark", "value", "unit", "peer", "peer value", "x peer", "note")
    table = [header] + [
        (
            r.name,
            _fmt(r.value),
            r.unit,
            r.peer or "-",
            _fmt(r.peer_value),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            ("WRONG ANSWER " if r.failed else "") + r.note,
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
