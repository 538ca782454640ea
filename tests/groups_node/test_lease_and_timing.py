"""The lease keeper's ack handling, and the timing rule at, below and above its boundary."""

from __future__ import annotations

import pytest

from raftcluster.groups.heartbeat import NodeHeartbeat, NodeHeartbeatAck
from raftcluster.groups.lease import LeaseKeeper
from raftcluster.groups.timing import GroupTiming, min_node_down_after_ms
from statemachine.codec import decode, encode, encode_value
from statemachine.errors import DecodeError, InvalidArgument

# The times these scripts were written for (round seconds; the defaults are LAN-short).
T = GroupTiming(
    heartbeat_interval_ms=1_000,
    fence_after_ms=5_000,
    node_down_after_ms=12_000,
    election_timeout_ms=1_000,
    kill_ms=1_000,
    report_retry_ms=2_000,
)


def test_heartbeats_go_out_every_interval_from_the_start() -> None:
    k = LeaseKeeper(2, 3, T, 100)
    assert k.lease_until_ms == 0  # no lease before an ack
    assert k.tick(100) == NodeHeartbeat(2, 3, 100)
    assert k.tick(600) is None and k.next_wake_ms() == 1_100
    assert k.tick(1_150) == NodeHeartbeat(2, 3, 1_150)
    assert k.next_wake_ms() == 2_150


def test_the_lease_ends_fence_after_the_acked_heartbeats_send() -> None:
    k = LeaseKeeper(2, 3, T, 0)
    k.tick(0), k.tick(1_000), k.tick(2_000)
    # The ack of the heartbeat sent at 1_000 arrives late, at 2_500: the lease is anchored
    # at the send (1_000 + 5_000), not at the arrival.
    assert k.acked(NodeHeartbeatAck(2, 7, 1_000), 2_500) == 6_000
    assert k.lease_until_ms == 6_000
    # The ack of an older heartbeat (0), arriving after, is stale: ignored.
    assert k.acked(NodeHeartbeatAck(2, 7, 0), 2_600) is None
    # A duplicate, a heartbeat never sent, another node's: ignored.
    assert k.acked(NodeHeartbeatAck(2, 7, 1_000), 2_700) is None
    assert k.acked(NodeHeartbeatAck(2, 7, 1_500), 2_700) is None
    assert k.acked(NodeHeartbeatAck(9, 7, 2_000), 2_700) is None
    assert k.lease_until_ms == 6_000
    assert k.acked(NodeHeartbeatAck(2, 8, 2_000), 2_800) == 7_000


def test_a_lease_counts_only_once_the_node_applied_as_far_as_its_leader() -> None:
    # The leader acks at applied index 40; this node's state has applied 35: a node back
    # from a partition must first apply its own NodeDown and the grants that moved its
    # groups, or it would restart them under epochs that moved on.
    k = LeaseKeeper(2, 3, T, 0)
    k.tick(0), k.tick(1_000)
    assert k.acked(NodeHeartbeatAck(2, 7, 1_000, applied_index=40), 1_200, 35) is None
    assert k.lease_until_ms == 0
    assert k.applied(39, 1_300) is None
    assert k.applied(40, 1_400) == 6_000  # anchored at the send all the same
    assert k.applied(41, 1_500) is None  # given once
    # Caught up already: at once.
    assert k.tick(2_000) is not None
    assert k.acked(NodeHeartbeatAck(2, 7, 2_000, applied_index=41), 2_100, 41) == 7_000


def test_another_incarnations_acks_do_not_count() -> None:
    before = LeaseKeeper(2, 3, T, 0)
    before.tick(0)
    after = LeaseKeeper(2, 4, T, 500)  # restarted: it sent nothing at 0
    assert after.acked(NodeHeartbeatAck(2, 7, 0), 600) is None
    assert after.lease_until_ms == 0


def test_a_heartbeat_older_than_a_lease_is_forgotten() -> None:
    k = LeaseKeeper(2, 3, T, 0)
    for now in range(0, 6_000, 1_000):
        k.tick(now)
    # The heartbeat of 0 was forgotten at 5_000 (its lease would end at 5_000 anyway).
    assert k.acked(NodeHeartbeatAck(2, 7, 0), 5_100) is None
    assert k.acked(NodeHeartbeatAck(2, 7, 1_000), 5_100) == 6_000


