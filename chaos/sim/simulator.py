"""The deterministic simulator: one loop over an engine, one thread, a virtual clock.

`Simulator(config, nemesis, workload, engine).run()` runs one seed. The loop owns virtual
time, the simulated `Network`, every node's and client's clock (skew and drift), pauses,
the nemesis, the workload and healing; the `Engine` (`chaos.sim.engine`) owns the nodes
and clients of the system under test: our own (`RaftclusterEngine`, the default) or
pysyncobj's. Time jumps to the next instant at which anything is due (a delivery, a
node's or client's timer, a fault, a workload action) and everything due then happens in
a fixed order:

    1. every envelope due is delivered (a paused node's wait in its backlog);
    2. paused nodes whose pause is over resume (their backlog delivered);
    3. the nemesis injects its faults;
    4. the workload starts operations;
    5. every running node that received something or has a timer due takes its step
       (in node order), then the clients;
    6. the engine's invariants, and the availability checks, are checked.

Phases: faults for `duration_ms`; then everything is healed (network, paused and crashed
nodes), and the workload goes on until each kind of operation it issues has succeeded
after healing (checked every `AFTER_HEAL_CHECK_MS`; at most `after_heal_ms` after the
probe write committed, and `AFTER_HEAL_QUIET_MS` before the heal timeout), then stops
starting operations; then, within `heal_timeout_ms` of
healing, the engine must be whole again (a leader, a committed probe write, identical
replicas). The history's stats (`chaos.checker.stats`) say whether the run proved
anything: a kind that never succeeded under the faults, or after healing, makes the
verdict `vacuous`.

Every random choice comes from generators derived from `config.seed`, so a seed replays
the run exactly; the trace hash proves it (tests/sim/test_determinism.py).

Last, `run()` checks the workload's history for linearizability (with the workload's own
model, or `model`), within `check_timeout_s` seconds of search effort (None: not
checked). `simulate()` is this loop too: there is one way to run a seed.
"""

from __future__ import annotations

import random
import traceback
import types
from collections.abc import Mapping
from typing import Any

import attrs

from chaos.checker import CheckResult, EffortClock, Model, check, history_from_events, make_model
from chaos.checker.stats import OperationStats, operation_stats
from chaos.sim.availability import Availability
from chaos.sim.clock import NodeClock
from chaos.sim.config import SimConfig
from chaos.sim.engine import Engine
from chaos.sim.events import (
    EngineStarted,
    Event,
    FaultInjected,
    Healed,
    NodeResumed,
    RoleChanged,
    RunEnded,
    Sent,
)
from chaos.sim.faults import ClockDrift, ClockJump, Crash, Fault, Pause, Restart
from chaos.sim.heap import heap_frozen
from chaos.sim.invariants import SafetyViolation, Where
from chaos.sim.nemesis import ClusterView, Nemesis
from chaos.sim.network import Envelope, Network
from chaos.sim.result import Counters, SimResult
from chaos.sim.trace import Trace
from chaos.sim.workload import Workload

# While the workload runs on after healing, how often its history is counted to see
# whether every kind of operation has succeeded since (counting reads the whole history).
AFTER_HEAL_CHECK_MS = 250
# The workload stops at the latest this long (or a quarter of the heal timeout) before
# the heal timeout: room for the operations in flight to end and the replicas to agree.
AFTER_HEAL_QUIET_MS = 5_000
# Client ids are CLIENT_BASE + index; engines may use ids just below it for their own
# clients (our engine's probe and administrator).
CLIENT_BASE = 1000


class _Node:
    __slots__ = ("id", "clock", "paused_until", "backlog", "role")

    def __init__(self, node_id: int, clock: NodeClock) -> None:
        self.id = node_id
        self.clock = clock
        self.paused_until: int | None = None
        self.backlog: list[Envelope] = []
        self.role: tuple[str, int] | None = None  # last traced (role, term); None: down


