"""The stats check: a run in which nothing succeeded proved nothing, and says so.

Every other check can pass vacuously: with a majority down all run, no operation
succeeds, the history is trivially linearizable, and no invariant is ever put to the
test. So every run, simulated or live, also counts its operations by kind (the history's
`f`): each kind the workload issued must have succeeded at least once while the faults
were on (before `healed_ms`, the last heal) and at least once after it (invoked at or
after `healed_ms`). A run that misses either is `vacuous`, a verdict of its own, never
`ok`: its gaps say which kind, and when, so a run whose nemesis kept a majority down
throughout says exactly that.

`operation_stats(events, healed_ms)` counts; `OperationStats.gaps` lists what is missing
(empty: the run proved something). A workload may narrow the kinds that must succeed
(`stats_kinds`, e.g. none for one judged by other checks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from chaos.checker.history import Event

VACUOUS: Final = "vacuous"  # the verdict of a run that proved nothing


@attrs.frozen
class KindStats:
    """One kind of operation: how often it was invoked, and succeeded in each phase."""

    invoked: int = 0
    ok_under_faults: int = 0  # succeeded (completed ok) before the last heal
    ok_after_heal: int = 0  # succeeded, invoked at or after the last heal


@attrs.frozen
class OperationStats:
    kinds: dict[str, KindStats]  # by the history's `f`, sorted
    healed_ms: float | None  # the last heal; None: the run never healed (nothing after it)
    required: tuple[str, ...]  # the kinds that must succeed in both phases

    @property
    def gaps(self) -> tuple[str, ...]:
        """What the run did not show, one phrase each ("no put succeeded after the last
        heal"); empty when every required kind succeeded in both phases."""
        out: list[str] = []
        if not self.required:
            return ()
        for f in self.required:
            kind = self.kinds.get(f, KindStats())
            if kind.invoked == 0:
                out.append(f"no {f} was invoked")
                continue
            if kind.ok_under_faults == 0:
                out.append(f"no {f} succeeded while the faults were on")
            if self.healed_ms is not None and kind.ok_after_heal == 0:
                out.append(f"no {f} succeeded after the last heal")
        return tuple(out)

    @property
    def ok(self) -> bool:
        return not self.gaps

    @property
    def ok_after_heal(self) -> bool:
        """Whether every required kind succeeded after the last heal (whatever before)."""
        return all(self.kinds.get(f, KindStats()).ok_after_heal for f in self.required)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "ok" if self.ok else VACUOUS,
            "gaps": list(self.gaps),
            "healed_ms": self.healed_ms,
            "required": list(self.required),
            "kinds": {f: attrs.asdict(k) for f, k in self.kinds.items()},
        }


def operation_stats(
    events: Iterable[Event], healed_ms: float | None, required: Sequence[str] | None = None
) -> OperationStats:
    """Count `events` (a history, in order) by kind around `healed_ms`. `required`: the
    kinds that must succeed (None: every kind invoked)."""
    invoked: dict[str, int] = {}
    under: dict[str, int] = {}
    after: dict[str, int] = {}
    calls: dict[Any, tuple[str, float]] = {}  # process -> (f, invoke time) of its open call
    for event in events:
        at = event.time if event.time is not None else 0.0
        if event.type == "invoke":
            invoked[event.f] = invoked.get(event.f, 0) + 1
            calls[event.process] = (event.f, at)
            continue
        call = calls.pop(event.process, None)
        if event.type != "ok" or call is None:
            continue
        f, called = call
        if healed_ms is None or at < healed_ms:
            under[f] = under.get(f, 0) + 1
        if healed_ms is not None and called >= healed_ms:
            after[f] = after.get(f, 0) + 1
    kinds = {f: KindStats(invoked[f], under.get(f, 0), after.get(f, 0)) for f in sorted(invoked)}
    needed = tuple(sorted(invoked)) if required is None else tuple(required)
    return OperationStats(kinds, healed_ms, needed)
