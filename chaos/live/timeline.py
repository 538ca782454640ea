"""What each node was, and when, from the run's polls and faults: the report's rows.

`Timeline` is fed observations with their times (a node's role and term when a poll
reached it; that a node was killed or restarted; that a partition isolated one) and
gives `Interval`s. A role lasts from the poll that first saw it to the poll that saw
another (or the node stop answering): between polls the truth is unknown, so a short
leadership between two polls may be missed. The report says so in its notes.
"""

from __future__ import annotations

import attrs

from chaos.report import Interval, IntervalKind

ROLES = {
    "leader": IntervalKind.LEADER,
    "candidate": IntervalKind.CANDIDATE,
    "pre_candidate": IntervalKind.CANDIDATE,
    "follower": IntervalKind.FOLLOWER,
}


@attrs.define
class _Open:
    kind: IntervalKind
    start_ms: float
    term: int | None


class Timeline:
    def __init__(self, nodes: tuple[int, ...]) -> None:
        self._nodes = nodes
        self._role: dict[int, _Open] = {}
        self._conditions: dict[tuple[int, IntervalKind], float] = {}
        self._done: list[Interval] = []

    def role(self, node: int, role: str | None, term: int, now_ms: float) -> None:
        """A poll at `now_ms` saw `node` in `role` (None: it did not answer)."""
        kind = ROLES.get(role) if role is not None else None
        seen = self._role.get(node)
        if (
            seen is not None
            and kind is seen.kind
            and (kind is not IntervalKind.LEADER or seen.term == term)
        ):
            return
        if seen is not None:
            self._close(node, seen, now_ms)
            del self._role[node]
        if kind is not None:
            self._role[node] = _Open(kind, now_ms, term if kind is IntervalKind.LEADER else None)

    def begin(self, node: int, kind: IntervalKind, now_ms: float) -> None:
        """A condition (crashed, isolated) starts."""
        self._conditions.setdefault((node, kind), now_ms)
        if kind is IntervalKind.CRASHED:
            self.role(node, None, 0, now_ms)

    def end(self, node: int, kind: IntervalKind, now_ms: float) -> None:
        start = self._conditions.pop((node, kind), None)
        if start is not None:
            self._done.append(Interval(node, kind, start, max(start, now_ms)))

    def intervals(self, end_ms: float) -> tuple[Interval, ...]:
        """Everything, with what is still open closed at `end_ms`; by start time."""
        out = list(self._done)
        for node, seen in self._role.items():
            out.append(
                Interval(node, seen.kind, seen.start_ms, max(end_ms, seen.start_ms), seen.term)
            )
        for (node, kind), start in self._conditions.items():
            out.append(Interval(node, kind, start, max(end_ms, start)))
        return tuple(sorted(out, key=lambda i: (i.start_ms, i.node, i.kind.value)))

    def _close(self, node: int, seen: _Open, now_ms: float) -> None:
        self._done.append(
            Interval(node, seen.kind, seen.start_ms, max(now_ms, seen.start_ms), seen.term)
        )
