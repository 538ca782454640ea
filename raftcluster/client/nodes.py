"""`client.nodes`: the members of the cluster service, through a client's session.

A member is a node that serves the cluster service (`JoinNode`), with its state as the
cluster agreed on it (`NodeInfo`: UP, DOWN, PAUSED, DRAINING; its incarnation; since
when). Commands go through `Client.write` with `at_ms` the wall clock
(raftcluster/client/groups.py), queries through linearizable `Client.read`. Errors:
`NodeNotMember` for a node that is not a member, the part's `Rejected` ("node 2 is
down"), and what `Client.write` / `Client.read` raise.
"""

from __future__ import annotations

import attrs

from raftcluster.client.groups import Requests, wall_clock_ms
from raftcluster.errors import NodeNotMember
from statemachine.groups.messages import (
    Done,
    DrainNode,
    GroupInfo,
    GroupList,
    ListGroups,
    ListNodes,
    NodeInfo,
    NodeList,
    ResumeNode,
)
from statemachine.results import expect


@attrs.frozen
class MemberStatus:
    """A member (`info`) and the groups it owns (`groups`, by name) or is about to own
    (a planned move's target)."""

    info: NodeInfo
    groups: tuple[GroupInfo, ...]
    incoming: tuple[GroupInfo, ...] = ()  # groups stopping elsewhere to move to it


class Nodes:
    """The cluster service's members (`client.nodes`). Safe to share between tasks."""

    def __init__(self, client: Requests) -> None:
        self._client = client

    async def list(self) -> tuple[NodeInfo, ...]:
        """Every member, by id. Cancellation leaves nothing behind."""
        return (await self._list()).nodes

    async def status(self, node: int) -> MemberStatus:
        """`node`'s state and the groups it owns; NodeNotMember if it is not a member.
        Cancellation leaves nothing behind."""
        info = await self._member(node)
        groups = expect(await self._client.read(ListGroups()), GroupList).groups
        owned = tuple(g for g in groups if g.owner == node)
        incoming = tuple(g for g in groups if g.moving_to == node)
        return MemberStatus(info, owned, incoming)

    async def drain(self, node: int) -> Done:
        """Move every group off `node` (planned moves) and give it none until resumed.
        Refused for a node that is down. Cancellation: it may still be applied (once)."""
        await self._member(node)
        return await self._write(DrainNode(node, wall_clock_ms()))

    async def resume(self, node: int, *, failback: bool = True) -> Done:
        """A paused or drained `node` takes groups again; with `failback` the groups that
        prefer it move back now. Cancellation: it may still be applied (once)."""
        await self._member(node)
        return await self._write(ResumeNode(node, failback, wall_clock_ms()))

    async def _member(self, node: int) -> NodeInfo:
        for info in await self.list():
            if info.node == node:
                return info
        raise NodeNotMember(node)

    async def _list(self) -> NodeList:
        return expect(await self._client.read(ListNodes()), NodeList)

    async def _write(self, command: DrainNode | ResumeNode) -> Done:
        return expect(await self._client.write(command), Done)