class Simulator:
    def __init__(
        self,
        config: SimConfig,
        nemesis: Nemesis,
        workload: Workload,
        engine: Engine | None = None,
        *,
        check_timeout_s: float | None = 10.0,
        model: Model | str | None = None,
    ) -> None:
        """`model` (a `Model`, a registered model's name or an import path) judges the
        history instead of the workload's own `check`."""
        if engine is None:
            from chaos.sim.raftcluster_engine import RaftclusterEngine

            engine = RaftclusterEngine()
        self.config = config
        self.nemesis = nemesis
        self.workload = workload
        self.engine: Engine = engine
        self.check_timeout_s = check_timeout_s
        self.model = make_model(model) if isinstance(model, str) else model
        seeds = random.Random(config.seed)
        # One generator per concern, so that adding draws to one leaves the others alone
        # (and new concerns draw their seeds after the old ones).
        self.rng_net = random.Random(seeds.getrandbits(64))
        self.rng_nodes = random.Random(seeds.getrandbits(64))
        self.rng_disk = random.Random(seeds.getrandbits(64))
        self.rng_clients = random.Random(seeds.getrandbits(64))
        rng_nemesis = random.Random(seeds.getrandbits(64))
        rng_workload = random.Random(seeds.getrandbits(64))
        self.rng_settings = random.Random(seeds.getrandbits(64))
        self.rng_client_clocks = random.Random(seeds.getrandbits(64))
        self.now = 0
        self.step = 0
        self.trace = Trace(keep=config.keep_trace)
        self.counters = Counters()
        self.network = Network(self.rng_net, config.base_network)
        self.ids = tuple(range(1, config.nodes + 1))
        self.nodes = {i: _Node(i, self._clock(self.rng_nodes)) for i in self.ids}
        self.client_clocks: dict[int, NodeClock] = {}
        self.healed_at: int | None = None
        # After healing, when the engine first had a leader, committed its probe write
        # (the engine says), and was whole again.
        self.heal_marks: dict[str, int] = {}
        self._where_at = (0, 0)  # (step, time) of the instant under way: `where`
        self._rate_second = 0  # the virtual second messages are being counted in
        self._rate_count = 0
        self._message_budget = config.message_budget_per_s  # (asked for every message)
        self._touched: set[int] = set()  # nodes that received something this instant
        self._pauses: dict[int, int] = {}  # paused node -> when it resumes
        self._paused_view = types.MappingProxyType(self._pauses)
        # Goes up whenever a fault is injected or a node stops, starts, pauses or resumes:
        # what depends only on those (the availability checks' topology) is kept till then.
        self.topology_version = 0
        self.roles_version = 0  # goes up whenever a node's traced role or term changes
        self._leaders: tuple[int, Mapping[int, int]] = (-1, {})  # (roles version, leaders)
        engine.attach(self)
        self.availability = Availability(self, engine.timing())
        handles = engine.client_handles(workload.clients)
        self.network.homes = {
            CLIENT_BASE + i: self.ids[i % len(self.ids)] for i in range(len(handles))
        }
        workload.setup(rng_workload, handles)
        nemesis.setup(rng_nemesis, self.ids, config.base_network)

    # -- what engines use ---------------------------------------------------------------

    def _clock(self, rng: random.Random, max_skew_ms: int | None = None) -> NodeClock:
        c = self.config
        skew = c.max_clock_skew_ms if max_skew_ms is None else max_skew_ms
        return NodeClock(rng.randint(0, skew), rng.randint(-c.max_drift_ppm, c.max_drift_ppm))

    def client_clock(self, client: int) -> NodeClock:
        """Client `client`'s own clock, skewed (up to `max_client_clock_skew_ms`) and
        drifting like a node's."""
        clock = self.client_clocks.get(client)
        if clock is None:
            skew = self.config.max_client_clock_skew_ms
            clock = self.client_clocks[client] = self._clock(self.rng_client_clocks, skew)
        return clock

    def node_clock(self, node: int) -> NodeClock:
        return self.nodes[node].clock

    def record(self, event: Event) -> None:
        self.trace.add(event)

    @property
    def where(self) -> Where:
        """The step and virtual time of the instant under way (for violations)."""
        return Where(*self._where_at)

    def fail(self, invariant: str, message: str, nodes: Any) -> SafetyViolation:
        """The violation to raise: `invariant` did not hold, here and now."""
        return SafetyViolation(invariant, message, self.where, nodes)

    def send(
        self, src: int, dst: int, payload: Any, *, what: str, term: int, size: int = 0,
        duplicable: bool,
    ) -> None:  # fmt: skip
        """Put a message on the network (`what`, `term` and `size` are for the trace)."""
        second = self.now // 1000
        if second != self._rate_second:
            self._rate_second, self._rate_count = second, 0
        self._rate_count += 1
        if self._rate_count > self._message_budget:
            raise self.fail(
                "message storm",
                f"more than {self._message_budget} messages sent within virtual second {second}",
                (src,),
            )
        times = self.network.send(Envelope(src, dst, payload, self.now), duplicable)
        self.trace.add_values(Sent, self.now, src, dst, what, term, size, tuple(times))

    def touch(self, node: int) -> None:
        """`node` has an input the engine made for it (not a delivery): it takes a step at
        this instant, after the nodes that already did."""
        self._touched.add(node)

    def paused(self, node: int) -> bool:
        return node in self._pauses

    def paused_nodes(self) -> Mapping[int, int]:
        """Paused node -> when it resumes: a read-only view that stays current."""
        return self._paused_view

    def leaders(self) -> Mapping[int, int]:
        """Node -> term, of every node leading as of the end of its last step (kept until
        a traced role changes: the availability check asks at every step)."""
        if self._leaders[0] != self.roles_version:
            leading = {
                n.id: n.role[1] for n in self.nodes.values() if n.role and n.role[0] == "leader"
            }
            self._leaders = (self.roles_version, leading)
        return self._leaders[1]

    # -- running ------------------------------------------------------------------------

    def run(self) -> SimResult:
        with heap_frozen():  # (the collector's passes skip what existed before the run)
            return self._run()

    def _run(self) -> SimResult:
        violation: SafetyViolation | None = None
        error: dict[str, Any] | None = None
        engine = self.engine
        settings = tuple(sorted(engine.settings().items()))
        self.trace.add(EngineStarted(0, engine.name, engine.version, settings))
        try:
            for node in self.ids:
                engine.start(node)
                self._trace_role(node)
            self._run_until(self.config.duration_ms)
            self._heal()
            self._converge()
            engine.check_final()
        except SafetyViolation as e:
            violation = e
        except AssertionError as e:  # an assertion of the code under test: an invariant too
            violation = SafetyViolation("assertion", f"{type(e).__name__}: {e}", self.where, ())
        except Exception as e:  # noqa: BLE001 - reported with the seed: the run is the boundary
            error = {
                "type": type(e).__name__,
                "message": str(e),
                "step": self.step,
                "time_ms": self.now,
                "traceback": traceback.format_exc(limit=12),
            }
        report = engine.finish(violation)
        outcome = "error" if error else str(report["invariant"]) if report else "ok"
        self.trace.add(RunEnded(self.now, outcome))
        result = self._result(report, error)
        if self.check_timeout_s is None:
            return result
        return attrs.evolve(result, linearizability=self._check_history(self.check_timeout_s))

    def _check_history(self, timeout_s: float) -> CheckResult | None:
        """The history judged by `model`, or by the workload's own check."""
        if self.model is None:
            return self.workload.check(timeout_s)
        history = history_from_events(
            self.workload.history(), source=f"{self.workload.name} workload"
        )
        return check(
            history, self.model, timeout_s=timeout_s, core_timeout_s=None, clock=EffortClock()
        )

    def _run_until(self, end_ms: int) -> None:
        while self._advance(end_ms):
            pass

    def _advance(self, limit_ms: int) -> bool:
        """Do everything due at the next instant, if it is at or before `limit_ms`."""
        t = self._next_time()
        if t is None or t > limit_ms:
            self.now = max(self.now, limit_ms)
            return False
        self.now = t
        self.step += 1
        self._where_at = (self.step, t)
        engine = self.engine
        network = self.network
        while (envelope := network.pop_due(t)) is not None:
            self._deliver(envelope)
        if self._pauses:
            for node_id, until in sorted(self._pauses.items()):
                if until <= t:
                    self._resume(self.nodes[node_id])
        if self.healed_at is None:
            nemesis_due = self.nemesis.next_ms()
            if nemesis_due is not None and nemesis_due <= t:
                for fault in self.nemesis.fire(t, self._view()):
                    self._inject(fault)
        workload_due = self.workload.next_ms()
        if workload_due is not None and workload_due <= t:
            self.workload.act(t)
        touched, self._touched = self._touched, set()
        due = engine.due(t)
        if due:
            touched.update(due)
        nodes = self.nodes
        for node in sorted(touched) if len(touched) > 1 else touched:
            if nodes[node].paused_until is None and engine.running(node):
                engine.step_node(node)
                self._trace_role(node)
        engine.step_clients()
        engine.after_step()
        self.availability.after_step()
        return True

    def _next_time(self) -> int | None:
        now = self.now
        if self._touched:
            return now  # (nothing is due before now)
        queue = self.network.next_ms()
        t = min(self._pauses.values()) if self._pauses else queue
        if queue is not None and t is not None and queue < t:
            t = queue
        for due in (
            self.engine.next_wake_ms(),
            self.nemesis.next_ms() if self.healed_at is None else None,
            self.workload.next_ms(),
        ):
            if due is not None and (t is None or due < t):
                t = due
        return t if t is None or t > now else now

    def _deliver(self, envelope: Envelope) -> None:
        dst = envelope.dst
        node = self.nodes.get(dst)
        if node is not None:
            if not self.engine.running(dst):
                self.network.stats.to_down_node += 1
                return
            if node.paused_until is not None:
                node.backlog.append(envelope)
                return
            self._touched.add(dst)
            if dst in self.availability.cut_off:  # (a leader cut off hears it: rare)
                self.availability.delivered(envelope.src, dst)
        self.network.stats.delivered += 1
        self.engine.deliver(envelope)

    def _resume(self, node: _Node) -> None:
        node.paused_until = None
        del self._pauses[node.id]
        self.topology_version += 1
        self.trace.add(NodeResumed(self.now, node.id))
        backlog, node.backlog = node.backlog, []
        self.counters.paused_deliveries += len(backlog)
        for envelope in backlog:
            self._deliver(envelope)
        if self.engine.running(node.id):
            self._touched.add(node.id)

    def _trace_role(self, node: int) -> None:
        """A `RoleChanged` event whenever a node's role or term changes (for the report's
        timeline: leaders and terms over time)."""
        state = self.nodes[node]
        role = self.engine.role(node)
        if role != state.role:
            state.role = role
            self.roles_version += 1
            if role is not None:
                self.trace.add(RoleChanged(self.now, node, role[0], role[1]))

    def node_stopped(self, node: int) -> None:
        """An engine's node went down (crashed, or failed to start): forget its pause."""
        state = self.nodes[node]
        state.paused_until = None
        self._pauses.pop(node, None)
        state.backlog.clear()
        state.role = None
        self.topology_version += 1
        self.roles_version += 1

    # -- faults -------------------------------------------------------------------------

    def _inject(self, fault: Fault) -> None:
        self.counters.faults[fault.kind] = self.counters.faults.get(fault.kind, 0) + 1
        self.topology_version += 1
        self.trace.add(FaultInjected(self.now, fault))
        engine = self.engine
        if self.network.apply(fault, self.ids):
            return
        if isinstance(fault, Crash):
            if engine.running(fault.node):
                engine.crash(fault.node, fault.during_sync)
        elif isinstance(fault, Restart):
            if engine.running(fault.node):
                engine.crash(fault.node, False)
            engine.start(fault.node)
            self._trace_role(fault.node)
        elif isinstance(fault, Pause):
            node = self.nodes[fault.node]
            if engine.running(node.id) and node.paused_until is None:
                node.paused_until = self._pauses[node.id] = self.now + fault.duration_ms
        elif isinstance(fault, ClockJump | ClockDrift):
            self._move_clock(fault)
        elif not engine.inject(fault):
            raise TypeError(f"unknown fault {fault!r}")

    def _move_clock(self, fault: ClockJump | ClockDrift) -> None:
        """Jump or re-rate a node's clock, and count how far its reading moved. The node
        takes a step (so the engine sees its timers fall due at other virtual times)."""
        if self.engine.running(fault.node):
            self._touched.add(fault.node)
        clock, clocks = self.nodes[fault.node].clock, self.counters.clocks
        before = clock.local(self.now)
        if isinstance(fault, ClockJump):
            clock.jump(self.now, fault.forward_ms)
            clocks["jumped_ms"] += clock.local(self.now) - before
        else:
            clocks["drift_changes"] += fault.drift_ppm != clock.drift_ppm
            clock.set_drift(self.now, fault.drift_ppm)
            clocks["max_drift_ppm"] = max(clocks["max_drift_ppm"], abs(fault.drift_ppm))

    def _view(self) -> ClusterView:
        engine = self.engine
        running = tuple(n for n in self.ids if engine.running(n))
        paused = tuple(n.id for n in self.nodes.values() if n.paused_until is not None)
        conf = engine.membership()
        return ClusterView(
            self.ids,
            running,
            paused,
            engine.leader(),
            voters=conf.voters,
            learners=conf.learners,
            membership_changes=conf.changeable,
            read_rounds=engine.read_rounds,
        )

    # -- healing and convergence --------------------------------------------------------

    def _heal(self) -> None:
        self.healed_at = self.now
        self.trace.add(Healed(self.now))
        self.network.heal(self.config.base_network)
        for node in self.nodes.values():
            if node.paused_until is not None:
                self._resume(node)
        self.engine.heal()
        self.topology_version += 1
        for node_id in self.ids:
            self._trace_role(node_id)

    def _converge(self) -> None:
        assert self.healed_at is not None
        deadline = self.healed_at + self.config.heal_timeout_ms
        # The workload runs on until every kind of operation succeeded after healing, or
        # `after_heal_ms` after the probe write committed, and stops at the latest a quiet
        # tail before the deadline (in-flight operations end, the replicas converge).
        quiet_ms = min(AFTER_HEAL_QUIET_MS, self.config.heal_timeout_ms // 4)
        stop_by = deadline - quiet_ms
        next_count: int | None = self.healed_at
        engine = self.engine
        while True:
            if next_count is not None and self.now >= next_count:
                next_count = self.now + AFTER_HEAL_CHECK_MS
                probe = self.heal_marks.get("probe_ms")
                waited = probe is not None and self.now >= probe + self.config.after_heal_ms
                if self.now >= stop_by or waited or self._stats().ok_after_heal:
                    self.workload.stop(self.now)
                    next_count = None
            if "leader_ms" not in self.heal_marks and engine.leader():
                self.heal_marks["leader_ms"] = self.now
            missing = engine.healed()
            if missing is None and next_count is None:
                self.heal_marks["converged_ms"] = self.now
                return
            limit = deadline if next_count is None else min(next_count, deadline)
            if not self._advance(limit) and (next_count is None or self.now >= deadline):
                break
        assert missing is not None  # the workload stops before the deadline
        check, what = missing
        raise self.fail(check, f"{what} within {self.config.heal_timeout_ms} ms after the "
                        "faults healed", self.ids)  # fmt: skip

    # -- the result ---------------------------------------------------------------------

    def _stats(self) -> OperationStats:
        """The workload's history counted by kind, around the heal (the stats check)."""
        required = getattr(self.workload, "stats_kinds", None)
        return operation_stats(self.workload.history(), self.healed_at, required)

    def _result(self, violation: dict[str, Any] | None, error: dict[str, Any] | None) -> SimResult:
        c = self.counters
        c.nemesis = dict(sorted(getattr(self.nemesis, "coverage", {}).items()))
        c.network = attrs.asdict(self.network.stats)
        c.availability = self.availability.counts()
        healed, marks = self.healed_at, self.heal_marks
        timings = {
            "healed_at_ms": healed,
            "leader_after_heal_ms": _since(healed, marks.get("leader_ms")),
            "probe_committed_after_heal_ms": _since(healed, marks.get("probe_ms")),
            "converged_after_heal_ms": _since(healed, marks.get("converged_ms")),
        }
        return SimResult(
            config=self.config,
            nemesis=self.nemesis.name,
            workload=self.workload.name,
            violation=violation,
            error=error,
            trace_hash=self.trace.hexdigest(),
            trace_records=self.trace.count,
            steps=self.step,
            end_ms=self.now,
            counters=c,
            timings=timings,
            history=self.workload.history(),
            trace=tuple(self.trace.records),  # typed events
            sessions_checked=self.engine.checks_sessions,
            engine=self.engine.name,
            settings=dict(self.engine.settings()),
            stats=self._stats(),
        )


def _since(start: int | None, at: int | None) -> int | None:
    return None if start is None or at is None else at - start
