"""`client.groups`: the cluster service's resource groups, through a client's session.

Every method is one or a few state machine requests of the `groups` part
(statemachine/groups/messages.py) sent with `Client.write` (commands: through the
session, at most once) or `Client.read` (queries: linearizable). Commands carry `at_ms`,
this machine's wall clock in milliseconds (the part never reads a clock; it never lets
its time go back, so a client whose clock is behind cannot undo time either).

Errors are those of `Client.write` / `Client.read`: a refusal of the part is a `Rejected`
(its message says why: "group 'web' is STARTING: set it offline first"), a missing group
`GroupNotFound`, an invalid value `InvalidArgument` (raised before anything is sent),
plus `Unavailable` and `OutcomeUnknown`. A group file that cannot be applied is a
`GroupFileError` (raftcluster/client/group_file.py), raised before anything is written.

Changing one field (`set`, `add_resource`, `remove_resource`) reads the group's spec and
writes it back whole (`UpdateGroup`): two operators changing one group at the same moment
may overwrite each other's change (the last write wins).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from raftcluster.client.group_file import (
    GROUP_FIELDS,
    GroupFile,
    failback_named,
    load_group_file,
    plan_apply,
)
from raftcluster.client.values import Consistency
from raftcluster.errors import GroupNotFound
from statemachine.codec import Message
from statemachine.errors import InvalidArgument
from statemachine.groups.messages import (
    CreateGroup,
    Decision,
    DeleteGroup,
    Done,
    Failback,
    GroupInfo,
    GroupList,
    GroupSpec,
    ListGroups,
    MoveGroup,
    Placement,
    ResourceSpec,
    SetGroupOffline,
    SetGroupOnline,
    UpdateGroup,
    WhatIf,
    Why,
)
from statemachine.results import expect


def wall_clock_ms() -> int:
    """This machine's wall clock in milliseconds since the epoch: the `at_ms` of commands
    (failback windows are hours of the day of it)."""
    return time.time_ns() // 1_000_000


class Requests(Protocol):
    """What `Groups`, `Nodes` and `GroupEvents` need of a client (`Client` is one)."""

    async def write(self, command: Message, *, timeout_ms: int | None = None) -> Message: ...

    async def read(
        self,
        query: Message,
        *,
        consistency: Consistency = "linearizable",
        timeout_ms: int | None = None,
    ) -> Message: ...


@attrs.frozen
class ApplyResult:
    """What `Groups.apply` did (or, with `dry_run`, would do): group names by outcome."""

    created: tuple[str, ...]
    updated: tuple[str, ...]  # spec or online-ness changed
    unchanged: tuple[str, ...]
    deleted: tuple[str, ...]  # with prune only
    left_alone: tuple[str, ...]  # in the cluster, not in the file (no prune)
    writes: int  # commands written (0 for a dry run, or when nothing changed)
    revision: int  # the groups revision after the last write (before, when none)
    dry_run: bool = False


class Groups:
    """The cluster service's groups (`client.groups`). Safe to share between tasks."""

    def __init__(self, client: Requests) -> None:
        self._client = client

    # -- defining groups -----------------------------------------------------------------

    async def create(self, spec: GroupSpec, *, online: bool = True) -> Done:
        """Define a group (`online`: wanted online now). Raises Rejected if the name exists
        or its `start_after` / `colocate_with` close a cycle. Cancellation: it may still be
        applied (once); its outcome is unknown."""
        return await self._write(CreateGroup(spec, online, wall_clock_ms()))

    async def delete(self, name: str) -> Done:
        """Delete an OFFLINE or FAILED group (Rejected otherwise: set it offline first).
        Cancellation: as `create`."""
        await self.get(name)
        return await self._write(DeleteGroup(name, wall_clock_ms()))

    async def set(self, name: str, **changes: Any) -> Done:
        """Change the group's policies: `set("web", preferred_owners=(2, 1),
        failback="immediate")`; every GroupSpec field but `name` and `resources` (use
        `add_resource` / `remove_resource`). Lists become tuples, a failback may be named.
        An unknown field or a bad value is an InvalidArgument naming it (nothing is sent).
        Cancellation: as `create`."""
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in GROUP_FIELDS:
                known = ", ".join(GROUP_FIELDS)
                raise InvalidArgument(f"Groups.set({key}=)", f"unknown field (the fields: {known})")
            values[key] = _normalized(key, value)
        info = await self.get(name)
        try:
            spec = attrs.evolve(info.spec, **values)
        except TypeError as e:
            raise InvalidArgument("Groups.set", str(e)) from None
        return await self._write(UpdateGroup(spec, wall_clock_ms()))

    async def add_resource(self, group: str, resource: ResourceSpec) -> Done:
        """Append `resource` to the group (it starts after the others). Refused while the
        group is not OFFLINE or FAILED, or if the name is taken. Cancellation: as `create`."""
        info = await self.get(group)
        spec = attrs.evolve(info.spec, resources=(*info.spec.resources, resource))
        return await self._write(UpdateGroup(spec, wall_clock_ms()))

    async def remove_resource(self, group: str, resource_name: str) -> Done:
        """Remove the resource `resource_name` from the group (InvalidArgument if it has no
        such resource). Refused while the group is not OFFLINE or FAILED.
        Cancellation: as `create`."""
        info = await self.get(group)
        kept = tuple(r for r in info.spec.resources if r.name != resource_name)
        if len(kept) == len(info.spec.resources):
            names = ", ".join(r.name for r in info.spec.resources) or "none"
            raise InvalidArgument(
                f"group {group!r}", f"no resource named {resource_name!r} (it has: {names})"
            )
        spec = attrs.evolve(info.spec, resources=kept)
        return await self._write(UpdateGroup(spec, wall_clock_ms()))

    # -- running them ----------------------------------------------------------------------

    async def move(self, name: str, node: int = 0) -> Done:
        """A planned move of a running group to `node` (0: the best other node): stopped on
        its owner, then started there. Cancellation: as `create`."""
        await self.get(name)
        return await self._write(MoveGroup(name, node, wall_clock_ms()))

    async def online(self, name: str) -> Done:
        """Want the group online (clears FAILED). Cancellation: as `create`."""
        await self.get(name)
        return await self._write(SetGroupOnline(name, wall_clock_ms()))

    async def offline(self, name: str) -> Done:
        """Want the group offline (a planned stop). Cancellation: as `create`."""
        await self.get(name)
        return await self._write(SetGroupOffline(name, wall_clock_ms()))

    # -- reading ---------------------------------------------------------------------------

    async def list(self) -> tuple[GroupInfo, ...]:
        """Every group, by name. Cancellation leaves nothing behind."""
        return (await self._list()).groups

    async def get(self, name: str) -> GroupInfo:
        """The group `name`; GroupNotFound if there is none. Cancellation leaves nothing."""
        for info in await self.list():
            if info.spec.name == name:
                return info
        raise GroupNotFound(name)

    async def why(self, name: str) -> Decision:
        """The group's last placement decision: node, rule, reason and every eligible node's
        score. Cancellation leaves nothing behind."""
        await self.get(name)
        return expect(await self._client.read(Why(name)), Decision)

    async def simulate(
        self, *, node_down: int = 0, drain: int = 0, move_group: str = "", move_to: int = 0
    ) -> Placement:
        """Where every group would go if `node_down` went down, `drain` were drained and
        `move_group` moved to `move_to` (0 each: not that): a query, it changes nothing.
        Cancellation leaves nothing behind."""
        query = WhatIf(node_down, drain, move_group, move_to, wall_clock_ms())
        return expect(await self._client.read(query), Placement)

    # -- the group file --------------------------------------------------------------------

    async def apply(
        self, source: Path | str | GroupFile, *, prune: bool = False, dry_run: bool = False
    ) -> ApplyResult:
        """Make the cluster's groups what the group file `source` (a path, or a parsed
        `GroupFile`) says: create, update, set online / offline; with `prune`, delete the
        groups it does not name. The whole file is checked first (GroupFileError, nothing
        written); a group already as the file says gets no write, so applying twice writes
        nothing the second time. `dry_run`: only say what it would do. The writes are
        separate commands: an error part way leaves the earlier ones applied (apply the
        file again). Cancellation: the write under way may still be applied; the later
        ones are not sent."""
        if isinstance(source, GroupFile):
            file = source
        else:
            file = await trio.to_thread.run_sync(load_group_file, source)
        listing = await self._list()
        plan = plan_apply(file, listing.groups, prune=prune, at_ms=wall_clock_ms())
        revision, writes = listing.revision, 0
        if not dry_run:
            for command in plan.commands:
                revision = (await self._write(command)).revision
                writes += 1
        return ApplyResult(
            plan.created,
            plan.updated,
            plan.unchanged,
            plan.deleted,
            plan.left_alone,
            writes,
            revision,
            dry_run,
        )

    # -- requests --------------------------------------------------------------------------

    async def _list(self) -> GroupList:
        return expect(await self._client.read(ListGroups()), GroupList)

    async def _write(self, command: Message) -> Done:
        return expect(await self._client.write(command), Done)


def _normalized(key: str, value: Any) -> Any:
    """A `set` value as GroupSpec holds it: a list as a tuple, a failback by its name."""
    if isinstance(value, list):
        return tuple(value)
    if key == "failback" and isinstance(value, str):
        return failback_named(
            value,
            lambda: InvalidArgument(
                "Groups.set(failback=)",
                f"{value!r}: one of {', '.join(f.name.lower() for f in Failback)}",
            ),
        )
    return value
