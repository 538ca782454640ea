"""A fixed command sequence for the PYTHONHASHSEED test: run as a program, it applies the
sequence to a fresh `ClusterState` and writes the snapshot's bytes (hex) to stdout.

Group names and anti-affinity classes are strings, whose hashes (and so the order of
any set or dict built from them by hash) change with PYTHONHASHSEED; placement must
not depend on that order.
"""

from __future__ import annotations

import sys

from statemachine.cluster import ClusterState
from statemachine.codec import Message
from statemachine.groups import GroupsConfig
from statemachine.groups.messages import (
    CreateGroup,
    DrainNode,
    Failback,
    GroupReport,
    GroupSpec,
    GroupState,
    GroupsTick,
    JoinNode,
    NodeDown,
    NodeUp,
    ReportKind,
    ResumeNode,
)


def script() -> list[Message]:
    commands: list[Message] = [JoinNode(n, 0) for n in range(1, 7)]
    for i in range(24):
        name = f"svc-{'abcdefghijklmnopqrstuvwx'[i]}{i * 7919 % 97}"
        spec = GroupSpec(
            name,
            anti_affinity=("sql", "web", "cache", "")[i % 4],
            priority=1 + i % 3,
            preferred_owners=() if i % 5 == 0 else (1 + i % 6, 1 + (i + 2) % 6),
            failback=Failback(1 + i % 4),
            window_start_hour=i % 24,
            window_end_hour=(i + 5) % 24,
            stable_ms=2_000,
            stickiness=(0, 100, 5_000)[i % 3],
        )
        commands.append(CreateGroup(spec, True, i))
    commands += [NodeDown(2, 1_000), NodeDown(5, 1_500), NodeUp(2, 1, 3_000), DrainNode(3, 4_000)]
    commands += [NodeUp(5, 1, 5_000), ResumeNode(3, True, 6_000), GroupsTick(9_000)]
    return commands


def run() -> bytes:
    state = ClusterState(groups=GroupsConfig(day_ms=24_000))
    index = 0
    for command in script():
        for _ in range(3):  # the owners finish each start and stop they were asked for
            index += 1
            state.execute(index, command)
            command = _next_report(state) or GroupsTick(0)
    return state.snapshot()


def _next_report(state: ClusterState) -> Message | None:
    part = state.part("groups")
    groups = part.table.groups  # type: ignore[attr-defined]
    for name in sorted(groups):
        g = groups[name]
        if g.state in (GroupState.STARTING, GroupState.STOPPING):
            kind = ReportKind.STARTED if g.state == GroupState.STARTING else ReportKind.STOPPED
            return GroupReport(name, g.owner, g.epoch, kind)
    return None


if __name__ == "__main__":
    sys.stdout.write(run().hex())
