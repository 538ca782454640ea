"""Users' part invariants, checked on every replica after each applied entry.

A part may declare `check_invariants()` (`statemachine.part.Part`). When a run's parts
declare any, each replica's `ClusterState` gets an observer from
`PartInvariants.observer(node, inner)` (its public `ApplyObserver` hook, `applied`),
which calls `state.check_invariants()` after every entry the replica applies; an
`InvariantBroken` is a `SafetyViolation` ("part-invariant") naming the node, the index
and what broke, reported with the seed like every other check. Runs whose parts declare
none get no such observer: nothing is added to the apply path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chaos.sim.invariants import SafetyViolation
from statemachine.cluster import ApplyObserver, ClusterState
from statemachine.part import InvariantBroken, PartSpec
from statemachine.sessions.messages import SessionRequest

INVARIANT = "part-invariant"


def declares_invariants(parts: Sequence[PartSpec]) -> bool:
    """Whether any of `parts` declares `check_invariants` (asked of a fresh instance)."""
    return any(hasattr(spec.factory(), "check_invariants") for spec in parts)


class PartInvariants:
    """Counts the checks made; fails the run at the first broken invariant."""

    def __init__(self, fail: Callable[[str, str, tuple[int, ...]], SafetyViolation]) -> None:
        self._fail = fail
        self.checks = 0  # check_invariants() calls, over every replica

    def observer(self, node: int, inner: ApplyObserver) -> ApplyObserver:
        """`inner` (the exactly-once observer), plus the invariant check after each apply."""
        return _Observer(self, node, inner)

    def on_applied(self, node: int, index: int, state: ClusterState) -> None:
        self.checks += 1
        try:
            state.check_invariants()
        except InvariantBroken as e:
            raise self._fail(
                INVARIANT, f"node {node}, after applying index {index}: {e}", (node,)
            ) from None


class _Observer:
    __slots__ = ("_check", "_inner", "_inner_applied", "_node")

    def __init__(self, check: PartInvariants, node: int, inner: ApplyObserver) -> None:
        self._check, self._node, self._inner = check, node, inner
        self._inner_applied = getattr(inner, "applied", None)  # (optional, as for the state)

    def executed(self, index: int, request: SessionRequest) -> None:
        self._inner.executed(index, request)

    def applied(self, index: int, state: ClusterState) -> None:
        if self._inner_applied is not None:
            self._inner_applied(index, state)
        self._check.on_applied(self._node, index, state)
