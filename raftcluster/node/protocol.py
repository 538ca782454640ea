"""The client protocol: what clients ask a node and what it answers (tags 2100-2199).

Every request is answered by exactly one reply, unless the node crashes or the network
loses it (the client times the request out). A request is a `ClientRequest`, a reply a
`ClientReply`; both are codec messages, so `decode(frame, ClientRequest)` validates them.

Requests
    Submit(command)            a write: an encoded OpenSession, KeepAlive, CloseSession or
                               SessionRequest, proposed by the leader
    Query(query, consistency)  a read-only query (encoded); LINEARIZABLE (ReadIndex) or STALE
    GetStatus()                the node's role, term, leader, indexes and configuration
    WaitChanges(after, wait)   long poll: answered once the kv revision is past `after`,
                               or when `wait_ms` has passed
    ChangeMembership(op, id, addresses, incarnation, promote_when_caught_up)
                               add a learner (recording where it listens and its
                               incarnation; the leader promotes it once caught up if asked),
                               promote a caught-up learner to voter, or remove a node
    TransferLeadership(to)     hand leadership to voter `to`

Replies
    Written(index, result)     the write was applied at `index`; `result` is the state
                               machine's encoded result (a `Failure` is a definite refusal)
    QueryResult(index, result) the query's encoded result, read at applied index `index`
    NodeStatus(...)            answer to GetStatus (with every member: role, addresses,
                               incarnation, and the leader's view of its match index)
    Changed(revision)          answer to WaitChanges: the kv revision now (it may still be
                               `after` when the wait ran out)
    MembershipChanged(...)     the membership step was applied; the configuration after it
    LeaderTransferred(leader)  this node is no longer the leader; `leader` leads (0: unknown)
    NotLeader(leader)          this node does not lead; try `leader` (0: none known).
                               The request was not taken.
    Refused(code, message)     see `RefuseCode`: whether the request may have taken effect
"""

from __future__ import annotations

import enum

import attrs

from statemachine.codec import Message, int_range, max_len, non_negative, positive, tagged
from statemachine.kv.limits import MAX_REQUEST_BYTES

MAX_REFUSAL_CHARS = 512
MAX_LINKS = 8  # addresses of one member (the transport's limit)
MAX_WAIT_MS = 3_600_000  # longest long poll a request may ask for (the node may cap it lower)


class ClientMessage(Message):
    """Base of every client protocol message."""

    __slots__ = ()


class ClientRequest(ClientMessage):
    """A request from a client to a node."""

    __slots__ = ()


class ClientReply(ClientMessage):
    """A node's answer to one request."""

    __slots__ = ()


class Consistency(enum.IntEnum):
    LINEARIZABLE = 0  # ReadIndex: sees every write acknowledged before the read began
    STALE = 1  # this node's state as it is: may miss recent writes


class MembershipOp(enum.IntEnum):
    ADD_LEARNER = 0  # a new node that receives the log but does not vote
    PROMOTE = 1  # make a caught-up learner a voter
    REMOVE = 2  # remove a voter or a learner


class RefuseCode(enum.IntEnum):
    """Why a node refused or gave up on a request, and what that means for a write."""

    OVERLOADED = 1  # too many requests pending on this node: not taken; retry later
    NOT_COMMITTED = 2  # another entry was committed where the write was: not applied
    TIMED_OUT = 3  # the node stopped waiting; a write may still be applied (unknown)
    BAD_REQUEST = 4  # the request is not acceptable: not taken, do not retry
    UNAVAILABLE = 5  # the leader cannot take it now (transfer, removal...): not taken
    CONF_CHANGE_REJECTED = 6  # the membership step is not allowed now: not taken
    OUTCOME_UNKNOWN = 7  # the node lost track (a snapshot covered it...): retry the same

    @property
    def definite(self) -> bool:
        """Whether the request certainly had no effect (so a new attempt is not a retry)."""
        return self not in (RefuseCode.TIMED_OUT, RefuseCode.OUTCOME_UNKNOWN)


