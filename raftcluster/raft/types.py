"""Values the Raft core, its storage and the simulator share.

Node ids are positive integers; 0 means "none" (no vote, no known leader).
Log indexes and terms start at 1; index 0 / term 0 is the empty log's sentinel.
"""

from __future__ import annotations

import enum

import attrs

from statemachine.codec import Message, max_len, non_negative, positive, tagged
from statemachine.errors import InvalidArgument

NONE = 0  # "no node": no vote cast, no leader known

MAX_ENTRY_BYTES = 2 * 1024 * 1024  # one log entry's payload
MAX_MEMBERS = 64  # voters plus learners in one configuration


class EntryKind(enum.IntEnum):
    NORMAL = 0  # a state machine command (empty data: the leader's no-op of its term)
    CONF_CHANGE = 1  # data is an encoded membership change, interpreted by the core


@tagged(1000)
@attrs.frozen
class Entry(Message):
    term: int = attrs.field(validator=non_negative)
    index: int = attrs.field(validator=non_negative)
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = attrs.field(default=b"", validator=max_len(MAX_ENTRY_BYTES))


@tagged(1001)
@attrs.frozen
class HardState(Message):
    """What must be durable before any message that depends on it is sent."""

    term: int = attrs.field(default=0, validator=non_negative)
    vote: int = attrs.field(default=NONE, validator=non_negative)
    commit: int = attrs.field(default=0, validator=non_negative)


MAX_MEMBER_LINKS = 8  # addresses (links) of one member, as the transport's MAX_LINKS
MAX_ADDRESS_CHARS = 300  # one "host:port"


def _addresses(
    instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    if len(value) > MAX_MEMBER_LINKS or any(not 0 < len(a) <= MAX_ADDRESS_CHARS for a in value):
        raise InvalidArgument(
            f"Member.{attribute.name}",
            f"{len(value)} addresses: 0..{MAX_MEMBER_LINKS} of 1..{MAX_ADDRESS_CHARS} characters",
        )


@tagged(1006)
@attrs.frozen
class Member(Message):
    """Who a member is and where it listens, as the log records it.

    A member's identity is its node id together with its `incarnation`: 0 for a founding
    member (its data directory prepared by `raftcluster init`), a fresh random number for
    a member added later (`member add`, `member replace`). A node whose own incarnation is
    not the one its log records for its id never votes nor campaigns (see
    `raftcluster.raft.membership`): a machine that lost its data directory cannot speak
    with the votes of the identity it had. `addresses` are "host:port" links (empty:
    not recorded, as in a founding configuration built without addresses).
    `promote_when_caught_up`: a learner the leader promotes to voter once it has caught up.
    """

    node_id: int = attrs.field(validator=positive)
    addresses: tuple[str, ...] = attrs.field(default=(), validator=_addresses)
    incarnation: int = attrs.field(default=0, validator=non_negative)
    promote_when_caught_up: bool = False


@tagged(1002)
@attrs.frozen
class ConfState(Message):
    """A cluster configuration. `voters_outgoing` is non-empty only in a joint configuration.

    `members` records, for members added with them (and founding members given addresses),
    their addresses and incarnation, sorted by id: the log (and a snapshot's meta) is the
    authority on who the members are and where they listen, not the cluster file.
    """

    voters: tuple[int, ...] = attrs.field(default=(), validator=max_len(MAX_MEMBERS, "members"))
    learners: tuple[int, ...] = attrs.field(default=(), validator=max_len(MAX_MEMBERS, "members"))
    voters_outgoing: tuple[int, ...] = attrs.field(
        default=(), validator=max_len(MAX_MEMBERS, "members")
    )
    members: tuple[Member, ...] = attrs.field(default=(), validator=max_len(MAX_MEMBERS, "members"))

    def member(self, node_id: int) -> Member | None:
        """What the configuration records about `node_id` (None: nothing)."""
        for m in self.members:
            if m.node_id == node_id:
                return m
        return None


@tagged(1003)
@attrs.frozen
class SnapshotMeta(Message):
    """The log position a state machine snapshot stands for, and the configuration there."""

    index: int = attrs.field(validator=non_negative)
    term: int = attrs.field(validator=non_negative)
    conf: ConfState = ConfState()


@tagged(1004)
@attrs.frozen
class Snapshot(Message):
    meta: SnapshotMeta
    data: bytes  # the state machine's snapshot bytes; size bounded by the storage, not here


MAX_CONF_CONTEXT_BYTES = 1024  # caller's note attached to a membership change


class ConfChangeOp(enum.IntEnum):
    BOOTSTRAP = 0  # the initial configuration, written at index 1 by every founding node
    ADD_VOTER = 1  # add a voter, or promote a learner
    ADD_LEARNER = 2  # add a learner, or demote a voter
    REMOVE_NODE = 3  # remove a voter or a learner


@tagged(1005)
@attrs.frozen
class ConfChange(Message):
    """The payload of a CONF_CHANGE entry: one membership step and the configuration after it.

    `conf` is computed by the leader when it proposes the change and is what every node
    switches to as soon as the entry is in its log (see `raftcluster.raft.membership`);
    `op` and `node_id` say what changed, for the application's benefit.
    """

    op: ConfChangeOp
    node_id: int = attrs.field(validator=non_negative)
    conf: ConfState
    context: bytes = attrs.field(default=b"", validator=max_len(MAX_CONF_CONTEXT_BYTES))


@attrs.frozen
class DurableState:
    """What a node finds on start: the last synced hard state, snapshot and entries.

    Storage returns it from `load()`; the Raft core is built from it. `entries` are
    contiguous and follow the snapshot (if any) without a gap.
    """

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
