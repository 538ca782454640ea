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
from typing import TYPE_CHECKING, Any

import attrs

from chaos.sim.events import ResourceActed, ResourceSeen
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
    serial: int  # this process's number, for the timers that concern it
    state: str = "starting"  # starting, running, stopping
    pending: Do | None = Do.START  # the start or stop under way (its answer is due)


# A process killed with a start or a stop under way: that action's answer.
_ANSWER_WHEN_KILLED = {Do.START: Seen.START_FAILED, Do.STOP: Seen.STOPPED}
# Timer kinds, in the order a tie at one instant is handled.
_DONE, _MONITORED, _CRASH, _WATCHDOG = 0, 1, 2, 3
Key = tuple[int, str, str]  # (node, group, resource)


class Processes:
    """Every node's supervisor and watchdog. `deliver(node, incarnation, observation)`
    hands an observation to the node's controller (the shell drops it if that
    incarnation of the node is gone, and queues it while the node is paused)."""

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
        self._procs: dict[Key, _Process] = {}
        self._timers: list[tuple[int, int, int, tuple[Any, ...]]] = []
        self._seq = 0
        self._serial = 0
        self._lease_local: dict[int, int] = {}  # node -> lease end on its clock
        self._generation: dict[int, int] = {}  # node -> its supervisor's incarnation
        self.counts = {"starts": 0, "start_failures": 0, "stops": 0, "stop_kills": 0,
                       "crashes": 0, "watchdog_kills": 0, "leftovers_killed": 0}  # fmt: skip

    # -- what the shell asks -------------------------------------------------------------

    def act(self, node: int, action: Action) -> None:
        now, rng = self._sim.now, self._rng
        res = action.resource
        self._sim.record(ResourceActed(now, node, action.group, res.name, action.epoch,
                                       action.do.name.lower()))  # fmt: skip
        key = (node, action.group, res.name)
        proc = self._procs.get(key)
        flaws = self._flaws(node, res.kind)
        if action.do == Do.MONITOR:
            self._later(now + rng.randint(*MONITOR_MS), _MONITORED, key, action.epoch)
            return
        if action.do == Do.STOP:
            if proc is None:  # nothing runs: stopped already
                self._answer(node, Observation(action.group, res.name, action.epoch,
                                               Seen.STOPPED, "not running"))  # fmt: skip
                return
            assert proc.pending is None, f"a stop of {key} while its {proc.pending} is under way"
            proc.state, proc.pending = "stopping", Do.STOP
            self.counts["stops"] += 1
            if rng.random() < flaws.stop_hangs:
                self.counts["stop_kills"] += 1
                took, seen, detail = action.timeout_ms, Seen.STOPPED, "killed at its stop timeout"
            else:
                took, seen, detail = min(rng.randint(*STOP_MS), action.timeout_ms), Seen.STOPPED, ""
            self._later(now + took, _DONE, key, proc.serial, seen, detail)
            return
        assert action.do == Do.START
        if proc is not None:
            raise self._sim.fail(
                "groups",
                f"node {node} starts {action.group}/{res.name} (epoch {action.epoch}) while "
                f"it still runs (epoch {proc.epoch}, {proc.state})",
                (node,),
            )
        self._serial += 1
        proc = self._procs[key] = _Process(
            node, action.group, res.name, res.kind, action.epoch, self._serial
        )
        self._ledger.spawned(node, action.group, action.epoch, now)
        self.counts["starts"] += 1
        if rng.random() < flaws.start_hangs:
            took, seen, detail = action.timeout_ms, Seen.START_FAILED, "start timed out"
        elif rng.random() < flaws.start_fails:
            took, seen, detail = rng.randint(*START_MS), Seen.START_FAILED, "start failed"
        else:
            took, seen, detail = rng.randint(*START_MS), Seen.STARTED, ""
        self._later(now + min(took, action.timeout_ms), _DONE, key, proc.serial, seen, detail)

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
            self._end(key, "leftover", None)

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
                self._done(*args)
            elif kind == _MONITORED:
                self._monitored(*args)
            elif kind == _CRASH:
                self._crash(*args)
            else:
                self._watchdog(*args)

    def _later(self, at: int, kind: int, *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (at, kind, self._seq, args))

    def _done(self, key: Key, serial: int, seen: Seen, detail: str) -> None:
        proc = self._procs.get(key)
        if proc is None or proc.serial != serial:
            return  # killed meanwhile (the watchdog, a restart): answered then
        node, group, resource = key
        proc.pending = None
        if seen == Seen.STARTED:
            proc.state = "running"
            self._ledger.running(node, group, resource, proc.epoch, self._sim.now)
            if self._flaws(node, proc.kind).flaky:
                after = int(self._rng.expovariate(1 / MEAN_CRASH_AFTER_MS)) + 1
                self._later(self._sim.now + after, _CRASH, key, serial)
            self._answer(node, Observation(group, resource, proc.epoch, seen, detail))
            return
        # A failed start (its process is gone) or a completed stop.
        self.counts["start_failures"] += seen == Seen.START_FAILED
        self._end(key, "start-failed" if seen == Seen.START_FAILED else "stopped", None)
        self._answer(node, Observation(group, resource, proc.epoch, seen, detail))

    def _monitored(self, key: Key, epoch: int) -> None:
        proc = self._procs.get(key)
        ok = proc is not None and proc.state == "running"
        seen, detail = (Seen.MONITOR_OK, "") if ok else (Seen.MONITOR_FAILED, "not running")
        node, group, resource = key
        self._answer(node, Observation(group, resource, epoch, seen, detail))

    def _crash(self, key: Key, serial: int) -> None:
        proc = self._procs.get(key)
        if proc is None or proc.serial != serial or proc.state != "running":
            return
        self.counts["crashes"] += 1
        self._end(key, "crashed", "exited on its own (a crash)")

    def _watchdog(self, node: int, until_local: int) -> None:
        if self._lease_local.get(node) != until_local:
            return  # renewed (or reset) since it was armed
        del self._lease_local[node]
        for key in [k for k in sorted(self._procs) if k[0] == node]:
            self.counts["watchdog_kills"] += 1
            self._end(key, "watchdog", "killed by the watchdog: the lease ended")

    def _end(self, key: Key, cause: str, detail: str | None) -> None:
        """The process `key` is gone (`cause`); with a `detail`, its node's controller
        hears of it: as the answer to the start or stop under way, or as an exit."""
        proc = self._procs.pop(key)
        node, group, resource = key
        was_running = proc.state != "starting"  # (a stop follows a completed start)
        self._ledger.ended(node, group, resource, proc.epoch, self._sim.now, cause, was_running)
        if detail is not None:
            seen = Seen.EXITED if proc.pending is None else _ANSWER_WHEN_KILLED[proc.pending]
            self._answer(node, Observation(group, resource, proc.epoch, seen, detail))

    def _answer(self, node: int, observation: Observation) -> None:
        o = observation
        self._sim.record(ResourceSeen(self._sim.now, node, o.group, o.resource, o.epoch,
                                      o.seen.name.lower(), o.detail))  # fmt: skip
        self._deliver(node, self._generation.get(node, 0), observation)
