"""`GroupTiming`: the cluster service's times on a node, and the rule that makes them safe.

The rule (docs/groups-node.md, "The timing rule") is what lets the leader declare a node
down and fail its groups over without hearing from it: by the time the leader's node
manager has not heard from a node for `node_down_after_ms`, that node has stopped every
resource it ran (its lease ran out, and its watchdog killed whatever was left).

The derivation. Clocks run at rates within `max_drift_ppm` of real time: an interval of
`x` ms on one node's clock lasts between x/(1 + d) and x/(1 - d) real ms (d = ppm/1e6).

- The node N's lease is anchored at the send time `s` (N's clock) of a heartbeat that a
  leader acked, and ends `fence_after_ms` (F) later on N's clock. A leader acks only
  while it has quorum contact, so the heartbeat was heard by a leader at a real time
  no earlier than its send time (anchoring at the send, not at the ack's arrival, makes
  the network's delay of the ack irrelevant).
- N's watchdog kills what is left when the lease ends; that takes at most `kill_ms` (K).
  So every resource of N is dead by real time t_s + (F + K)/(1 - d) (K measured on N's
  clock too: the watchdog's timer is).
- Who acked? Either the leader L' that declares N down, which then heard N at or after
  t_s and counts silence from there; or an older leader L, deposed by L'. L acks only
  while a majority heard it within its contact window; one member of that majority voted
  for L' (majorities intersect) and stops answering L once it has, so L acks at most one
  `election_timeout_ms` (E, on L's clock) after L' could win: t_s <= t_T + E/(1 - d), t_T
  the real time L' starts its tenure. L' counts every member as heard at its tenure
  start (the node manager's tenure guard), so in both cases L' declares N down no earlier
  than (the later of t_s and t_T) + node_down_after_ms/(1 + d).
- Safe when node_down_after_ms/(1 + d) >= (F + K + E)/(1 - d), i.e.

      node_down_after_ms >= ceil((F + E + K) * (1e6 + ppm) / (1e6 - ppm)) + H

  with H = `heartbeat_interval_ms` as a margin for what the model leaves out: a message
  that counted as quorum contact while it was in flight longer than the window allows,
  and the granularity of the shells' timers.

A jump of the leader's clock is not silence (the node manager re-anchors after one); a
jump of a node's clock backwards voids its lease (`LeaseKeeper`). A forward jump only
shortens a lease. Liveness asks for more: `fence_after_ms` at least twice the heartbeat
interval, so that one lost heartbeat does not fence a healthy node.
"""

from __future__ import annotations

import attrs

from statemachine.codec import int_range
from statemachine.errors import InvalidArgument

PPM = 1_000_000


@attrs.frozen(kw_only=True)
class GroupTiming:
    """The cluster service's times, in ms of a node's own clock (see the module's rule)."""

    heartbeat_interval_ms: int = attrs.field(default=150, validator=int_range(1, 600_000))
    fence_after_ms: int = attrs.field(default=500, validator=int_range(2, 3_600_000))
    node_down_after_ms: int = attrs.field(default=1_300, validator=int_range(1, 86_400_000))
    election_timeout_ms: int = attrs.field(default=500, validator=int_range(1, 3_600_000))
    kill_ms: int = attrs.field(default=100, validator=int_range(0, 600_000))
    max_drift_ppm: int = attrs.field(default=1_000, validator=int_range(0, 500_000))
    tick_interval_ms: int = attrs.field(default=1_000, validator=int_range(1, 3_600_000))
    report_retry_ms: int = attrs.field(default=1_000, validator=int_range(1, 3_600_000))

    def __attrs_post_init__(self) -> None:
        if self.fence_after_ms < 2 * self.heartbeat_interval_ms:
            raise InvalidArgument(
                "GroupTiming.fence_after_ms",
                f"{self.fence_after_ms} must be at least twice heartbeat_interval_ms "
                f"({self.heartbeat_interval_ms}), or one lost heartbeat fences a healthy node",
            )
        minimum = self.min_node_down_after_ms()
        if self.node_down_after_ms < minimum:
            raise InvalidArgument(
                "GroupTiming.node_down_after_ms",
                f"{self.node_down_after_ms} is below the minimum {minimum} = "
                f"ceil((fence_after_ms {self.fence_after_ms} + election_timeout_ms "
                f"{self.election_timeout_ms} + kill_ms {self.kill_ms}) x (1e6 + "
                f"{self.max_drift_ppm}) / (1e6 - {self.max_drift_ppm})) + heartbeat_interval_ms "
                f"{self.heartbeat_interval_ms}: a node declared down earlier may still run "
                "its groups",
            )

    def min_node_down_after_ms(self) -> int:
        """The least `node_down_after_ms` the rule allows with the other times."""
        return min_node_down_after_ms(
            fence_after_ms=self.fence_after_ms,
            election_timeout_ms=self.election_timeout_ms,
            kill_ms=self.kill_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            max_drift_ppm=self.max_drift_ppm,
        )

    @property
    def self_fence_lead_cap_ms(self) -> int:
        """The most time before its lease ends at which the controller stops a group (the
        stops' own timeouts bound it below). A healthy node's lease has at least
        `fence_after_ms - heartbeat_interval_ms` (less the ack's round trip) left, so two
        heartbeats under that never fences a node that hears its acks."""
        return max(0, self.fence_after_ms - 2 * self.heartbeat_interval_ms)

    @property
    def clock_jump_ms(self) -> int:
        """A gap between two runs of the node manager longer than this is a jump of the
        leader's clock (or a stall), not silence of the nodes."""
        return 2 * self.tick_interval_ms


def min_node_down_after_ms(
    *,
    fence_after_ms: int,
    election_timeout_ms: int,
    kill_ms: int,
    heartbeat_interval_ms: int,
    max_drift_ppm: int,
) -> int:
    """ceil((F + E + K) * (1e6 + ppm) / (1e6 - ppm)) + H, in integers (no rounding)."""
    assert 0 <= max_drift_ppm < PPM
    span = fence_after_ms + election_timeout_ms + kill_ms
    numerator = span * (PPM + max_drift_ppm)
    denominator = PPM - max_drift_ppm
    return -(-numerator // denominator) + heartbeat_interval_ms
