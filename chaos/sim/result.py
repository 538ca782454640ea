"""What a simulation reports: the verdict, the trace hash, counts and timings."""

from __future__ import annotations

from typing import Any

import attrs

from chaos.checker import CheckResult, Event
from chaos.checker.stats import VACUOUS, OperationStats
from chaos.sim.config import SimConfig
from chaos.sim.events import Event as TraceEvent
from raftcluster.client.core import Completion
from raftcluster.errors import OutcomeUnknown


@attrs.define
class Counters:
    elections: int = 0  # terms that had a leader
    leaders: int = 0  # distinct nodes that led
    committed_entries: int = 0  # log indexes applied (by any node)
    proposals_committed: int = 0  # commands (non-empty normal entries) committed
    snapshots_taken: int = 0
    snapshots_installed: int = 0
    acknowledged_writes: int = 0  # writes (session commands included) acknowledged to clients
    operations: dict[str, int] = attrs.Factory(dict)  # client outcomes: ok, rejected...
    crashes: int = 0
    # What the disks went through: power cuts (during a persist or not) and what they cost,
    # the faults injected into them, and nodes that would not start from them.
    disk: dict[str, int] = attrs.Factory(dict)
    paused_deliveries: int = 0  # messages that waited for a paused node
    faults: dict[str, int] = attrs.Factory(dict)  # by kind
    # What each named nemesis injected ("halves.partition": 7...): its coverage.
    nemesis: dict[str, int] = attrs.Factory(dict)
    # How far node clocks were moved: total forward jumps, rate changes, the largest rate.
    clocks: dict[str, int] = attrs.Factory(
        lambda: {"jumped_ms": 0, "drift_changes": 0, "max_drift_ppm": 0}
    )
    # Membership steps asked of the leader, by answer; and the steps committed.
    membership: dict[str, int] = attrs.Factory(
        lambda: {"asked": 0, "no_leader": 0, "changed": 0, "refused": 0, "not_leader": 0}
    )
    membership_changes: int = 0
    session_executions: int = 0  # session commands executed by state machines (replays too)
    part_invariant_checks: int = 0  # users' check_invariants() calls (chaos.sim.part_invariants)
    leader_commits_checked: int = 0  # commit moves held to a durable quorum (durable_quorum)
    reads_checked: int = 0  # linearizable reads held to earlier commits (read_freshness)
    network: dict[str, int] = attrs.Factory(dict)
    # The wire: frames encoded and decoded, damaged frames refused, the largest frame.
    wire: dict[str, int] = attrs.Factory(dict)
    # How often the availability checks found a window to judge (chaos.sim.availability).
    availability: dict[str, int] = attrs.Factory(dict)
    # The cluster service (the groups workload): resources' actions and faults, reports,
    # heartbeats, events delivered, and every failover's time (ms), sorted.
    groups: dict[str, Any] = attrs.Factory(dict)

    def on_completion(self, done: Completion) -> None:
        if done.error is None:
            outcome = "ok"
        elif isinstance(done.error, OutcomeUnknown):
            outcome = "unknown"
        else:
            outcome = "failed"
        self.operations[outcome] = self.operations.get(outcome, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


# Violations reported under their own check rather than under "invariants".
_OWN_CHECKS = ("exactly-once", "liveness", "convergence", "availability")


@attrs.frozen
class SimResult:
    config: SimConfig
    nemesis: str
    workload: str
    violation: dict[str, Any] | None
    error: dict[str, Any] | None  # the run broke off: an exception (with its traceback)
    trace_hash: str
    trace_records: int
    steps: int
    end_ms: int
    counters: Counters
    timings: dict[str, int | None]
    history: tuple[Event, ...] = ()
    trace: tuple[TraceEvent, ...] = ()  # the kept trace events (chaos.sim.events)
    linearizability: CheckResult | None = None
    plant: str | None = None  # the planted bug run instead of the real engine part
    # False when the engine has no client sessions to check (pysyncobj): "skipped".
    sessions_checked: bool = True
    engine: str = "raftcluster"  # the system under test
    settings: dict[str, Any] = attrs.Factory(dict)  # the engine's settings for this seed
    # The operations by kind around the heal (chaos.checker.stats); None: not counted.
    stats: OperationStats | None = None

    @property
    def verdict(self) -> str:
        """ "ok", "violation" (an invariant failed, or the history is not linearizable),
        "vacuous" (no check failed, but some kind of operation never succeeded under the
        faults or after healing: the run proved nothing) or "error" (the run broke off
        with an exception)."""
        lin = self.linearizability
        if self.error is not None:
            return "error"
        if self.violation is not None or (lin is not None and lin.verdict.value == "illegal"):
            return "violation"
        if self.stats is not None and not self.stats.ok:
            return VACUOUS
        return "ok"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def checks(self) -> dict[str, str]:
        """Each checker's verdict: "ok", "failed", "unknown" (linearizability undecided
        in time), "skipped" (not asked for), or "not reached" (the run stopped before it
        could be judged, by another check's violation or an exception)."""
        failed = self.violation["invariant"] if self.violation is not None else None
        healed = self.timings.get("converged_after_heal_ms") is not None
        lin = self.linearizability
        out = {
            "invariants": "ok" if failed is None or failed in _OWN_CHECKS else "failed",
            "exactly_once": "skipped" if not self.sessions_checked
            else "failed" if failed == "exactly-once" else "ok",
            "live": "ok" if self.timings.get("probe_committed_after_heal_ms") is not None
            and failed != "availability"
            else "failed" if failed in ("liveness", "availability") else "not reached",
            "converged": "ok" if healed
            else "failed" if failed == "convergence" else "not reached",
            "linearizable": "skipped" if lin is None else {"illegal": "failed"}.get(
                lin.verdict.value, lin.verdict.value
            ),
            "stats": "skipped" if self.stats is None else "ok" if self.stats.ok
            else "failed" if failed is None else "not reached",
        }  # fmt: skip
        if self.error is not None:  # nothing can be said of what the run did not finish
            out = {k: "not reached" if v == "ok" and k != "linearizable" else v
                   for k, v in out.items()}  # fmt: skip
        return out

    def to_json(self) -> dict[str, Any]:
        lin = self.linearizability
        return {
            "verdict": self.verdict,
            "seed": self.config.seed,
            "engine": self.engine,
            "settings": self.settings,
            "nodes": self.config.nodes,
            "duration_ms": self.config.duration_ms,
            "nemesis": self.nemesis,
            "workload": self.workload,
            "plant": self.plant,
            "violation": self.violation,
            "error": self.error,
            "linearizability": None if lin is None else {
                "verdict": lin.verdict.value, "operations": lin.operations,
                "reason": lin.reason,
            },
            "checks": self.checks,
            "stats": None if self.stats is None else self.stats.to_json(),
            "trace_hash": self.trace_hash,
            "trace_records": self.trace_records,
            "steps": self.steps,
            "end_ms": self.end_ms,
            "counts": self.counters.to_json(),
            "timings": self.timings,
        }  # fmt: skip
