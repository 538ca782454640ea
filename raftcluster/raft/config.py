"""The Raft core's settings, with their defaults and the reasons for them."""

from __future__ import annotations

import attrs

from raftcluster.raft.messages import MAX_ENTRIES_PER_MESSAGE, MAX_SNAPSHOT_CHUNK_BYTES
from raftcluster.raft.types import MAX_MEMBERS, Member
from statemachine.codec import int_range, non_negative, positive
from statemachine.errors import InvalidArgument

MiB = 1024 * 1024


def _members(
    instance: object, attribute: attrs.Attribute[tuple[int, ...]], value: tuple[int, ...]
) -> None:
    if len(value) > MAX_MEMBERS or len(set(value)) != len(value) or any(v <= 0 for v in value):
        raise InvalidArgument(
            f"RaftConfig.{attribute.name}",
            f"{value!r}: distinct positive ids, at most {MAX_MEMBERS}",
        )


@attrs.frozen
class RaftConfig:
    """Everything a `RaftCore` is told at construction besides its durable state.

    Times are in milliseconds of the clock the shell passes to `tick(now_ms)`.
    """

    node_id: int = attrs.field(validator=positive)
    # The founding voters, used only when the durable state is empty (a brand-new cluster):
    # every founding node writes the same configuration entry at index 1. A node joining an
    # existing cluster starts with no peers and waits for the leader to contact it.
    peers: tuple[int, ...] = attrs.field(default=(), converter=tuple, validator=_members)
    # Founding learners (with `peers`); usually empty.
    learners: tuple[int, ...] = attrs.field(default=(), converter=tuple, validator=_members)
    # The founding members' addresses (with `peers`), recorded in the founding configuration
    # entry: from then on the log says where each member listens.
    members: tuple[Member, ...] = ()
    # This node's incarnation (see `Member`): 0 for a founding member, the one its addition
    # recorded for a member added later. A node whose log records another incarnation for
    # its id neither votes nor campaigns.
    incarnation: int = attrs.field(default=0, validator=non_negative)
    # A follower that hears nothing from a leader for a random time in [T, 2T) campaigns;
    # a leader that has not heard from a quorum within T steps down (check_quorum).
    election_timeout_ms: int = attrs.field(default=1000, validator=int_range(2, 3_600_000))
    heartbeat_interval_ms: int = attrs.field(default=100, validator=int_range(1, 3_600_000))
    # Replication pipeline to each follower: bounded in messages and in bytes of entries.
    max_inflight_msgs: int = attrs.field(default=64, validator=int_range(1, 65_536))
    max_inflight_bytes: int = attrs.field(default=8 * MiB, validator=positive)
    # One AppendEntries carries at most this much (always at least one entry).
    max_entries_per_msg: int = attrs.field(
        default=512, validator=int_range(1, MAX_ENTRIES_PER_MESSAGE)
    )
    max_bytes_per_msg: int = attrs.field(default=1 * MiB, validator=positive)
    max_snapshot_chunk_bytes: int = attrs.field(
        default=1 * MiB, validator=int_range(1, MAX_SNAPSHOT_CHUNK_BYTES)
    )
    # A follower refuses to buffer an incoming snapshot larger than this.
    max_snapshot_bytes: int = attrs.field(default=1024 * MiB, validator=positive)
    # A leader that commits entries tells the followers the new commit index on the next
    # AppendEntries it sends them anyway; only if none goes out within this delay does it
    # send one for the commit index alone. Under a stream of writes the next batch carries
    # it, which saves every follower a message and its answer per commit (about a third
    # of the messages of a sequential write). Followers apply, and answer stale and
    # forwarded reads, up to this much later. 0: tell them at once (etcd's behaviour).
    commit_notice_delay_ms: int = attrs.field(default=5, validator=int_range(0, 60_000))
    check_quorum: bool = True
    pre_vote: bool = True
    # Proposals are refused while the leader's uncommitted entries of its term exceed this.
    max_uncommitted_bytes: int = attrs.field(default=64 * MiB, validator=positive)
    # Read requests waiting for a leadership confirmation (queue bound).
    max_pending_reads: int = attrs.field(default=4096, validator=positive)
    # Committed entries handed out in one Ready (always at least one entry).
    max_committed_bytes_per_ready: int = attrs.field(default=8 * MiB, validator=positive)
    # A learner is promoted only when its log is within this many entries of the leader's
    # last index ("caught up": `RaftCore.caught_up`).
    max_promotion_lag_entries: int = attrs.field(default=256, validator=int_range(0))

    def __attrs_post_init__(self) -> None:
        if self.election_timeout_ms < 2 * self.heartbeat_interval_ms:
            raise InvalidArgument(
                "RaftConfig.election_timeout_ms",
                f"{self.election_timeout_ms} must be at least twice the heartbeat interval "
                f"({self.heartbeat_interval_ms}), or followers campaign between heartbeats",
            )
        if set(self.peers) & set(self.learners):
            raise InvalidArgument("RaftConfig.learners", "a node is either a peer or a learner")
        if self.learners and not self.peers:
            raise InvalidArgument("RaftConfig.learners", "founding learners need founding peers")
        if any(m.node_id not in self.peers + self.learners for m in self.members):
            raise InvalidArgument("RaftConfig.members", "a member record names a founding node")
        if self.peers and self.node_id not in self.peers + self.learners:
            raise InvalidArgument(
                "RaftConfig.peers",
                f"a founding configuration must include node {self.node_id} itself",
            )

    @property
    def stall_timeout_ms(self) -> int:
        """A pipeline with no acknowledgement for this long is assumed to have lost a message
        and falls back to probing (messages are dropped silently by networks and the simulator).
        """
        return 2 * self.heartbeat_interval_ms
