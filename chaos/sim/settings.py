"""The engine's own settings for one seed: each drawn within its legal range, unless fixed.

A seed varies what a deployment could set: entries per append, snapshot interval,
election and heartbeat timing, the commit notice delay, the in-flight window, the
snapshot chunk size, pre-vote, and how long an fsync takes. Each of these changes which
corner the engine meets: one entry per append makes a new leader replicate an earlier
term's entry before its own no-op, so the commit rule for earlier terms matters (Raft's
Figure 8); a snapshot every few entries makes followers install snapshots over their own
logs; a slow fsync opens the window between a leader's early sends and its own persist.
TigerBeetle's simulator does the same with its configuration.

`SimConfig` fixes a setting by giving it (a test that needs, say, pre-vote off); `None`
draws it. Every setting draws from the generator whether fixed or not, so fixing one
leaves the others as the seed drew them. The draws are reported with the run.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from chaos.sim.config import SimConfig

KIB = 1024


@attrs.frozen
class EngineSettings:
    election_timeout_ms: int
    heartbeat_interval_ms: int
    pre_vote: bool
    check_quorum: bool
    snapshot_every_entries: int
    max_entries_per_msg: int
    max_inflight_msgs: int
    commit_notice_delay_ms: int
    max_snapshot_chunk_bytes: int
    max_fsync_ms: int  # a persist takes a time drawn in [0, this] (virtual ms)
    session_expiry_interval_ms: int

    @classmethod
    def for_seed(cls, config: SimConfig, rng: random.Random) -> EngineSettings:
        def pick(fixed: Any, choices: tuple[Any, ...]) -> Any:
            drawn = rng.choice(choices)
            return drawn if fixed is None else fixed

        heartbeat = pick(config.heartbeat_interval_ms, (100, 150))
        election = pick(config.election_timeout_ms, (3, 5, 10, 15))
        if config.election_timeout_ms is None:
            election *= heartbeat  # a multiple of the heartbeat, as deployments set it
        elif config.heartbeat_interval_ms is None:
            heartbeat = min(heartbeat, max(1, election // 5))  # the timeout fixed: fit it
        return cls(
            election_timeout_ms=election,
            heartbeat_interval_ms=heartbeat,
            pre_vote=pick(config.pre_vote, (True, True, True, False)),
            check_quorum=config.check_quorum,
            snapshot_every_entries=pick(config.snapshot_every_entries, (25, 100, 200, 1_000)),
            max_entries_per_msg=pick(config.max_entries_per_msg, (1, 2, 8, 64, 512)),
            max_inflight_msgs=pick(config.max_inflight_msgs, (1, 4, 64)),
            commit_notice_delay_ms=pick(config.commit_notice_delay_ms, (0, 5, 30)),
            max_snapshot_chunk_bytes=pick(
                config.max_snapshot_chunk_bytes, (512, 8 * KIB, KIB * KIB)
            ),
            max_fsync_ms=pick(config.max_fsync_ms, (0, 2, 10)),
            session_expiry_interval_ms=config.session_expiry_interval_ms,
        )

    def as_dict(self) -> dict[str, int | bool]:
        return attrs.asdict(self)
