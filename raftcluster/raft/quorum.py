"""Majority arithmetic over a set of voters: commit indexes and election results."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping


class VoteResult(enum.IntEnum):
    PENDING = 0
    WON = 1
    LOST = 2


def majority(voter_count: int) -> int:
    return voter_count // 2 + 1


def committed_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The largest index that a majority of `voters` hold (0 for no voters)."""
    if not voters:
        return 0
    get = match.get  # (a list, ascending: asked at every acknowledgement)
    indexes = sorted([get(v, 0) for v in voters])
    return indexes[len(indexes) - majority(len(indexes))]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """Votes are counted once per voter (a mapping cannot count a duplicate twice);
    answers from nodes outside `voters` do not count."""
    granted = sum(1 for v in voters if votes.get(v) is True)
    rejected = sum(1 for v in voters if votes.get(v) is False)
    need = majority(len(voters))
    if granted >= need:
        return VoteResult.WON
    if rejected > len(voters) - need:
        return VoteResult.LOST
    return VoteResult.PENDING
