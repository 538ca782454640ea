"""The blocking twins of `Groups`, `Nodes` and `GroupEvents`, for `SyncClient`.

    with raftcluster.connect_sync(cluster="mycluster") as client:
        client.groups.create(GroupSpec("web", preferred_owners=(1, 2)))
        for event in client.events(from_revision=1):
            ...

Each method runs the matching coroutine on the sync client's trio thread and blocks
the calling thread until it finishes (raftcluster/client/sync.py): the same arguments,
results and errors. Closing the client cancels the calls under way (ClientClosed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from raftcluster.client.events import GroupEvents
from raftcluster.client.group_file import GroupFile
from raftcluster.client.groups import ApplyResult, Groups
from raftcluster.client.nodes import MemberStatus, Nodes
from statemachine.groups.messages import (
    Decision,
    Done,
    GroupEvent,
    GroupInfo,
    GroupSpec,
    NodeInfo,
    Placement,
    ResourceSpec,
)

T = TypeVar("T")


class Portal(Protocol):
    """Runs a coroutine function on the client's trio thread (sync.py's `_Portal`)."""

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T: ...


class SyncGroups:
    """`client.groups` of a `SyncClient`: see `Groups`."""

    def __init__(self, portal: Portal, groups: Groups) -> None:
        self._portal = portal
        self._groups = groups

    def create(self, spec: GroupSpec, *, online: bool = True) -> Done:
        return self._portal.run(self._groups.create, spec, online=online)

    def delete(self, name: str) -> Done:
        return self._portal.run(self._groups.delete, name)

    def set(self, name: str, **changes: Any) -> Done:
        return self._portal.run(self._groups.set, name, **changes)

    def add_resource(self, group: str, resource: ResourceSpec) -> Done:
        return self._portal.run(self._groups.add_resource, group, resource)

    def remove_resource(self, group: str, resource_name: str) -> Done:
        return self._portal.run(self._groups.remove_resource, group, resource_name)

    def move(self, name: str, node: int = 0) -> Done:
        return self._portal.run(self._groups.move, name, node)

    def online(self, name: str) -> Done:
        return self._portal.run(self._groups.online, name)

    def offline(self, name: str) -> Done:
        return self._portal.run(self._groups.offline, name)

    def list(self) -> tuple[GroupInfo, ...]:
        return self._portal.run(self._groups.list)

    def get(self, name: str) -> GroupInfo:
        return self._portal.run(self._groups.get, name)

    def why(self, name: str) -> Decision:
        return self._portal.run(self._groups.why, name)

    def simulate(
        self, *, node_down: int = 0, drain: int = 0, move_group: str = "", move_to: int = 0
    ) -> Placement:
        return self._portal.run(
            self._groups.simulate,
            node_down=node_down,
            drain=drain,
            move_group=move_group,
            move_to=move_to,
        )

    def apply(
        self, source: Path | str | GroupFile, *, prune: bool = False, dry_run: bool = False
    ) -> ApplyResult:
        return self._portal.run(self._groups.apply, source, prune=prune, dry_run=dry_run)


class SyncNodes:
    """`client.nodes` of a `SyncClient`: see `Nodes`."""

    def __init__(self, portal: Portal, nodes: Nodes) -> None:
        self._portal = portal
        self._nodes = nodes

    def list(self) -> tuple[NodeInfo, ...]:
        return self._portal.run(self._nodes.list)

    def status(self, node: int) -> MemberStatus:
        return self._portal.run(self._nodes.status, node)

    def drain(self, node: int) -> Done:
        return self._portal.run(self._nodes.drain, node)

    def resume(self, node: int, *, failback: bool = True) -> Done:
        return self._portal.run(self._nodes.resume, node, failback=failback)


class SyncGroupEvents:
    """``for event in client.events(from_revision)``: blocks until the next event. Never
    ends on its own; raises EventsCompacted as `GroupEvents` does, and ClientClosed once
    the client closes. `page()` returns what is available now without waiting."""

    def __init__(self, portal: Portal, events: GroupEvents) -> None:
        self._portal = portal
        self._events = events

    @property
    def next_revision(self) -> int:
        return self._events.next_revision

    def page(self) -> tuple[GroupEvent, ...]:
        return self._portal.run(self._events.page)

    def __iter__(self) -> Iterator[GroupEvent]:
        return self

    def __next__(self) -> GroupEvent:
        return self._portal.run(self._events.__anext__)
