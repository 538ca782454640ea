"""Simulated resources: each node's process supervisor and its watchdog, in virtual time.

The resource controller (`raftcluster.groups.controller`) asks for starts, stops and
monitors (`Action`); here they take virtual time and may go wrong the ways real
processes do, and each is answered by exactly one `Observation`, as the controller's
contract says:
- a start takes a drawn time and may fail (`START_FAILED`), or hang until its timeout
  (then the supervisor kills what it began: `START_FAILED`);
- a stop takes a drawn time, or hangs until its timeout and is killed (`STOPPED`);
- a monitor answers whether the process runs;
- a running resource of a flaky kind crashes after a drawn time (`EXITED`).

The processes of a node are not the node: they outlive a crash of the node's process
(a real supervisor's children do, in their own process groups) until the **watchdog**
kills them when the node's lease ends (`arm`: the lease end on the node's own clock,
reached at the virtual time that clock says). A node that starts again kills what its
previous incarnation left (`reset`), as the real supervisor does from its records.

Every process that exists (starting, running or stopping: it may touch the group's
data) is reported to the `Ledger`, which checks that a group never lives on two nodes.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from chaos.sim.groups.ledger import Ledger
from raftcluster.groups.actions import Action, Do, Observation, Seen

if TYPE_CHECKING:
    from chaos.sim.simulator import Simulator

# Start and stop times of a healthy resource (ms): quick, so that failover time measures
# the cluster service, not the resources.
START_MS = (20, 400)
STOP_MS = (10, 300)
MONITOR_MS = (1, 50)
# A flaky resource crashes on average this long after it started (ms).
MEAN_CRASH_AFTER_MS = 40_000


@attrs.frozen
class Flaws:
    """How a node's resources go wrong (probabilities per action)."""

    start_fails: float = 0.0
    start_hangs: float = 0.0
    stop_hangs: float = 0.0
    flaky: bool = False  # running resources crash now and then


@attrs.define
class _Process:
    node: int
    group: str
    resource: str
    kind: str
    epoch: int
    state: str  # starting, running, stopping
    generation: int  # which incarnation's supervisor spawned it


# Timer kinds, in the order a tie at one instant is handled.
_DONE, _CRASH, _WATCHDOG = 0, 1, 2


