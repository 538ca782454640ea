"""`ResourceKind`: the protocol every resource type implements (`process`, `ocf`, yours).

A node's resource executor (`executor.py`) carries out the resource controller's actions
(`raftcluster.groups.actions.Action`) by calling the kind named by `ResourceSpec.kind`,
within the action's timeout, and turns what the call did into exactly one
`Observation`:

    start(ctx)     returns once the resource runs          -> STARTED
                   raises ResourceFailed                   -> START_FAILED
    stop(ctx)      returns once it no longer runs          -> STOPPED
    monitor(ctx)   returns if it runs and is healthy       -> MONITOR_OK
                   raises ResourceFailed                   -> MONITOR_FAILED
    watch(ctx)     (optional) returns, with what happened, when a started resource
                   ended on its own                        -> EXITED

A call that overruns its timeout is cancelled: a start is then stopped (and killed if
the stop overruns too) and counts as failed; a stop ends with every process the
resource left killed; a monitor counts as failed. Every process a kind starts runs under
the node's supervisor (`ctx.spawn`, `ctx.run_command`), in a session of its own that the
node's watchdog kills when the node's lease ends, so a kind never needs to clean up after
a fence itself.

`check(params)` validates a resource's parameters before anything runs (on the client,
when a group is declared, and on the node before a start): it raises `ResourceFailed`
with `Severity.CONFIG` for a parameter that can never work.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import attrs

from statemachine.errors import ClusterError
from statemachine.groups.messages import ResourceSpec

if TYPE_CHECKING:
    from raftcluster.supervisor.children import Child, Completed, Supervisor


class Severity(enum.IntEnum):
    """How far a failure reaches (OCF's classes of exit codes, docs/groups.md)."""

    SOFT = 1  # this attempt failed: restart in place while the policy allows (OCF 1, 7)
    HARD = 2  # not on this node: give the group up here at once (OCF 2-5)
    CONFIG = 3  # on no node: the resource's configuration is wrong (OCF 6)


class ResourceFailed(ClusterError):
    """A start, stop or monitor failed; `detail` says how (at most 512 characters reach
    the log of events)."""

    def __init__(self, detail: str, severity: Severity = Severity.SOFT) -> None:
        super().__init__(detail)
        self.detail = detail
        self.severity = severity


@attrs.frozen
class ResourceContext:
    """What one action on one resource is given.

    `env` holds what every process of the resource gets on top of the node's own
    environment: RAFTCLUSTER_EPOCH (the group's epoch: a fencing token),
    RAFTCLUSTER_GROUP, RAFTCLUSTER_RESOURCE and RAFTCLUSTER_NODE. `key` names the
    resource on this node ("group/resource"): its log files and its processes'
    sessions are filed under it."""

    node: int
    group: str
    spec: ResourceSpec
    epoch: int
    timeout_ms: int
    env: Mapping[str, str]
    supervisor: Supervisor

    @property
    def key(self) -> str:
        return f"{self.group}/{self.spec.name}"

    @property
    def params(self) -> dict[str, str]:
        return dict(self.spec.params)

    async def spawn(
        self, argv: tuple[str, ...], *, env: Mapping[str, str] = {}, cwd: str | None = None
    ) -> Child:
        """A long-running process of this resource (see `Supervisor.spawn`)."""
        return await self.supervisor.spawn(self.key, argv, env={**self.env, **env}, cwd=cwd)

    async def run_command(
        self,
        argv: tuple[str, ...],
        *,
        env: Mapping[str, str] = {},
        cwd: str | None = None,
        timeout_ms: int | None = None,
    ) -> Completed:
        """A one-shot command of this resource, run to its end or killed at the timeout
        (the action's by default) (see `Supervisor.run_command`)."""
        return await self.supervisor.run_command(
            self.key,
            argv,
            env={**self.env, **env},
            cwd=cwd,
            timeout_ms=self.timeout_ms if timeout_ms is None else timeout_ms,
        )


class ResourceKind(Protocol):
    """A resource type. One instance serves every resource of its kind on a node; keep
    per-resource state keyed by `ctx.key` (and the epoch) if any."""

    name: str

    def check(self, params: Mapping[str, str]) -> None:
        """Raise ResourceFailed(severity=CONFIG) for parameters that can never work."""
        ...

    async def start(self, ctx: ResourceContext) -> None: ...

    async def stop(self, ctx: ResourceContext) -> None: ...

    async def monitor(self, ctx: ResourceContext) -> None: ...