# -- requests --------------------------------------------------------------------------


@tagged(2100)
@attrs.frozen
class Submit(ClientRequest):
    command: bytes = attrs.field(validator=max_len(MAX_REQUEST_BYTES))


@tagged(2101)
@attrs.frozen
class Query(ClientRequest):
    query: bytes = attrs.field(validator=max_len(MAX_REQUEST_BYTES))
    consistency: Consistency = Consistency.LINEARIZABLE


@tagged(2102)
@attrs.frozen
class GetStatus(ClientRequest):
    pass


@tagged(2103)
@attrs.frozen
class WaitChanges(ClientRequest):
    after_revision: int = attrs.field(validator=non_negative)
    wait_ms: int = attrs.field(validator=int_range(1, MAX_WAIT_MS))


@tagged(2104)
@attrs.frozen
class ChangeMembership(ClientRequest):
    """One membership step. With ADD_LEARNER, `addresses` ("host:port" links) and
    `incarnation` are recorded in the log (`raftcluster.raft.types.Member`), and
    `promote_when_caught_up` has the leader promote the learner once it has caught up.
    ADD_LEARNER of a node that is already a member is refused."""

    op: MembershipOp
    node_id: int = attrs.field(validator=positive)
    addresses: tuple[str, ...] = attrs.field(default=(), validator=max_len(MAX_LINKS, "addresses"))
    incarnation: int = attrs.field(default=0, validator=non_negative)
    promote_when_caught_up: bool = False


@tagged(2105)
@attrs.frozen
class TransferLeadership(ClientRequest):
    to: int = attrs.field(validator=positive)


# -- replies ---------------------------------------------------------------------------


@tagged(2150)
@attrs.frozen
class Written(ClientReply):
    index: int = attrs.field(validator=non_negative)
    result: bytes


@tagged(2151)
@attrs.frozen
class QueryResult(ClientReply):
    index: int = attrs.field(validator=non_negative)
    result: bytes


@tagged(2156)
@attrs.frozen
class MemberStatus(ClientMessage):
    """One member as a node's log records it. `match_index` is what the leader knows the
    member holds (answered by the leader; 0 elsewhere); `caught_up` the leader's verdict
    (`RaftCore.caught_up`)."""

    node_id: int
    role: str  # "voter" or "learner"
    addresses: tuple[str, ...] = attrs.field(validator=max_len(MAX_LINKS, "addresses"))
    incarnation: int
    match_index: int
    caught_up: bool
    promote_when_caught_up: bool


@tagged(2152)
@attrs.frozen
class NodeStatus(ClientReply):
    node_id: int
    role: str  # "follower", "pre_candidate", "candidate" or "leader"
    term: int
    leader: int  # 0: none known
    commit_index: int
    applied_index: int
    voters: tuple[int, ...]
    learners: tuple[int, ...]
    snapshot_index: int  # the latest state machine snapshot taken or installed
    last_index: int
    members: tuple[MemberStatus, ...] = attrs.field(default=(), validator=max_len(64, "members"))


@tagged(2153)
@attrs.frozen
class Changed(ClientReply):
    revision: int


@tagged(2154)
@attrs.frozen
class MembershipChanged(ClientReply):
    index: int
    voters: tuple[int, ...]
    learners: tuple[int, ...]


@tagged(2155)
@attrs.frozen
class LeaderTransferred(ClientReply):
    leader: int


@tagged(2160)
@attrs.frozen
class NotLeader(ClientReply):
    leader: int = attrs.field(validator=non_negative)


@tagged(2161)
@attrs.frozen
class Refused(ClientReply):
    code: RefuseCode
    message: str = attrs.field(validator=max_len(MAX_REFUSAL_CHARS, "characters"))

    @classmethod
    def of(cls, code: RefuseCode, message: str) -> Refused:
        return cls(code, message[:MAX_REFUSAL_CHARS])
