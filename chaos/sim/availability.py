"""Availability, checked while faults come and go (safety alone lets a stuck cluster pass).

Two promises, each with a bound the engine states (`Engine.timing()`):

- **a healthy majority elects and commits**: once every running node has been reachable
  from every other (no cut link between them, no node paused, the network back to its
  base conditions, no fault injected) for `elect_within_ms`, and the running nodes hold
  a majority of every configuration in force, some running node leads and has committed
  an entry of its own term;
- **a leader cut off steps down**: a leader that cannot exchange messages with a majority
  of its voters (the links either way cut, or the others down or paused) steps down within
  `step_down_within_ms` of its own running time (a paused leader's time stands still).
  Messages already on their way when the links were cut still arrive (slow links can
  hold them for long), and a leader's check-quorum rightly counts them: the bound runs
  from the last moment a majority of its voters had been heard from (`delivered`).

A breach raises `sim.fail("availability", ...)`. The counts say how often each check
ran, so a campaign shows the checks were reached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaos.sim.engine import Timing
from raftcluster.raft.quorum import committed_index

if TYPE_CHECKING:
    from chaos.sim.simulator import Simulator


class Availability:
    def __init__(self, sim: Simulator, timing: Timing) -> None:
        self._sim = sim
        self._timing = timing
        self._healthy_since: int | None = None
        self._window_topology = -1  # the topology the current healthy window is for
        # What the topology checks read changes only with a fault or a node going down or
        # up: their answers are kept until then.
        self._topology = -1  # the loop's topology version the answers below are for
        self._healthy_now = False
        self._reach: dict[int, bool] = {}
        self._seen = (-1, -1)  # (topology, roles) versions the step-down check last looked at
        self._last_ms = 0
        # leader -> (term, running ms spent cut off from a majority so far); read by the
        # simulator on each delivery (`delivered`)
        self.cut_off: dict[int, tuple[int, int]] = {}
        # cut-off leader -> voter -> when a message of that voter last reached it since
        self._heard: dict[int, dict[int, int]] = {}
        self.elections_checked = 0
        self.step_downs_checked = 0

    def counts(self) -> dict[str, int]:
        return {
            "healthy_windows_checked": self.elections_checked,
            "cut_off_leaders_checked": self.step_downs_checked,
        }

    def after_step(self) -> None:
        sim = self._sim
        elapsed, self._last_ms = sim.now - self._last_ms, sim.now
        if sim.healed_at is not None:
            return  # after healing the run's own liveness check takes over
        if sim.topology_version != self._topology:
            self._topology = sim.topology_version
            self._healthy_now = self._healthy()
            self._reach = {}
        # (Each check's first test is made here, before a call: most steps end there.)
        timing = self._timing
        if timing.elect_within_ms is not None and not (
            self._topology == self._window_topology
            and self._healthy_since is not None
            and sim.now - self._healthy_since < timing.elect_within_ms
        ):
            self._check_elected()
        if timing.step_down_within_ms is not None and (
            self.cut_off or (sim.topology_version, sim.roles_version) != self._seen
        ):
            self._check_stepped_down(elapsed)

    # -- a healthy majority elects -----------------------------------------------------------

    def _check_elected(self) -> None:
        sim = self._sim
        bound = self._timing.elect_within_ms
        assert bound is not None
        if self._topology != self._window_topology or not self._healthy_now:
            self._window_topology = self._topology
            self._healthy_since = None
            return
        if self._healthy_since is None:
            self._healthy_since = sim.now
            return
        if sim.now - self._healthy_since < bound:
            return
        self._healthy_since = sim.now  # the next window starts here
        engine = sim.engine
        if not self._healthy():  # (a configuration may have changed meanwhile)
            return
        self.elections_checked += 1
        if not any(engine.serving(n) for n in sim.ids if engine.running(n)):
            roles = {n: engine.role(n) for n in sim.ids}
            raise sim.fail(
                "availability",
                f"every running node was connected and healthy for {bound} ms, and no "
                f"leader has committed in its term (roles: {roles})",
                sim.ids,
            )

    def _healthy(self) -> bool:
        sim = self._sim
        network = sim.network
        if network.degraded or network.slow or network.conditions != sim.config.base_network:
            return False
        engine = sim.engine
        up = [n for n in sim.ids if engine.running(n)]
        if any(sim.paused(n) for n in up):
            return False  # (a paused node that resumes may disrupt: a window starts after)
        if any(n != m and (n, m) in network.cuts for n in up for m in up):
            return False
        # A node counts towards a majority only while it counts itself a voter (a member
        # that lost its data directory and came back empty does not, and cannot vote).
        members = {n for n in up if n in engine.voters(n)}
        configurations = {engine.voters(n) for n in up} - {()}
        return bool(configurations) and all(
            len(members & set(voters)) > len(voters) // 2 for voters in configurations
        )

    # -- a cut-off leader steps down -----------------------------------------------------------

    def _check_stepped_down(self, elapsed_ms: int) -> None:
        sim = self._sim
        bound = self._timing.step_down_within_ms
        assert bound is not None
        # (`after_step` calls this only when a leader was cut off, or something that could
        # cut one off changed)
        self._seen = (sim.topology_version, sim.roles_version)
        leaders = sim.leaders()
        for node in [n for n in self.cut_off if n not in leaders]:
            del self.cut_off[node]
            self._heard.pop(node, None)
        for node, term in leaders.items():
            reaches = self._reach.get(node)
            if reaches is None:
                reaches = self._reach[node] = self._reaches_majority(node)
            if reaches:
                self.cut_off.pop(node, None)
                self._heard.pop(node, None)
                continue
            before_term, spent = self.cut_off.get(node, (term, -1))
            if before_term != term or spent < 0:
                self.cut_off[node] = (term, 0)  # cut off from now on
                self.step_downs_checked += 1
                continue
            if not sim.paused(node):
                spent += elapsed_ms
            self.cut_off[node] = (term, spent)
            if spent > bound:
                raise sim.fail(
                    "availability",
                    f"node {node} still leads term {term} {spent} ms after it lost contact "
                    f"with a majority of its voters (it must step down within {bound} ms)",
                    (node,),
                )

    def delivered(self, src: int, dst: int) -> None:
        """A message from `src` reached `dst`, a leader counted as cut off (the simulator
        calls this only then). If, counting it, a majority of `dst`'s voters has been
        heard from more recently than the time spent cut off says, that time starts from
        there: the leader's check-quorum counts what it hears, however late."""
        now = self._sim.now
        heard = self._heard.setdefault(dst, {})
        heard[src] = now
        term, spent = self.cut_off[dst]
        if spent <= 0:
            return
        voters = self._sim.engine.voters(dst)
        if not voters or src not in voters:
            return
        # The latest time a majority had been heard from: the quorum's "index" of contact.
        contact = {
            v: now if v == dst or self._reachable(dst, v) else heard.get(v, -1) for v in voters
        }
        since = committed_index(voters, contact)
        if since >= 0:
            self.cut_off[dst] = (term, min(spent, now - since))

    def _reaches_majority(self, node: int) -> bool:
        voters = self._sim.engine.voters(node)
        if not voters:
            return True
        reached = sum(v == node or self._reachable(node, v) for v in voters)
        return reached > len(voters) // 2

    def _reachable(self, node: int, v: int) -> bool:
        """Whether `node` and `v` can exchange messages now (both ways up, `v` running)."""
        sim = self._sim
        cuts = sim.network.cuts
        return bool(
            sim.engine.running(v)
            and not sim.paused(v)
            and (node, v) not in cuts
            and (v, node) not in cuts
        )
