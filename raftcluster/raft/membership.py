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
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from raftcluster.raft.errors import ConfChangeRejected
from raftcluster.raft.types import (
    MAX_MEMBERS,
    ConfChange,
    ConfChangeOp,
    ConfState,
    Entry,
    EntryKind,
)
from statemachine.codec import decode


def is_member(conf: ConfState, node_id: int) -> bool:
    return node_id in conf.voters or node_id in conf.learners


def make_conf(voters: Iterable[int], learners: Iterable[int] = ()) -> ConfState:
    return ConfState(voters=tuple(sorted(set(voters))), learners=tuple(sorted(set(learners))))


def changed_conf(conf: ConfState, op: ConfChangeOp, node_id: int) -> ConfState:
    """The configuration after one step, or ConfChangeRejected if the step is not valid."""
    voters, learners = set(conf.voters), set(conf.learners)
    if node_id <= 0:
        raise ConfChangeRejected(f"node id {node_id} is not positive")
    if op == ConfChangeOp.ADD_VOTER:
        if node_id in voters:
            raise ConfChangeRejected(f"node {node_id} is already a voter")
        learners.discard(node_id)
        voters.add(node_id)
    elif op == ConfChangeOp.ADD_LEARNER:
        if node_id in learners:
            raise ConfChangeRejected(f"node {node_id} is already a learner")
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
    return make_conf(voters, learners)


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
