"""The cluster service's checks, each shown a history that breaks it and one that does not.

The ledger and the event-stream check judge what the simulator saw; a check that cannot
fail proves nothing, so each is fed a made-up history here: two owners at once, an epoch
that goes back, a gap in a node's stream, two nodes given different events for one
revision, a state change under a stale grant, failback outside its window or before its
owner was stable.
"""

from __future__ import annotations

import pytest

from chaos.sim.groups.ledger import Ledger
from chaos.sim.groups.streams import Streams
from chaos.sim.invariants import SafetyViolation, Where
from statemachine.groups.messages import (
    Decision,
    Failback,
    GroupChanged,
    GroupDefined,
    GroupPlaced,
    GroupSpec,
    GroupState,
    NodeChanged,
    NodeState,
)

DAY_MS = 24_000  # an hour is a second


def fail(invariant: str, message: str, nodes: tuple[int, ...]) -> SafetyViolation:
    return SafetyViolation(invariant, message, Where(0, 0), nodes)


def violation(call: object, *args: object) -> str:
    with pytest.raises(SafetyViolation) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.invariant


# -- the ledger ----------------------------------------------------------------------------


def test_a_group_that_lives_on_two_nodes_at_once_is_caught() -> None:
    ledger = Ledger(fail, {"web": 1})
    ledger.spawned(1, "web", 3, 100)
    ledger.running(1, "web", "nginx", 3, 150)
    assert violation(ledger.spawned, 2, "web", 4, 200) == "one owner"


def test_a_stop_confirmed_before_the_start_elsewhere_is_one_owner() -> None:
    ledger = Ledger(fail, {"web": 1})
    ledger.spawned(1, "web", 3, 100)
    ledger.running(1, "web", "nginx", 3, 150)
    ledger.ended(1, "web", "nginx", 3, 300, "stopped", was_running=True)
    ledger.spawned(2, "web", 4, 300)
    ledger.running(2, "web", "nginx", 4, 400)
    assert ledger.online() == {"web": 2}
    assert ledger.failover_ms == []  # a planned move is not a failover


def test_an_epoch_that_goes_back_or_is_shared_is_caught() -> None:
    ledger = Ledger(fail, {"web": 1})
    ledger.spawned(1, "web", 5, 100)
    ledger.ended(1, "web", "nginx", 5, 120, "start-failed", was_running=False)
    assert violation(ledger.spawned, 2, "web", 4, 200) == "epochs"
    assert violation(ledger.spawned, 2, "web", 5, 200) == "epochs"
    ledger.spawned(1, "web", 5, 200)  # a restart in place keeps its epoch


def test_failover_time_runs_from_the_owners_failure_to_online_elsewhere() -> None:
    ledger = Ledger(fail, {"db": 2}, {"db"})
    ledger.spawned(1, "db", 1, 0)
    ledger.spawned(1, "db", 1, 0)
    ledger.running(1, "db", "data", 1, 10)
    ledger.running(1, "db", "server", 1, 20)
    ledger.owner_failed(1, 1_000)  # its node crashed: its processes live on
    ledger.ended(1, "db", "data", 1, 3_000, "watchdog", was_running=True)
    ledger.ended(1, "db", "server", 1, 3_000, "watchdog", was_running=True)
    ledger.spawned(2, "db", 2, 6_000)
    ledger.spawned(2, "db", 2, 6_000)
    ledger.running(2, "db", "data", 2, 6_100)
    assert ledger.failover_ms == []  # not online until every resource runs
    ledger.running(2, "db", "server", 2, 6_200)
    assert ledger.failover_ms == [5_200]


# -- the event streams -----------------------------------------------------------------------


def spec(**policy: object) -> GroupSpec:
    return GroupSpec("db", preferred_owners=(1, 2), **policy)  # type: ignore[arg-type]


def placed(revision: int, node: int, epoch: int, rule: str, at_ms: int) -> GroupPlaced:
    return GroupPlaced(revision, Decision("db", node, rule, "test"), epoch, at_ms)


def test_a_gap_in_a_nodes_stream_is_caught() -> None:
    streams = Streams(fail, DAY_MS)
    streams.seen(1, NodeChanged(1, 1, NodeState.UP, 0))
    assert violation(streams.seen, 1, NodeChanged(3, 2, NodeState.UP, 0)) == "event streams"


