"""The seam between the simulator's one loop and the system under test.

The loop (`chaos.sim.simulator.Simulator`) owns virtual time, the network, node and
client clocks, pauses, the nemesis, the workload, healing and the checks every engine
shares (availability, the trace). An `Engine` owns the nodes and clients of one system:
ours (`chaos.sim.raftcluster_engine`: the real cycle core, replica, codec and
write-ahead log) or pysyncobj (`chaos.sim.pysyncobj_engine`: unmodified pysyncobj nodes).
An engine reaches the loop's services through the `Simulator` it is attached to
(`sim.send`, `sim.trace`, `sim.node_local_ms`, `sim.fail`...), and records what it
did as typed events (`chaos.sim.events`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from chaos.sim.faults import Fault
    from chaos.sim.invariants import SafetyViolation
    from chaos.sim.network import Envelope
    from chaos.sim.simulator import Simulator


@attrs.frozen
class Membership:
    """The configuration the current leader works with (every node a voter if none)."""

    voters: tuple[int, ...]
    learners: tuple[int, ...] = ()
    # Whether the engine takes membership steps (`ChangeMembership` faults) at all.
    changeable: bool = True


@attrs.frozen
class Timing:
    """Bounds the availability checks hold an engine to (virtual milliseconds; `None`:
    the engine promises no such bound)."""

    # A majority connected and healthy this long has a leader that has committed in its term.
    elect_within_ms: int | None
    # A leader that cannot exchange messages with a majority steps down within this long
    # (of its own running time).
    step_down_within_ms: int | None


class Engine(Protocol):
    name: str  # as reports and `--engine` call it
    version: str
    checks_sessions: bool  # whether the exactly-once check of client sessions applies
    # Whether a leader confirms linearizable reads by rounds of heartbeats (ReadIndex):
    # the `late-answers` hard case is for those, and the random mix leaves it out else.
    read_rounds: bool

    def attach(self, sim: Simulator) -> None:
        """Called once, before anything else: the loop the engine runs in."""
        ...

    def settings(self) -> Mapping[str, int | bool | str]:
        """The engine's settings for this seed (shown in the trace and the report)."""
        ...

    def client_handles(self, count: int) -> Sequence[Any]:
        """`count` clients for the workload (each with `write` and `read`)."""
        ...

    def timing(self) -> Timing: ...

    # -- nodes ---------------------------------------------------------------------------

    def start(self, node: int) -> None:
        """Start `node` from its disk (the first time: a new cluster)."""
        ...

    def crash(self, node: int, during_persist: bool) -> None:
        """Power off a running `node` now, or (`during_persist`) inside its next persist."""
        ...

    def running(self, node: int) -> bool: ...

    def deliver(self, envelope: Envelope) -> None:
        """An envelope arrived: at a running node that is not paused, or at a client."""
        ...

    def next_wake_ms(self) -> int | None:
        """The earliest virtual time at which a timer falls due: a running node's that is
        not paused (`sim.paused`), or a client's. None: no timer."""
        ...

    def due(self, now_ms: int) -> list[int]:
        """The running nodes, not paused, with a timer due at `now_ms`, in node order."""
        ...

    def step_node(self, node: int) -> None:
        """The end of an instant at a running node that is not paused: act on what was
        delivered, and on timers that are due."""
        ...

    def role(self, node: int) -> tuple[str, int] | None:
        """(role, term) of a running node (roles: follower, pre_candidate, candidate,
        leader); None when it is down."""
        ...

    def leader(self) -> int:
        """The running leader of the highest term (0: none)."""
        ...

    def membership(self) -> Membership: ...

    def voters(self, node: int) -> tuple[int, ...]:
        """The voters of the configuration a running node works with."""
        ...

    def serving(self, node: int) -> bool:
        """Whether a running node leads and has committed an entry of its term."""
        ...

    # -- clients -------------------------------------------------------------------------

    def step_clients(self) -> None:
        """Client timers that are due, and what clients have to send."""
        ...

    # -- faults, healing, the end ----------------------------------------------------------

    def inject(self, fault: Fault) -> bool:
        """Carry out a fault that is the engine's business (membership, disks): True if it
        was one."""
        ...

    def heal(self) -> None:
        """The faults ended: restart what is down, restore what the engine must, and start
        the probe write."""
        ...

    def healed(self) -> tuple[str, str] | None:
        """None once the cluster is whole again after healing (a leader, the probe write
        committed, every node the same); else the check that fails if it stays so
        ("liveness", "convergence") and what is still missing, in a few words."""
        ...

    def after_step(self) -> None:
        """Check the engine's invariants after an instant (raise `sim.fail(...)`)."""
        ...

    def check_final(self) -> None:
        """The cluster is whole again after healing: check what is checked at the end."""
        ...

    def finish(self, raised: SafetyViolation | None) -> dict[str, Any] | None:
        """The run is over, whatever happened (`raised`: the violation that ended it):
        fill the counters, release what the engine holds, and return the run's violation
        report (`raised.to_json()`, or the engine's own findings in that shape), or None.
        Never raises."""
        ...
