"""Membership: one server at a time, switched on when the entry is appended.

Approach (Raft dissertation, section 4.1, with its 2015 erratum): a configuration
change adds or removes a single voter (or changes a learner), so any majority of the old
voters and any majority of the new ones share a node and two leaders cannot be elected
in one term by the two configurations. Each node uses the latest configuration in its
log, committed or not, from the moment the entry is appended; if a conflict truncates the
entry, the node falls back to the previous one. Two guards keep it to one step at a time:
a leader proposes a change only when no change in its log is uncommitted, and only after
it has committed an entry of its own term (the erratum: without it, a new leader could
stack a change on an uncommitted change of an earlier term and break the overlap).

Joint consensus was not chosen: one step at a time is enough for add, remove, promote
and demote, and it keeps a single majority rule everywhere in the core. A voter is
replaced in two steps (add, then remove).

Rules a step must follow (`changed_conf`; the core adds the caught-up check):
- only a learner is promoted (ADD_VOTER of anything else is refused): a new node joins
  as a learner, catches up by log or snapshot, and only then counts in majorities;
- a learner is promoted only once caught up: its match index reaches the latest
  configuration entry and is within `RaftConfig.max_promotion_lag_entries` of the
  leader's last index (`RaftCore.caught_up`);
- the last voter is never removed or demoted;
- an address is one member's only: adding a member at an address another member
  records is refused.

Identity: a member is a node id and an incarnation (`Member`). A node campaigns only
while its own log records its incarnation (`identity_current`), and grants a vote only to
a candidate whose configuration records it under its own incarnation
(`VoteRequest.incarnation`): a machine that lost its data directory and came back under
the same id with a fresh incarnation, not yet replaced, neither votes nor campaigns, so
the votes the id cast before can never be contradicted. `member replace` removes the id,
then adds it again with the fresh incarnation: the new node's votes then go only to
candidates whose logs hold that addition, in terms later than it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import attrs

from raftcluster.raft.errors import ConfChangeRejected
from raftcluster.raft.types import (
    MAX_MEMBERS,
    ConfChange,
    ConfChangeOp,
    ConfState,
    Entry,
    EntryKind,
    Member,
)
from statemachine.codec import decode


def is_member(conf: ConfState, node_id: int) -> bool:
    return node_id in conf.voters or node_id in conf.learners


def make_conf(
    voters: Iterable[int], learners: Iterable[int] = (), members: Iterable[Member] = ()
) -> ConfState:
    """A configuration; `members` is kept for the voters and learners only, sorted by id."""
    v, lr = set(voters), set(learners)
    kept = {m.node_id: m for m in members if m.node_id in v | lr}
    return ConfState(
        voters=tuple(sorted(v)),
        learners=tuple(sorted(lr)),
        members=tuple(kept[n] for n in sorted(kept)),
    )


def identity_current(conf: ConfState, node_id: int, incarnation: int) -> bool:
    """Whether `incarnation` is the one `conf` records for `node_id` (0 when it records
    none: a founding member, or a configuration built without member records)."""
    recorded = conf.member(node_id)
    return (recorded.incarnation if recorded is not None else 0) == incarnation


def changed_conf(
    conf: ConfState, op: ConfChangeOp, node_id: int, member: Member | None = None
) -> ConfState:
    """The configuration after one step, or ConfChangeRejected if the step is not valid.

    `member` (with ADD_LEARNER only) records the new member's addresses and incarnation."""
    voters, learners = set(conf.voters), set(conf.learners)
    members = {m.node_id: m for m in conf.members}
    if node_id <= 0:
        raise ConfChangeRejected(f"node id {node_id} is not positive")
    if member is not None and (op != ConfChangeOp.ADD_LEARNER or member.node_id != node_id):
        raise ConfChangeRejected("a member record comes only with the addition of that node")
    if op == ConfChangeOp.ADD_VOTER:
        if node_id in voters:
            raise ConfChangeRejected(f"node {node_id} is already a voter")
        if node_id not in learners:
            raise ConfChangeRejected(
                f"node {node_id} is not a learner: add it as a learner first, and promote it "
                "once it has caught up"
            )
        learners.discard(node_id)
        voters.add(node_id)
        if node_id in members:
            members[node_id] = attrs.evolve(members[node_id], promote_when_caught_up=False)
    elif op == ConfChangeOp.ADD_LEARNER:
        if node_id in learners:
            raise ConfChangeRejected(f"node {node_id} is already a learner")
        if member is not None:
            if node_id in voters:
                raise ConfChangeRejected(f"node {node_id} is already a voter")
            for other in conf.members:
                taken = set(other.addresses) & set(member.addresses)
                if taken and other.node_id != node_id:
                    raise ConfChangeRejected(
                        f"address {sorted(taken)[0]} is node {other.node_id}'s already"
                    )
            members[node_id] = member
        voters.discard(node_id)
        learners.add(node_id)
    elif op == ConfChangeOp.REMOVE_NODE:
        if node_id not in voters | learners:
            raise ConfChangeRejected(f"node {node_id} is not a member")
        voters.discard(node_id)
        learners.discard(node_id)
    else:
        raise ConfChangeRejected(f"{op.name} cannot be proposed")
    if not voters:
        raise ConfChangeRejected("the last voter cannot be removed or demoted")
    if len(voters) + len(learners) > MAX_MEMBERS:
        raise ConfChangeRejected(f"a configuration holds at most {MAX_MEMBERS} members")
    return make_conf(voters, learners, members.values())


def conf_of(entry: Entry) -> ConfState:
    """The configuration a CONF_CHANGE entry switches to. Entries come from the log, which
    only a leader writes, so a payload that does not decode is a bug: let it raise."""
    assert entry.kind == EntryKind.CONF_CHANGE
    return decode(entry.data, ConfChange).conf


class ConfHistory:
    """The configuration in force at each index of the in-memory log.

    `base` is the configuration at `base_index` (the snapshot's); after it, each
    CONF_CHANGE entry starts a new one.
    """

    __slots__ = ("base", "base_index", "_indexes", "_confs")

    def __init__(self, base: ConfState, base_index: int) -> None:
        self.base = base
        self.base_index = base_index
        self._indexes: list[int] = []
        self._confs: list[ConfState] = []

    def current(self) -> ConfState:
        return self._confs[-1] if self._confs else self.base

    def latest_change_index(self) -> int:
        """Index of the newest configuration entry (the base's index if none follows it)."""
        return self._indexes[-1] if self._indexes else self.base_index

    def at(self, index: int) -> ConfState:
        assert index >= self.base_index, f"configuration at {index} is compacted"
        pos = bisect.bisect_right(self._indexes, index)
        return self._confs[pos - 1] if pos else self.base

    def record(self, entries: Iterable[Entry]) -> None:
        """Entries were appended (after any truncation was recorded)."""
        for e in entries:
            if e.kind == EntryKind.CONF_CHANGE:
                assert not self._indexes or self._indexes[-1] < e.index
                self._indexes.append(e.index)
                self._confs.append(conf_of(e))

    def truncate_from(self, index: int) -> None:
        """Entries from `index` on were replaced: forget the configurations they started."""
        pos = bisect.bisect_left(self._indexes, index)
        del self._indexes[pos:]
        del self._confs[pos:]

    def compact_to(self, index: int) -> None:
        self.base = self.at(index)
        self.base_index = index
        pos = bisect.bisect_right(self._indexes, index)
        del self._indexes[:pos]
        del self._confs[:pos]

    def reset(self, base: ConfState, base_index: int) -> None:
        self.base, self.base_index = base, base_index
        self._indexes.clear()
        self._confs.clear()