def test_two_nodes_given_different_events_for_one_revision_is_caught() -> None:
    streams = Streams(fail, DAY_MS)
    streams.seen(1, NodeChanged(1, 1, NodeState.UP, 0))
    assert violation(streams.seen, 2, NodeChanged(1, 2, NodeState.UP, 0)) == "event streams"


def test_a_compaction_notice_is_the_one_allowed_jump() -> None:
    streams = Streams(fail, DAY_MS)
    streams.seen(1, NodeChanged(1, 1, NodeState.UP, 0))
    streams.compacted(1, 7)
    streams.seen(1, NodeChanged(7, 2, NodeState.UP, 0))


def test_a_state_change_under_a_stale_grant_is_caught() -> None:
    streams = Streams(fail, DAY_MS)
    streams.seen(1, GroupDefined(1, spec(), False))
    streams.seen(1, placed(2, 1, 5, "start", 0))
    streams.seen(1, GroupChanged(3, "db", GroupState.STARTING, 1, 5))
    streams.seen(1, placed(4, 2, 6, "failover", 10))
    stale = GroupChanged(5, "db", GroupState.ONLINE, 1, 5)
    assert violation(streams.seen, 1, stale) == "epochs"


def test_grants_whose_epochs_do_not_grow_are_caught() -> None:
    streams = Streams(fail, DAY_MS)
    streams.seen(1, placed(1, 1, 5, "start", 0))
    assert violation(streams.seen, 1, placed(2, 2, 5, "failover", 0)) == "epochs"


@pytest.mark.parametrize(
    ("hours", "at_hour", "allowed"),
    [((6, 11), 6, True), ((6, 11), 10, True), ((6, 11), 11, False), ((6, 11), 5, False),
     ((22, 3), 23, True), ((22, 3), 2, True), ((22, 3), 3, False), ((5, 5), 5, False)],
)  # fmt: skip
def test_failback_outside_its_window_is_caught(
    hours: tuple[int, int], at_hour: int, allowed: bool
) -> None:
    streams = Streams(fail, DAY_MS)
    policy = spec(failback=Failback.WINDOW, window_start_hour=hours[0], window_end_hour=hours[1])
    streams.seen(1, GroupDefined(1, policy, False))
    at_ms = 3 * DAY_MS + at_hour * DAY_MS // 24 + 1
    event = placed(2, 1, 9, "failback", at_ms)
    if allowed:
        streams.seen(1, event)
    else:
        assert violation(streams.seen, 1, event) == "failback"


def test_failback_for_never_or_before_the_owner_is_stable_is_caught() -> None:
    streams = Streams(fail, DAY_MS)
    streams.seen(1, GroupDefined(1, spec(failback=Failback.NEVER), False))
    assert violation(streams.seen, 1, placed(2, 1, 3, "failback", 0)) == "failback"
    streams = Streams(fail, DAY_MS)
    streams.seen(1, GroupDefined(1, spec(failback=Failback.STABLE, stable_ms=5_000), False))
    streams.seen(1, NodeChanged(2, 1, NodeState.UP, 10_000))
    assert violation(streams.seen, 1, placed(3, 1, 4, "failback", 14_999)) == "failback"
    streams.seen(2, GroupDefined(1, spec(failback=Failback.STABLE, stable_ms=5_000), False))
    streams.seen(2, NodeChanged(2, 1, NodeState.UP, 10_000))


def test_an_operators_resume_with_failback_is_not_the_policys() -> None:
    streams = Streams(fail, DAY_MS)
    streams.seen(1, GroupDefined(1, spec(failback=Failback.NEVER), False))
    streams.seen(1, placed(2, 1, 3, "resume-failback", 0))


def test_a_group_said_online_under_an_epoch_it_never_fully_ran_under_is_caught() -> None:
    ledger = Ledger(fail, {"db": 2})
    ledger.spawned(1, "db", 4, 0)
    ledger.running(1, "db", "data", 4, 10)
    ledger.spawned(1, "db", 4, 10)
    ledger.running(1, "db", "server", 4, 20)
    ledger.claimed_online("db", 1, 4)  # it did: both ran under 4
    assert violation(ledger.claimed_online, "db", 1, 5) == "epochs"  # a stale report's doing
    assert violation(ledger.claimed_online, "db", 2, 4) == "epochs"
