"""`client.membership`: grow, shrink and replace the cluster's Raft members while it runs.

    members = await client.membership.list()                 # the leader's view
    await client.membership.add(4, ["10.0.0.4:7000"], voter=True)
    await client.membership.remove(2)                        # a leader hands over first
    await client.membership.replace(3)                       # a machine that lost its disk
    await client.membership.transfer_leadership(to=None)     # the most caught-up voter

Every change is one Raft configuration step, proposed by the leader (`ChangeMembership`,
raftcluster/node/protocol.py) and answered once applied; the leader refuses a step that
breaks a rule (`MembershipRefused`, with the leader's reason: an id or address in use,
the last voter, a change already in progress, a promotion of a node that is not a
caught-up learner). A step is not retried: a request whose answer is lost raises
`OutcomeUnknown` (`list()` tells whether it was applied).

Identity: a member is a node id and an incarnation. `add` records a fresh random
incarnation (unless given) for the new node, which must start with it (`node run --join`
with the cluster file `write_member_config` writes). `replace` removes the id, then adds it
again with a fresh incarnation, so the votes the lost machine cast can never be repeated
by the new one (docs/operations.md, "Replace a failed machine").
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from raftcluster.client.cluster_status import ClusterStatus
from raftcluster.client.runner import CoreRunner
from raftcluster.errors import OutcomeUnknown, Unavailable
from raftcluster.node.protocol import (
    ChangeMembership,
    ClientRequest,
    GetStatus,
    LeaderTransferred,
    MembershipChanged,
    MembershipOp,
    MemberStatus,
    NodeStatus,
    NotLeader,
    RefuseCode,
    Refused,
    TransferLeadership,
)
from raftcluster.transport import PeerUnreachable, RpcFailed, connect_rpc
from raftcluster.transport.config import Address
from statemachine.codec import Message
from statemachine.errors import ClusterError, InvalidArgument

MAX_INCARNATION = (1 << 62) - 1
_CALL_MS = 3_000  # one request to one node
_LEADER_HOPS = 5  # NotLeader answers followed before giving up (a leader change under way)
_RETRY_S = 0.2  # between rounds when no leader is known yet


class MembershipRefused(ClusterError):
    """The leader refused the membership step; nothing changed. `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"membership change refused: {reason}")
        self.reason = reason


@attrs.frozen
class MembershipView:
    """The membership as the leader's log records it (`leader` 0: no leader answered;
    then the view is that of the node with the highest applied index)."""

    leader: int
    term: int
    commit_index: int
    last_index: int
    members: tuple[MemberStatus, ...]

    def member(self, node_id: int) -> MemberStatus | None:
        for m in self.members:
            if m.node_id == node_id:
                return m
        return None

    @property
    def voters(self) -> tuple[int, ...]:
        return tuple(m.node_id for m in self.members if m.role == "voter")

    @property
    def learners(self) -> tuple[int, ...]:
        return tuple(m.node_id for m in self.members if m.role == "learner")


@attrs.frozen
class Changed:
    """A membership step applied at log `index`; `incarnation` of an added member."""

    index: int
    voters: tuple[int, ...]
    learners: tuple[int, ...]
    incarnation: int = 0


def fresh_incarnation() -> int:
    """A random incarnation for a member added now (never 0: that is a founder's)."""
    return secrets.randbelow(MAX_INCARNATION) + 1


class Membership:
    """The cluster's Raft membership (`client.membership`). Safe to share between tasks."""

    def __init__(
        self,
        runner: CoreRunner,
        status: Callable[[], Awaitable[ClusterStatus]],
        timeout_ms: int,
    ) -> None:
        self._runner = runner
        self._status = status  # Client.status, bound
        self._timeout_ms = timeout_ms

    async def list(self) -> MembershipView:
        """Every member: role, addresses, incarnation and, from the leader, how far it
        has caught up. The leader is asked even when the client's endpoints do not list
        it (at the address the log records). Raises Unavailable when no node answers.
        Cancellation leaves nothing behind."""
        status = await self._cluster_status()
        known = [r.status for r in status.nodes if r.status is not None]
        if not known:
            problems = "; ".join(f"node {r.node_id}: {r.error}" for r in status.nodes)
            raise Unavailable(f"no node answered: {problems}")
        leaders = [s for s in known if s.role == "leader"]
        if leaders:
            return _view(max(leaders, key=lambda s: s.term))
        freshest = max(known, key=lambda s: (s.term, s.applied_index))
        believed = freshest.leader
        if believed and believed not in self._runner.nodes:
            with contextlib.suppress(RpcFailed):
                reply = await self._call(believed, GetStatus(), freshest.members)
                if isinstance(reply, NodeStatus) and reply.role == "leader":
                    return _view(reply)
        return _view(freshest)

    async def add(
        self,
        node_id: int,
        addresses: Sequence[str],
        *,
        voter: bool = False,
        incarnation: int | None = None,
    ) -> Changed:
        """Add `node_id`, listening at `addresses` ("host:port"), as a learner; with
        `voter` the leader promotes it once it has caught up. Raises MembershipRefused
        (the id or an address in use, a change in progress...), InvalidArgument for a bad
        address, Unavailable, OutcomeUnknown. Cancellation: it may still be applied."""
        links = tuple(str(Address.parse(a)) for a in addresses)
        if not links:
            raise InvalidArgument("addresses", "a new member needs at least one address")
        chosen = fresh_incarnation() if incarnation is None else incarnation
        request = ChangeMembership(
            MembershipOp.ADD_LEARNER, node_id, links, chosen, promote_when_caught_up=voter
        )
        done = await self._change(request)
        return attrs.evolve(done, incarnation=chosen)

    async def promote(self, node_id: int) -> Changed:
        """Promote learner `node_id` to voter; refused unless it has caught up.
        Cancellation: it may still be applied."""
        return await self._change(ChangeMembership(MembershipOp.PROMOTE, node_id))

    async def remove(self, node_id: int) -> Changed:
        """Remove member `node_id`. If it leads, it first hands leadership to the most
        caught-up other voter. Refused for the last voter. Cancellation: it may still be
        applied."""
        view = await self.list()
        if view.leader == node_id and len(view.voters) > 1:
            await self.transfer_leadership()
        return await self._change(ChangeMembership(MembershipOp.REMOVE, node_id))

    async def replace(self, node_id: int, addresses: Sequence[str] | None = None) -> Changed:
        """Bring back member `node_id` on a machine with an empty data directory: remove
        it, then add it again (at `addresses`, else where it was) as a learner with a fresh
        incarnation, promoted to voter once caught up if it was a voter. The new node
        starts with `node run --join`. Cancellation: either step may still be applied."""
        view = await self.list()
        old = view.member(node_id)
        if old is None:
            raise MembershipRefused(f"node {node_id} is not a member")
        links = tuple(addresses) if addresses else old.addresses
        if not links:
            raise InvalidArgument("addresses", f"the log records no address for node {node_id}")
        await self.remove(node_id)
        return await self._added_again(node_id, links, voter=old.role == "voter")

    async def _added_again(self, node_id: int, links: Sequence[str], voter: bool) -> Changed:
        """The addition after a removal: the leader may refuse it for a moment (the
        removal just committed on a new leader that has not committed its own entry)."""
        deadline = trio.current_time() + self._timeout_ms / 1000
        while True:
            try:
                return await self.add(node_id, links, voter=voter)
            except MembershipRefused as e:
                if "in progress" not in e.reason and "not yet committed" not in e.reason:
                    raise
                if trio.current_time() > deadline:
                    raise
            await trio.sleep(_RETRY_S)

    async def transfer_leadership(self, to: int | None = None) -> int:
        """Hand leadership to voter `to` (None: the most caught-up other voter); the new
        leader's id. Raises MembershipRefused, Unavailable. Cancellation leaves the
        transfer to finish or lapse (after an election timeout)."""
        view = await self.list()
        if not view.leader:
            raise Unavailable("no leader: nothing to transfer")
        target = to
        if target is not None and target not in view.voters:
            raise MembershipRefused(f"node {target} is not a voter")
        if target is None:
            others = [m for m in view.members if m.role == "voter" and m.node_id != view.leader]
            if not others:
                raise MembershipRefused(f"node {view.leader} is the only voter")
            target = max(others, key=lambda m: (m.match_index, -m.node_id)).node_id
        reply = await self._ask(TransferLeadership(target))
        if isinstance(reply, LeaderTransferred):
            return reply.leader
        raise Unavailable(f"unexpected answer {type(reply).__name__}")

    async def _change(self, request: ChangeMembership) -> Changed:
        reply = await self._ask(request)
        if isinstance(reply, MembershipChanged):
            return Changed(reply.index, reply.voters, reply.learners)
        raise Unavailable(f"unexpected answer {type(reply).__name__}")

    async def _ask(self, request: ClientRequest) -> Message:
        """`request` to the leader (following NotLeader answers); its answer, refusals
        raised as MembershipRefused, Unavailable or OutcomeUnknown."""
        deadline = trio.current_time() + self._timeout_ms / 1000
        leader = 0
        hops = 0
        members: tuple[MemberStatus, ...] = ()
        while True:
            if not leader:
                view = await self.list()
                leader, members = view.leader, view.members
            reply: Message | None = None
            if leader:
                try:
                    reply = await self._call(leader, request, members)
                except PeerUnreachable:
                    leader = 0  # nothing was sent: look for the leader again
                except RpcFailed as e:
                    raise OutcomeUnknown(f"node {leader} did not answer: {e}") from None
            if reply is not None:
                if isinstance(reply, NotLeader) and hops < _LEADER_HOPS:
                    leader, hops = reply.leader, hops + 1
                    continue
                if isinstance(reply, Refused):
                    raise _refusal(reply)
                if not isinstance(reply, NotLeader):
                    return reply
                leader = 0
            if trio.current_time() > deadline:
                raise Unavailable("no leader answered: check that a majority of the nodes is up")
            await trio.sleep(_RETRY_S)

    async def _call(
        self, node: int, request: ClientRequest, members: Sequence[MemberStatus]
    ) -> Message:
        """`request` to `node`: through the client's connections if it has the node's
        address, else on a connection of its own to the address the log records."""
        if node in self._runner.nodes:
            return await self._runner.call(node, request, timeout_ms=_CALL_MS)
        recorded = next((m.addresses for m in members if m.node_id == node), ())
        if not recorded:
            raise PeerUnreachable(f"node {node}: no address known")
        config = self._runner.transport_config
        address = Address.parse(recorded[0])
        async with connect_rpc(address, config, expected_node_id=node) as connection:
            return await connection.call(request, timeout_ms=_CALL_MS)

    async def _cluster_status(self) -> ClusterStatus:
        return await self._status()


def _refusal(reply: Refused) -> ClusterError:
    if reply.code in (RefuseCode.CONF_CHANGE_REJECTED, RefuseCode.BAD_REQUEST):
        return MembershipRefused(reply.message)
    if reply.code.definite:
        return Unavailable(reply.message)
    return OutcomeUnknown(reply.message)


def _view(status: NodeStatus) -> MembershipView:
    return MembershipView(
        leader=status.node_id if status.role == "leader" else status.leader,
        term=status.term,
        commit_index=status.commit_index,
        last_index=status.last_index,
        members=status.members,
    )
