"""`GroupsSettings`: what a node needs to run the cluster service (`[groups]`, `[fencing]`)."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from raftcluster.groups.timing import GroupTiming
from statemachine.codec import int_range


def _argv(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class GroupsSettings:
    timing: GroupTiming = GroupTiming()
    # The fencing agent the leader runs before it declares a silent node down (argv; the
    # node's id is appended): empty for none. See `raftcluster/groups/fencing.py`.
    fence_command: tuple[str, ...] = attrs.field(default=(), converter=_argv)
    fence_timeout_ms: int = attrs.field(default=10_000, validator=int_range(1, 3_600_000))
