"""Checks of an engine seen only from outside: what each node applied, acknowledged,
read, truncated and whom it elected (the pysyncobj engine feeds them; docs/chaos-pysyncobj.md).

Unlike our own engine's invariants (`chaos.sim.invariants`), which read the Raft cores'
state, these need nothing but the events, so they can judge a system we do not own. A
run records every finding (counted past `MAX_FINDINGS_KEPT` of a kind, not kept) rather
than stopping at the first, since such a system often trips several.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from chaos.sim.events import Applied, Finding, LeaderSeen, Truncated
from chaos.sim.trace import Trace

MAX_FINDINGS_KEPT = 1_000  # per kind: counted beyond it, not kept


class Stepped(Protocol):
    """What the checks read of the simulator feeding them."""

    trace: Trace
    now: int
    step: int


class AppliedLogChecks:
    """What is checked besides the history, and the findings: fed by the simulator as
    the engine under test applies, acknowledges, reads, truncates and elects."""

    def __init__(self, sim: Stepped) -> None:
        self._sim = sim
        # index -> op -> (time, node) of each apply; index -> op -> the node that acked it
        self.applied: dict[int, dict[tuple[str, str], list[tuple[int, int]]]] = {}
        self.acked: dict[int, dict[tuple[str, str], int]] = {}
        self._diverged: dict[int, tuple[int, int]] = {}  # index -> (time, step) first seen
        self._latest_ack: dict[str, tuple[int, str]] = {}  # key -> highest acked (index, value)
        self._max_applied: dict[int, int] = {}  # node -> highest last-applied index seen
        self.leaders: dict[int, int] = {}  # term -> node
        self._second_leaders: set[tuple[int, int]] = set()  # (term, node)
        self.findings: dict[str, list[dict[str, Any]]] = {}
        self._counts: dict[str, int] = {}

    def on_apply(self, node: int, index: int, key: str, value: str) -> None:
        sim = self._sim
        sim.trace.add(Applied(sim.now, node, index, key, value))
        seen = self.applied.setdefault(index, {})
        seen.setdefault((key, value), []).append((sim.now, node))
        if len(seen) > 1 and index not in self._diverged:
            self._diverged[index] = (sim.now, sim.step)

    def on_ack(self, node: int, index: int, key: str, value: str) -> None:
        self.acked.setdefault(index, {})[(key, value)] = node
        if index > self._latest_ack.get(key, (0, ""))[0]:
            self._latest_ack[key] = (index, value)

    def on_read(self, node: int, term: int, applied: int, key: str, value: str) -> None:
        """A read at a node that believes it leads, missing a write already acknowledged
        at a higher index than the node has applied: a stale read from a deposed leader."""
        index, acked = self._latest_ack.get(key, (0, ""))
        if index > applied and value != acked:
            self.find(
                "stale-read",
                f"node {node}, leader in its own view (term {term}), read {key}={value!r} at "
                f"applied index {applied}, after {key}={acked!r} was acknowledged at index "
                f"{index}",
                (node,),
                key=key, value=value, acknowledged=acked, index=index, applied_index=applied,
            )  # fmt: skip

    def on_truncate(self, node: int, leader: bool, first: int, commit: int, applied: int) -> None:
        sim = self._sim
        sim.trace.add(Truncated(sim.now, node, first, commit, applied))
        if first > commit:
            return  # uncommitted entries: Raft may replace them
        role = "leader" if leader else "follower"
        self.find(
            "committed-entry-truncated",
            f"{role} {node} deleted its log from index {first}, at or below its commit index "
            f"{commit} (applied {applied})",
            (node,),
            role=role, index=first, commit_index=commit, applied_index=applied,
        )  # fmt: skip

    def on_leader(self, node: int, term: int) -> None:
        if term not in self.leaders:
            self.leaders[term] = node
            self._sim.trace.add(LeaderSeen(self._sim.now, node, term))
            return
        leader = self.leaders[term]
        if leader == node:
            return
        if (term, node) not in self._second_leaders:
            self._second_leaders.add((term, node))
            self.find(
                "two-leaders-in-a-term",
                f"nodes {leader} and {node} both led term {term}",
                (leader, node),
                term=term,
            )

    def on_applied_index(self, node: int, applied: int) -> None:
        highest = self._max_applied.get(node, 0)
        if applied < highest:
            self.find(
                "applied-index-regressed",
                f"node {node}'s last applied index went back from {highest} to {applied}",
                (node,),
            )
        self._max_applied[node] = max(highest, applied)

    def classify_divergence(self) -> None:
        """At each index where nodes applied different commands, the one most nodes applied
        is the one the cluster kept; an acknowledged other one is a lost write."""
        for index, (time_ms, step) in sorted(self._diverged.items()):
            seen = self.applied[index]
            kept = max(seen, key=lambda op: (len(seen[op]), -seen[op][0][0]))
            lost = sorted((op, n) for op, n in self.acked.get(index, {}).items() if op != kept)
            nodes = tuple(sorted({n for appliers in seen.values() for _, n in appliers}))
            kept_text = f"{kept[0]}={kept[1]} (applied on nodes {_ids(seen[kept])})"
            if lost:
                (key, value), node = lost[0]
                # An acknowledged write that no node applied at its index is lost as well.
                appliers = seen.get((key, value), ())
                applied_text = f"nodes {_ids(appliers)}" if appliers else "no node"
                self.find(
                    "acknowledged-write-lost",
                    f"put {key}={value} was acknowledged by node {node} at index {index}, "
                    f"applied on {applied_text}, but the cluster kept {kept_text} there",
                    nodes, time_ms=time_ms, step=step, index=index, acknowledged_by=node,
                    key=key, value=value,
                )  # fmt: skip
            else:
                others = ", ".join(
                    f"{k}={v} on nodes {_ids(seen[(k, v)])}"
                    for k, v in sorted(seen)
                    if (k, v) != kept
                )
                self.find(
                    "applied-entries-diverge",
                    f"at index {index} the cluster kept {kept_text}, but {others} applied "
                    "another command",
                    nodes, time_ms=time_ms, step=step, index=index,
                )  # fmt: skip

    def find(
        self,
        kind: str,
        message: str,
        nodes: Sequence[int],
        time_ms: int | None = None,
        step: int | None = None,
        **details: Any,
    ) -> None:
        sim = self._sim
        time_ms = sim.now if time_ms is None else time_ms
        self._counts[kind] = self._counts.get(kind, 0) + 1
        sim.trace.add(Finding(time_ms, kind))
        kept = self.findings.setdefault(kind, [])
        if len(kept) < MAX_FINDINGS_KEPT:
            kept.append({
                "invariant": kind, "message": message, "time_ms": time_ms,
                "step": sim.step if step is None else step, "nodes": list(nodes), **details,
            })  # fmt: skip

    def violation(self) -> dict[str, Any] | None:
        """The earliest finding, with the count of each kind and the first of each."""
        if not self.findings:
            return None
        first = min((f[0] for f in self.findings.values()), key=lambda f: f["time_ms"])
        return {
            **first,
            "findings": dict(sorted(self._counts.items())),
            "first": {k: v[0] for k, v in sorted(self.findings.items())},
        }


def _ids(appliers: Sequence[tuple[int, int]]) -> str:
    return ",".join(str(n) for n in sorted({n for _, n in appliers}))
