"""What one live run is asked to do: `LiveConfig`, validated at the boundary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

from statemachine.errors import InvalidArgument

# The faults a live run can inject (docs/chaos-live.md). Each is a nemesis name on the
# command line; the report names the kind of fault it draws.
NEMESES: Final = ("partition", "kill", "drop", "delay", "pause")
FAULT_KIND: Final = {
    "partition": "partition", "kill": "kill", "drop": "loss", "delay": "slow-link",
    "pause": "pause",
}  # fmt: skip
# `groups`: the cluster service runs probe resources (chaos/live/groups/); no kv clients.
WORKLOADS: Final = ("register", "kv", "groups")

MAX_NODES = 9  # processes on one machine: more would only measure the machine
MAX_CLIENTS = 32
MAX_DURATION_MS = 3_600_000

# Timing of the nodes of a live run: short elections, so a run of a few seconds sees
# several leaders; still far above a loaded loopback's round trips.
NODE_SETTINGS: Final[dict[str, int | bool]] = {
    "timing.election_timeout_ms": 600,
    "timing.heartbeat_interval_ms": 60,
    "cluster.allow_fault_injection": True,
}

# The cluster service's times for the `groups` workload: quick failover, within the
# timing rule (checked when the file loads): with the election timeout above,
# ceil((400 + 600 + 200) x 1.001 / 0.999) + 100 = 1 303 <= 1 500.
GROUP_SETTINGS: Final[dict[str, int | bool]] = {
    "groups.heartbeat_interval_ms": 100,
    "groups.fence_after_ms": 400,
    "groups.kill_ms": 200,
    "groups.node_down_after_ms": 1_500,
    "groups.tick_interval_ms": 200,
    "groups.report_retry_ms": 500,
}


def node_settings(workload: str) -> dict[str, int | bool]:
    """The cluster file's settings for a run of `workload`."""
    return {**NODE_SETTINGS, **(GROUP_SETTINGS if workload == "groups" else {})}


def _nemeses(value: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(value)
    for name in names:
        if name not in NEMESES:
            raise InvalidArgument("--nemesis", f"{name!r} is not one of {', '.join(NEMESES)}")
    if len(set(names)) != len(names):
        raise InvalidArgument("--nemesis", "a nemesis is named twice")
    return names


def _between(lo: int, hi: int, flag: str) -> Callable[[object, object, int], None]:
    def check(instance: object, attribute: object, value: int) -> None:
        if not lo <= value <= hi:
            raise InvalidArgument(flag, f"{value} is outside {lo}..{hi}")

    return check


def _seconds(instance: object, attribute: object, value: float) -> None:
    if not 0 < value <= 86_400:
        raise InvalidArgument("--check-timeout", f"{value} is outside 0..86400 seconds")


@attrs.frozen(kw_only=True)
class LiveConfig:
    """One live run. Times in milliseconds; `duration_ms` is the faulty part (clients
    run and the nemesis injects), healing and the checks come after it."""

    nodes: int = attrs.field(default=3, validator=_between(1, MAX_NODES, "--nodes"))
    duration_ms: int = attrs.field(
        default=30_000, validator=_between(1_000, MAX_DURATION_MS, "--duration")
    )
    seed: int = attrs.field(default=0, validator=_between(0, 2**63 - 1, "--seed"))
    nemeses: tuple[str, ...] = attrs.field(default=("partition", "kill"), converter=_nemeses)
    workload: str = attrs.field(default="register", validator=attrs.validators.in_(WORKLOADS))
    clients: int = attrs.field(default=4, validator=_between(1, MAX_CLIENTS, "--clients"))
    # After healing: a leader, a committed write and identical replicas within this.
    heal_timeout_ms: int = attrs.field(default=20_000, validator=_between(1, 600_000, "heal"))
    # The linearizability checker's budget (wall seconds; past it the verdict is unknown).
    check_timeout_s: float = attrs.field(default=30.0, validator=_seconds)
    # A client call's deadline: past it a write is `info` (outcome unknown).
    request_timeout_ms: int = attrs.field(default=2_000, validator=_between(100, 60_000, "req"))
    # A planted bug, to see the checkers fail: each read asks a node drawn at random for
    # its own copy (not linearizable: a node cut off from the majority falls behind).
    stale_reads: bool = False
    # The first fault waits this long, so the cluster has a leader and clients a session.
    warmup_ms: int = attrs.field(default=1_000, validator=_between(0, 60_000, "warmup"))
