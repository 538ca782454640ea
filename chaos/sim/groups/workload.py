"""The `groups` workload: an operator runs resource groups with every kind of policy.

The nodes join the cluster service on their own (the leader's node manager joins every
voter). At the start the operator creates a set of groups drawn for the seed, covering
the policies (preferred and possible owners, anti-affinity, priority 0, a failover
threshold, each failback policy, stickiness, start-after and colocation) and the ways
resources go wrong (flaky, slow to stop, failing to start). During the run it moves
groups, drains and pauses nodes and resumes them (with or without failback), and takes
groups offline and back. When the faults heal it resumes every node and brings every
group back online, so the cluster must settle with everything running
(`GroupsHost.settled`).

The cluster service runs inside the engine (`GroupsHost`); this workload only chooses
what an operator asks, through an ordinary client. Only our engine hosts it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import attrs

from chaos.checker import CheckResult, Event
from chaos.sim.clock import MAX_DRIFT_PPM
from chaos.sim.groups.processes import Flaws
from chaos.sim.workload import ClientHandle
from raftcluster.client.core import Completion
from raftcluster.errors import OutcomeUnknown, Unavailable
from raftcluster.groups.timing import GroupTiming
from statemachine.groups.messages import (
    HOUR_MS,
    CreateGroup,
    DrainNode,
    Failback,
    GroupSpec,
    MoveGroup,
    PauseNode,
    ResourceSpec,
    ResumeNode,
    SetGroupOffline,
    SetGroupOnline,
)

# One simulated day lasts a minute, so a run of two minutes crosses every failback window
# hour twice (the part's `day_ms`; hours of the day are 2.5 s).
SIM_DAY_MS = 60_000
# Commands that must take effect (the setup, and what healing undoes): asked again after
# this long when their outcome is unknown or no node could take them. Asked twice, they
# are refused the second time (a node already a member, a group that exists) or change
# nothing (a resume of a node already up, a group already wanted online).
RETRY_MS = 200
_MUST = (CreateGroup, ResumeNode, SetGroupOnline)
# How resources of each kind go wrong (the kind is the resource type name).
FLAWS = {
    "steady": Flaws(),
    "flaky": Flaws(flaky=True),
    "sticky": Flaws(stop_hangs=0.3),
    "fragile": Flaws(start_fails=0.15, start_hangs=0.05),
}
# Operator actions come this often (ms, drawn between).
ACT_EVERY_MS = (2_000, 8_000)
# An operator's drain or pause lasts this long before the resume (ms, drawn between).
HOLD_MS = (2_000, 15_000)


@attrs.frozen
class GroupsPlan:
    """What the engine needs to host the cluster service for this workload."""

    day_ms: int
    # The fencing times (ms); the engine adds its election timeout and derives the rest.
    heartbeat_interval_ms: int = 300
    fence_after_ms: int = 2_000
    kill_ms: int = 50  # the simulated watchdog kills at once; a margin all the same

    @staticmethod
    def flaws(node: int, kind: str) -> Flaws:
        return FLAWS.get(kind, Flaws())

    def timing(self, election_timeout_ms: int) -> GroupTiming:
        """The fencing times for an engine with this election timeout, with clocks that
        the clock nemeses may drive 20% fast or slow: the node-down time is the least
        the timing rule allows."""
        base = GroupTiming(
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            fence_after_ms=self.fence_after_ms,
            election_timeout_ms=election_timeout_ms,
            kill_ms=self.kill_ms,
            max_drift_ppm=MAX_DRIFT_PPM,
            tick_interval_ms=1_000,
            node_down_after_ms=86_400_000,  # (replaced by the least the rule allows)
        )
        return attrs.evolve(base, node_down_after_ms=base.min_node_down_after_ms())


def _resource(name: str, kind: str) -> ResourceSpec:
    return ResourceSpec(
        name=name,
        kind=kind,
        params=(("cmd", f"/usr/bin/{name}"),),
        monitor_interval_ms=1_000,
        start_timeout_ms=2_000,
        stop_timeout_ms=1_500,
        monitor_timeout_ms=1_000,
        max_restarts=2,
        restart_window_ms=30_000,
    )


def draw_groups(rng: random.Random, ids: Sequence[int]) -> list[tuple[GroupSpec, bool]]:
    """The seed's groups, and whether each is wanted online at creation."""
    nodes = list(ids)

    def owners(k: int) -> tuple[int, ...]:
        return tuple(rng.sample(nodes, min(k, len(nodes))))

    start = rng.randrange(24)
    window = (start, (start + rng.randint(2, 8)) % 24)
    hours = window if window[0] != window[1] else (start, (start + 1) % 24)
    specs = [
        GroupSpec("web", (_resource("nginx", "steady"), _resource("app", "steady")),
                  preferred_owners=owners(2), failback=Failback.IMMEDIATE, priority=3),
        GroupSpec("db", (_resource("postgres", "sticky"),), preferred_owners=owners(2),
                  failback=Failback.WINDOW, window_start_hour=hours[0],
                  window_end_hour=hours[1], stickiness=100, priority=5),
        GroupSpec("cache", (_resource("redis", "flaky"),), preferred_owners=owners(2),
                  failback=Failback.STABLE, stable_ms=10_000, anti_affinity="mem"),
        GroupSpec("batch", (_resource("worker", "steady"),), preferred_owners=owners(1),
                  possible_owners=owners(3), anti_affinity="mem"),
        GroupSpec("report", (_resource("reporter", "steady"),), start_after=("db",),
                  colocate_with="web"),
        GroupSpec("fragile", (_resource("legacy", "fragile"), _resource("agent", "flaky")),
                  preferred_owners=owners(3), failover_threshold=4,
                  failover_period_ms=HOUR_MS // 60, failback=Failback.IMMEDIATE),
        GroupSpec("manual", (_resource("tool", "steady"),), priority=0),
        # Three groups that prefer no node: placement spreads them by load, deciding them
        # in its order (priority, then name) when they move at once.
        *(GroupSpec(f"queue-{q}", (_resource("consumer", "steady"),), stickiness=10)
          for q in "abc"),
    ]  # fmt: skip
    return [(spec, spec.priority > 0) for spec in specs]


class GroupsWorkload:
    name = "groups"
    # The stats check (chaos.checker.stats) asks nothing of this workload's commands: the
    # cluster service's own checks judge the run, and after healing every group must be
    # running where it can (chaos.sim.groups.host), which no vacuous run passes.
    stats_kinds: tuple[str, ...] = ()
    clients = 1
    model = ""

    def __init__(self) -> None:
        self.plan = GroupsPlan(day_ms=SIM_DAY_MS)
        self.ids: tuple[int, ...] = ()
        self.specs: list[tuple[GroupSpec, bool]] = []
        self._rng = random.Random(0)
        self._client: ClientHandle | None = None
        self._queue: list[tuple[int, Any]] = []  # (not before ms, command), in order
        self._handle = 0
        self._command: Any = None
        self._next_ms: int | None = 0
        self._held: dict[int, str] = {}  # node -> "drain" / "pause", until resumed
        self._offline: set[str] = set()
        self._stopped = False
        self._events: list[Event] = []

    def groups_plan(self, ids: tuple[int, ...]) -> GroupsPlan:
        """Called by the engine before `setup`: the cluster's nodes, and what it hosts."""
        self.ids = ids
        return self.plan

    def setup(self, rng: random.Random, cores: Sequence[ClientHandle]) -> None:
        self._rng = rng
        self._client = cores[0]
        self.specs = draw_groups(rng, self.ids)
        for spec, online in self.specs:
            self._queue.append((0, CreateGroup(spec, online, 0)))

    # -- the operator ------------------------------------------------------------------------

    def next_ms(self) -> int | None:
        if self._handle:
            return None
        if self._queue:
            return self._queue[0][0]
        return None if self._stopped else self._next_ms

    def act(self, now_ms: int) -> None:
        if self._handle or self._client is None:
            return
        if not self._queue and not self._stopped:
            self._queue.extend(self._choose(now_ms))
            self._next_ms = now_ms + self._rng.randint(*ACT_EVERY_MS)
        if not self._queue or self._queue[0][0] > now_ms:
            return
        _, command = self._queue.pop(0)
        self._send(command, now_ms)

    def _send(self, command: Any, now_ms: int) -> None:
        assert self._client is not None
        command = attrs.evolve(command, at_ms=now_ms) if hasattr(command, "at_ms") else command
        self._command = command
        self._handle = self._client.write(command, now_ms)
        self._events.append(
            Event(0, "invoke", type(command).__name__, repr(command), "", time=now_ms)
        )

    def _choose(self, now_ms: int) -> list[tuple[int, Any]]:
        rng, ids = self._rng, self.ids
        names = [spec.name for spec, _ in self.specs]
        roll = rng.random()
        if roll < 0.3:
            return [(now_ms, MoveGroup(rng.choice(names), rng.choice((0, *ids)), now_ms))]
        if roll < 0.55:
            free = [n for n in ids if n not in self._held]
            if len(free) <= 2:
                return []
            node = rng.choice(free)
            how = rng.choice(("drain", "pause"))
            self._held[node] = how
            first = DrainNode(node, now_ms) if how == "drain" else PauseNode(node, now_ms)
            back = now_ms + rng.randint(*HOLD_MS)
            return [(now_ms, first), (back, ResumeNode(node, rng.random() < 0.5, back))]
        if roll < 0.75:
            name = rng.choice(names)
            if name in self._offline:
                self._offline.discard(name)
                return [(now_ms, SetGroupOnline(name, now_ms))]
            self._offline.add(name)
            return [(now_ms, SetGroupOffline(name, now_ms))]
        return [(now_ms, SetGroupOnline("manual", now_ms))]

    def completed(self, client: int, done: Completion, now_ms: int) -> None:
        if done.handle != self._handle:
            return
        self._handle = 0
        command = self._command
        kind = "ok" if done.error is None else "fail"
        self._events.append(
            Event(
                0,
                kind,
                type(command).__name__,
                repr(done.result if done.error is None else done.error),
                "",
                time=now_ms,
            )
        )
        if isinstance(done.error, (OutcomeUnknown, Unavailable)) and isinstance(command, _MUST):
            self._queue.insert(0, (now_ms + RETRY_MS, command))  # it must happen: again
            return
        if isinstance(command, ResumeNode):
            self._held.pop(command.node, None)

    def stop(self, now_ms: int) -> None:
        """The faults healed: resume every held node, bring every group back online."""
        self._stopped = True
        self._queue = [(now_ms, c) for _, c in self._queue if isinstance(c, ResumeNode)]
        for node in sorted(self._held):
            self._queue.append((now_ms, ResumeNode(node, False, now_ms)))
        for name in sorted(self._offline):
            self._queue.append((now_ms, SetGroupOnline(name, now_ms)))
        self._offline.clear()

    def history(self) -> tuple[Event, ...]:
        return tuple(self._events)

    def check(self, timeout_s: float) -> CheckResult | None:
        return None  # judged by the engine's groups checks as the run goes