class Processes:
    """Every node's supervisor and watchdog. `deliver(node, observation)` hands an
    observation to the node's controller (the shell queues it if the node is down or
    paused; a stale incarnation's are dropped there)."""

    def __init__(
        self,
        sim: Simulator,
        rng: random.Random,
        ledger: Ledger,
        deliver: Callable[[int, int, Observation], None],
        flaws: Callable[[int, str], Flaws],
    ) -> None:
        self._sim = sim
        self._rng = rng
        self._ledger = ledger
        self._deliver = deliver
        self._flaws = flaws
        self._procs: dict[tuple[int, str, str], _Process] = {}
        self._timers: list[tuple[int, int, int, tuple[object, ...]]] = []
        self._seq = 0
        self._lease_local: dict[int, int] = {}  # node -> lease end on its clock
        self._generation: dict[int, int] = {}  # node -> its supervisor's incarnation
        self.counts = {"starts": 0, "start_failures": 0, "stops": 0, "stop_kills": 0,
                       "crashes": 0, "watchdog_kills": 0, "leftovers_killed": 0}  # fmt: skip

    # -- what the shell asks -------------------------------------------------------------

    def act(self, node: int, action: Action) -> None:
        now, rng = self._sim.now, self._rng
        key = (node, action.group, action.resource.name)
        proc = self._procs.get(key)
        flaws = self._flaws(node, action.resource.kind)
        if action.do == Do.START:
            if proc is not None:
                raise self._sim.fail(
                    "groups",
                    f"node {node} starts {action.group}/{action.resource.name} (epoch "
                    f"{action.epoch}) while it still runs (epoch {proc.epoch}, {proc.state})",
                    (node,),
                )
            res = action.resource
            proc = _Process(node, action.group, res.name, res.kind, action.epoch,
                            "starting", self._generation.get(node, 0))  # fmt: skip
            self._procs[key] = proc
            self._ledger.spawned(node, action.group, action.epoch, now)
            self.counts["starts"] += 1
            if rng.random() < flaws.start_hangs:
                self._later(
                    now + action.timeout_ms,
                    _DONE,
                    key,
                    proc.generation,
                    Seen.START_FAILED,
                    "start timed out",
                )
            else:
                fails = rng.random() < flaws.start_fails
                took = min(rng.randint(*START_MS), action.timeout_ms)
                seen = Seen.START_FAILED if fails else Seen.STARTED
                self._later(
                    now + took, _DONE, key, proc.generation, seen, "start failed" if fails else ""
                )
        elif action.do == Do.STOP:
            if proc is None:  # nothing runs: stopped already
                self._later(now, _DONE, key, -1, Seen.STOPPED, "not running", action.epoch)
                return
            proc.state = "stopping"
            self.counts["stops"] += 1
            if rng.random() < flaws.stop_hangs:
                self.counts["stop_kills"] += 1
                self._later(
                    now + action.timeout_ms,
                    _DONE,
                    key,
                    proc.generation,
                    Seen.STOPPED,
                    "killed after its stop timeout",
                )
            else:
                took = min(rng.randint(*STOP_MS), action.timeout_ms)
                self._later(now + took, _DONE, key, proc.generation, Seen.STOPPED, "")
        else:
            assert action.do == Do.MONITOR
            took = rng.randint(*MONITOR_MS)
            self._later(now + took, _DONE, key, -1, Seen.MONITOR_OK, "", action.epoch)

    def arm(self, node: int, until_local: int) -> None:
        """The node's lease now ends at `until_local` (its clock): the watchdog kills the
        node's processes then, unless the lease is renewed first."""
        self._lease_local[node] = until_local
        at = self._sim.node_clock(node).virtual(until_local, self._sim.now)
        self._later(at, _WATCHDOG, node, until_local)

    def reset(self, node: int, generation: int) -> None:
        """The node's supervisor starts (incarnation `generation`): it kills whatever the
        previous one left running, at once, and has no lease yet."""
        self._generation[node] = generation
        self._lease_local.pop(node, None)
        for key in [k for k in sorted(self._procs) if k[0] == node]:
            self.counts["leftovers_killed"] += 1
            self._end(key, "killed by the restarted supervisor", "leftover", observe=False)

    def running(self, node: int) -> list[tuple[str, str, int]]:
        """(group, resource, epoch) of what lives on `node`, sorted."""
        return sorted(
            (p.group, p.resource, p.epoch) for k, p in self._procs.items() if k[0] == node
        )

    def lease_end(self, node: int) -> int | None:
        return self._lease_local.get(node)

    # -- time ------------------------------------------------------------------------------

    def next_ms(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def run_due(self) -> None:
        now = self._sim.now
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, kind, _, args = heapq.heappop(timers)
            if kind == _DONE:
                self._done(*args)  # type: ignore[arg-type]
            elif kind == _CRASH:
                self._crash(*args)  # type: ignore[arg-type]
            else:
                self._watchdog(*args)  # type: ignore[arg-type]

    def _later(self, at: int, kind: int, *args: object) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (at, kind, self._seq, args))

    def _done(
        self, key: tuple[int, str, str], generation: int, seen: Seen, detail: str, epoch: int = 0
    ) -> None:
        node, group, resource = key
        proc = self._procs.get(key)
        if generation >= 0:  # the answer of a process's own start or stop
            if proc is None or proc.generation != generation:
                return  # killed meanwhile (the watchdog, a restart): answered then
            epoch = proc.epoch
            if seen == Seen.STARTED:
                proc.state = "running"
                self._ledger.running(node, group, resource, epoch, self._sim.now)
                if self._flaws(node, proc.kind).flaky:
                    after = int(self._rng.expovariate(1 / MEAN_CRASH_AFTER_MS)) + 1
                    self._later(self._sim.now + after, _CRASH, key, generation, epoch)
            else:  # a failed start (its process is gone) or a completed stop
                failed = seen == Seen.START_FAILED
                self.counts["start_failures"] += failed
                self._end(key, detail, "start-failed" if failed else "stopped", observe=False)
        elif seen == Seen.MONITOR_OK and (proc is None or proc.state != "running"):
            seen, detail = Seen.MONITOR_FAILED, "not running"
        self._deliver(
            node, self._generation.get(node, 0), Observation(group, resource, epoch, seen, detail)
        )

    def _crash(self, key: tuple[int, str, str], generation: int, epoch: int) -> None:
        proc = self._procs.get(key)
        if proc is None or proc.generation != generation or proc.epoch != epoch:
            return
        if proc.state != "running":
            return
        self.counts["crashes"] += 1
        self._end(key, "exited on its own (a crash)", "crashed")

    def _watchdog(self, node: int, until_local: int) -> None:
        if self._lease_local.get(node) != until_local:
            return  # renewed (or reset) since it was armed
        del self._lease_local[node]
        for key in [k for k in sorted(self._procs) if k[0] == node]:
            self.counts["watchdog_kills"] += 1
            self._end(key, "killed by the watchdog: the lease ended", "watchdog")

    def _end(
        self, key: tuple[int, str, str], detail: str, cause: str, *, observe: bool = True
    ) -> None:
        proc = self._procs.pop(key)
        node, group, resource = key
        was_running = proc.state != "starting"  # (a stop follows a completed start)
        self._ledger.ended(node, group, resource, self._sim.now, cause, was_running)
        if observe:
            gen = self._generation.get(node, 0)
            self._deliver(node, gen, Observation(group, resource, proc.epoch, Seen.EXITED, detail))
