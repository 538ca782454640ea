"""The cluster service's times the golden scripts of this folder were written for: round
seconds, easy to follow on a timeline (the product's defaults are LAN-short)."""

from raftcluster.groups.timing import GroupTiming

ROUND_SECONDS = GroupTiming(
    heartbeat_interval_ms=1_000,
    fence_after_ms=5_000,
    node_down_after_ms=12_000,
    election_timeout_ms=1_000,
    kill_ms=1_000,
    report_retry_ms=2_000,
)
