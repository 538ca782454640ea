"""The messages Raft nodes exchange (tags 1010-1099).

Every message carries the sender's `term`, its id `src` and the addressee `dst`, so a
transport can route it and the receiver can order it against its own term. They are
`@tagged @attrs.frozen` codec messages: `statemachine.codec.encode(m)` gives the wire
bytes and `decode(data, RaftMessage)` gives them back, validated (a malformed or
oversized frame raises `DecodeError` before the core sees it).
"""

from __future__ import annotations

import attrs

from raftcluster.raft.types import Entry, SnapshotMeta
from statemachine.codec import Message, max_len, non_negative, positive, tagged
from statemachine.errors import InvalidArgument

MAX_ENTRIES_PER_MESSAGE = 10_000  # hard wire bound; the leader sends far fewer (config)
MAX_SNAPSHOT_CHUNK_BYTES = 16 * 1024 * 1024  # hard wire bound on one InstallSnapshot chunk
MAX_READ_CONTEXT_BYTES = 256  # identifies a read request; the shell picks it


@attrs.frozen
class RaftMessage(Message):
    """Base of every Raft message; not sent on its own."""

    term: int = attrs.field(validator=non_negative)
    src: int = attrs.field(validator=positive)
    dst: int = attrs.field(validator=positive)


@tagged(1010)
@attrs.frozen
class AppendEntries(RaftMessage):
    """Entries after (prev_index, prev_term), and the leader's commit index.

    `commit` is already capped by the leader to what it may tell this follower.
    """

    prev_index: int = attrs.field(validator=non_negative)
    prev_term: int = attrs.field(validator=non_negative)
    commit: int = attrs.field(validator=non_negative)
    entries: tuple[Entry, ...] = attrs.field(
        default=(), validator=max_len(MAX_ENTRIES_PER_MESSAGE, "entries")
    )

    def __attrs_post_init__(self) -> None:
        # Cheap structural check so a bad frame is refused at decode time, not deep in the log.
        expected, floor = self.prev_index + 1, self.prev_term
        for e in self.entries:
            if e.index != expected or not floor <= e.term <= self.term:
                raise InvalidArgument("AppendEntries.entries", "not a log slice after prev")
            expected, floor = expected + 1, e.term


@tagged(1011)
@attrs.frozen
class AppendResponse(RaftMessage):
    """Reply to AppendEntries (and to a completed snapshot install).

    Accepted: `index` is the last index now known to match the leader's log.
    Rejected: `index` is the `prev_index` that did not match, and (`hint_index`,
    `hint_term`) is the follower's last entry whose term is at most the leader's
    `prev_term`, so the leader can skip a whole term of probes at once.
    """

    index: int = attrs.field(validator=non_negative)
    reject: bool = False
    hint_index: int = attrs.field(default=0, validator=non_negative)
    hint_term: int = attrs.field(default=0, validator=non_negative)


@tagged(1012)
@attrs.frozen
class Heartbeat(RaftMessage):
    """Leader liveness; `commit` is capped at the follower's match; `round` serves ReadIndex."""

    commit: int = attrs.field(validator=non_negative)
    round: int = attrs.field(default=0, validator=non_negative)


@tagged(1013)
@attrs.frozen
class HeartbeatResponse(RaftMessage):
    round: int = attrs.field(default=0, validator=non_negative)


@tagged(1014)
@attrs.frozen
class VoteRequest(RaftMessage):
    """A (pre-)candidate asks for a vote. For a pre-vote, `term` is the term it would use.

    `transfer` marks an election started by TimeoutNow: voters skip the leader-lease check.
    `incarnation` is the one the candidate's configuration records for the voter (see
    `Member`): a voter of another incarnation refuses (a replaced node catching up votes
    for a candidate whose log records it, whatever its own log says yet).
    """

    last_index: int = attrs.field(validator=non_negative)
    last_term: int = attrs.field(validator=non_negative)
    pre_vote: bool = False
    transfer: bool = False
    incarnation: int = attrs.field(default=0, validator=non_negative)


@tagged(1015)
@attrs.frozen
class VoteResponse(RaftMessage):
    """A granted vote carries the request's term; a refusal carries the voter's own term."""

    pre_vote: bool = False
    granted: bool = False


@tagged(1016)
@attrs.frozen
class InstallSnapshot(RaftMessage):
    """One chunk of the leader's snapshot: bytes [offset, offset+len(data)) of `meta`'s data."""

    meta: SnapshotMeta
    offset: int = attrs.field(validator=non_negative)
    data: bytes = attrs.field(validator=max_len(MAX_SNAPSHOT_CHUNK_BYTES))
    done: bool = False


@tagged(1017)
@attrs.frozen
class SnapshotResponse(RaftMessage):
    """Progress of a snapshot transfer: the follower expects `offset` next for `index`.

    A completed install is acknowledged with an AppendResponse instead.
    """

    index: int = attrs.field(validator=non_negative)
    offset: int = attrs.field(validator=non_negative)


@tagged(1018)
@attrs.frozen
class TimeoutNow(RaftMessage):
    """Leadership transfer: the addressee, now caught up, should campaign at once."""


@tagged(1019)
@attrs.frozen
class ReadIndexRequest(RaftMessage):
    """A follower forwards a linearizable read to the leader."""

    context: bytes = attrs.field(validator=max_len(MAX_READ_CONTEXT_BYTES))


@tagged(1020)
@attrs.frozen
class ReadIndexResponse(RaftMessage):
    """The leader's answer: the read may be served once applied up to `index`."""

    index: int = attrs.field(validator=non_negative)
    context: bytes = attrs.field(validator=max_len(MAX_READ_CONTEXT_BYTES))
