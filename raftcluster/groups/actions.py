"""What the resource controller core (`controller.py`) is told and what it asks for.

The controller is a sans-IO core like the Raft core: a node's shell (the simulator now,
the node's process supervisor later) feeds it what the replicated state says this node
owns, what it observed of its resources, and the time; it returns actions to carry out
and reports to propose. Every value here is frozen and plain.
"""

from __future__ import annotations

import enum

import attrs

from statemachine.groups.messages import GroupReport, GroupState, ResourceSpec


@attrs.frozen
class Owned:
    """A group as the replicated state says this node holds it: `state` STARTING, ONLINE
    or STOPPING (a group this node does not own is simply absent)."""

    group: str
    epoch: int
    state: GroupState
    resources: tuple[ResourceSpec, ...]


class Seen(enum.IntEnum):
    """What the shell observed of one resource: the answer to an action (exactly one per
    action: STARTED or START_FAILED for a START, STOPPED for a STOP, MONITOR_OK or
    MONITOR_FAILED for a MONITOR), or the one surprise, EXITED. When the watchdog kills
    the node's resources, the shell reports EXITED for each one with no action in
    flight, and answers the actions in flight as usual."""

    STARTED = 1  # a start completed
    START_FAILED = 2  # a start failed (or timed out: the shell stopped what it began)
    STOPPED = 3  # a stop completed (killed after its timeout counts as stopped)
    MONITOR_OK = 4
    MONITOR_FAILED = 5  # a monitor found it not running, or timed out
    EXITED = 6  # it ended on its own (a crash)


@attrs.frozen
class Observation:
    """`seen` of `resource` of `group`; `epoch` is the answered action's (for EXITED, the
    epoch the resource was started under). `detail` says what happened, for reports."""

    group: str
    resource: str
    epoch: int  # the epoch of the action it answers (or the resource ran under)
    seen: Seen
    detail: str = ""
    # A START_FAILED or MONITOR_FAILED that no restart on this node can cure (an OCF
    # hard or configuration error): the group is given up here at once.
    fatal: bool = False


class Do(enum.IntEnum):
    START = 1
    STOP = 2
    MONITOR = 3


@attrs.frozen
class Action:
    """Start, stop or monitor one resource of `group` under `epoch` (the fencing token the
    resource is given, as RAFTCLUSTER_EPOCH), within `timeout_ms`. A stop that takes
    longer than its timeout ends with the resource killed (SIGKILL), then STOPPED."""

    do: Do
    group: str
    resource: ResourceSpec
    epoch: int
    timeout_ms: int


@attrs.frozen
class Lease:
    """The node's resources may run until `until_ms` (the node's clock) and no longer: a
    watchdog outside the node's own process (the simulator's; a separate process on a
    real node) kills every resource of the node when it passes, even if the node hangs.
    The controller renews it while it hears from a quorum (self-fencing)."""

    until_ms: int


@attrs.frozen
class Output:
    """What one input to the controller asks for: carry out `actions` (in order), propose
    `reports`, and tell the watchdog `lease` when it is set."""

    actions: tuple[Action, ...] = ()
    reports: tuple[GroupReport, ...] = ()  # to propose (through the log, to the leader)
    lease: Lease | None = None  # a new lease, when it changed