def test_a_clock_stepping_back_voids_the_lease() -> None:
    k = LeaseKeeper(2, 3, T, 10_000)
    k.tick(10_000)
    assert k.acked(NodeHeartbeatAck(2, 7, 10_000), 10_010) == 15_000
    # The clock steps back 4 s: a lease to 15_000 would now last 9 s of real time.
    assert k.tick(6_000) == NodeHeartbeat(2, 3, 6_000)
    assert k.lease_until_ms <= 6_000
    assert k.acked(NodeHeartbeatAck(2, 7, 10_000), 6_010) is None  # sent before the step
    assert k.acked(NodeHeartbeatAck(2, 7, 6_000), 6_010) == 11_000


def test_heartbeat_messages_round_trip_through_the_codec() -> None:
    for message in (NodeHeartbeat(2, 3, 100), NodeHeartbeatAck(2, 7, 100, 42)):
        assert decode(encode(message), type(message)) == message


@pytest.mark.parametrize(
    "fields",
    [[0, 3, 100], [2, -1, 100], [2, 3, -5], [2, 3], [2, 3, 100, 4], ["2", 3, 100]],
)
def test_a_malformed_heartbeat_from_a_peer_is_a_decode_error(fields: list[object]) -> None:
    # What a peer sends is checked at the boundary: node ids from 1, nothing negative,
    # the exact fields; a bad frame is refused with a typed error, never half-read.
    with pytest.raises(DecodeError):
        decode(encode_value([NodeHeartbeat.TAG, *fields]), NodeHeartbeat)
    with pytest.raises(DecodeError):
        decode(encode_value([NodeHeartbeatAck.TAG, 2, 7, 100, -1]), NodeHeartbeatAck)


# -- the timing rule ---------------------------------------------------------------------


def test_the_minimum_by_hand() -> None:
    # Defaults: (5_000 + 1_000 + 1_000) x 1.001 / 0.999 = 7_014.01..., up to 7_015, plus
    # one heartbeat (1_000).
    assert T.min_node_down_after_ms() == 8_015
    # The simulator's drift, 20%: 7_000 x 1.2 / 0.8 = 10_500 exactly (no rounding up).
    sim = dict(fence_after_ms=5_000, election_timeout_ms=1_000, kill_ms=1_000)
    assert (
        min_node_down_after_ms(**sim, heartbeat_interval_ms=1_000, max_drift_ppm=200_000) == 11_500
    )
    # No drift: the sum and the margin.
    assert min_node_down_after_ms(**sim, heartbeat_interval_ms=500, max_drift_ppm=0) == 7_500


@pytest.mark.parametrize("drift", [0, 1_000, 200_000])
def test_the_rule_at_below_and_above_its_boundary(drift: int) -> None:
    base = dict(fence_after_ms=3_000, election_timeout_ms=700, kill_ms=300, max_drift_ppm=drift)
    minimum = GroupTiming(**base, node_down_after_ms=10**6).min_node_down_after_ms()  # type: ignore[arg-type]
    assert GroupTiming(**base, node_down_after_ms=minimum).node_down_after_ms == minimum  # type: ignore[arg-type]
    assert GroupTiming(**base, node_down_after_ms=minimum + 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as refused:
        GroupTiming(**base, node_down_after_ms=minimum - 1)  # type: ignore[arg-type]
    message = str(refused.value)
    assert refused.value.field == "GroupTiming.node_down_after_ms"
    assert f"{minimum - 1} is below the minimum {minimum}" in message
    assert "fence_after_ms 3000" in message and "election_timeout_ms 700" in message


def test_the_boundary_is_where_the_real_time_inequality_flips() -> None:
    # The rule says D/(1+d) >= (F+E+K)/(1-d) (plus H). Check the minimum against that
    # inequality in exact rationals, independently of the integer formula.
    from fractions import Fraction

    for drift in (0, 1, 999, 1_000, 123_457, 200_000):
        t = GroupTiming(max_drift_ppm=drift, node_down_after_ms=10**7)
        d = Fraction(drift, 10**6)
        span = t.fence_after_ms + t.election_timeout_ms + t.kill_ms
        core = t.min_node_down_after_ms() - t.heartbeat_interval_ms
        assert Fraction(core) / (1 + d) >= Fraction(span) / (1 - d)
        assert Fraction(core - 1) / (1 + d) < Fraction(span) / (1 - d)


def test_fence_after_must_cover_two_heartbeats() -> None:
    with pytest.raises(InvalidArgument, match="twice heartbeat_interval_ms"):
        GroupTiming(heartbeat_interval_ms=3_000, fence_after_ms=5_000, node_down_after_ms=60_000)
