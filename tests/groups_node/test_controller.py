"""The resource controller, as scripts: feed inputs, assert the exact actions and reports.

Times: the node's clock in ms. Every script takes a lease to 100_000 first unless it is
about the lease; with the default timing the group's stops (20 s each by default) are
capped at fence_after_ms - 2 x heartbeat = 3_000, so starts stop at 97_000.
"""

from __future__ import annotations

import attrs

from raftcluster.groups.actions import Action, Do, Lease, Observation, Output, Owned, Seen
from raftcluster.groups.controller import ResourceController
from raftcluster.groups.timing import GroupTiming
from statemachine.groups.messages import GroupReport, GroupState, ReportKind, ResourceSpec

# The times these scripts were written for (round seconds; the defaults are LAN-short).
T = GroupTiming(
    heartbeat_interval_ms=1_000,
    fence_after_ms=5_000,
    node_down_after_ms=12_000,
    election_timeout_ms=1_000,
    kill_ms=1_000,
    report_retry_ms=2_000,
)
NODE = 4
A = ResourceSpec("a", "process", monitor_interval_ms=1_000, max_restarts=1)
B = ResourceSpec("b", "process", monitor_interval_ms=1_000, max_restarts=1)
STARTING, ONLINE, STOPPING = GroupState.STARTING, GroupState.ONLINE, GroupState.STOPPING


def start(spec: ResourceSpec, epoch: int = 7, group: str = "web") -> Action:
    return Action(Do.START, group, spec, epoch, spec.start_timeout_ms)


def stop(spec: ResourceSpec, epoch: int = 7, group: str = "web") -> Action:
    return Action(Do.STOP, group, spec, epoch, spec.stop_timeout_ms)


def monitor(spec: ResourceSpec, epoch: int = 7, group: str = "web") -> Action:
    return Action(Do.MONITOR, group, spec, epoch, spec.monitor_timeout_ms)


def seen(resource: str, what: Seen, epoch: int = 7, detail: str = "") -> Observation:
    return Observation("web", resource, epoch, what, detail)


def report(
    kind: ReportKind, at: int, epoch: int = 7, resource: str = "", detail: str = ""
) -> GroupReport:
    return GroupReport("web", NODE, epoch, kind, resource, detail, at)


def web(state: GroupState, epoch: int = 7, *resources: ResourceSpec) -> list[Owned]:
    return [Owned("web", epoch, state, resources or (A, B))]


def running(lease_until: int = 100_000) -> ResourceController:
    """A controller with both resources of `web` started under epoch 7 at t=20, ONLINE."""
    c = ResourceController(NODE, T, 0)
    c.lease(lease_until, 0)
    assert c.owned(web(STARTING), 0).actions == (start(A),)
    assert c.observe(seen("a", Seen.STARTED), 10).actions == (start(B),)
    assert c.observe(seen("b", Seen.STARTED), 20) == Output(
        reports=(report(ReportKind.STARTED, 20),)
    )
    assert c.owned(web(ONLINE), 25) == Output()
    return c


def test_two_resources_start_in_order_and_stop_in_reverse() -> None:
    c = ResourceController(NODE, T, 0)
    assert c.lease(100_000, 0) == Output(lease=Lease(100_000))
    # b is not started before a is: one START at a time, in order.
    assert c.owned(web(STARTING), 0) == Output(actions=(start(A),))
    assert c.tick(5) == Output()
    assert c.observe(seen("a", Seen.STARTED), 10) == Output(actions=(start(B),))
    assert c.observe(seen("b", Seen.STARTED), 20) == Output(
        reports=(report(ReportKind.STARTED, 20),)
    )
    assert c.owned(web(ONLINE), 25) == Output()
    assert [v.running for v in c.view()] == [("a", "b")]
    # A planned stop: b first, then a, then STOPPED under the epoch.
    assert c.owned(web(STOPPING), 30) == Output(actions=(stop(B),))
    assert c.observe(seen("b", Seen.STOPPED), 40) == Output(actions=(stop(A),))
    assert c.observe(seen("a", Seen.STOPPED), 50) == Output(
        reports=(report(ReportKind.STOPPED, 50),)
    )
    assert c.owned([], 60) == Output()
    assert c.view() == () and c.maybe_running() == {}


def test_monitors_run_every_interval_after_the_start() -> None:
    c = running()
    # a started at 10, b at 20: each is monitored monitor_interval_ms after.
    assert c.next_wake_ms() == 1_010
    assert c.tick(1_010) == Output(actions=(monitor(A),))
    assert c.next_wake_ms() == 1_020
    assert c.tick(1_020) == Output(actions=(monitor(B),))
    assert c.observe(seen("a", Seen.MONITOR_OK), 1_030) == Output()
    assert c.next_wake_ms() == 2_030


def test_a_monitor_failure_restarts_in_place_then_gives_the_group_up() -> None:
    c = running()
    assert c.tick(1_010) == Output(actions=(monitor(A),))
    # First failure: max_restarts=1 allows one restart. a may hang: stop it, then start it.
    out = c.observe(seen("a", Seen.MONITOR_FAILED, detail="no pid"), 1_015)
    assert out == Output(
        actions=(stop(A),),
        reports=(
            report(ReportKind.RESTARTED, 1_015, resource="a", detail="monitor_failed: no pid"),
        ),
    )
    assert c.observe(seen("a", Seen.STOPPED), 1_016) == Output(actions=(start(A),))
    # b's monitor is due at 1_020 while a restarts: it runs on its own.
    assert c.tick(1_020) == Output(actions=(monitor(B),))
    assert c.observe(seen("b", Seen.MONITOR_OK), 1_021) == Output()
    # The group is ONLINE already: a restart in place reports nothing more.
    assert c.observe(seen("a", Seen.STARTED), 1_030) == Output()
    # a's next monitor is due at 2_030, b's at 2_021.
    assert c.tick(2_030) == Output(actions=(monitor(A), monitor(B)))
    assert c.observe(seen("b", Seen.MONITOR_OK), 2_030) == Output()
    # Second failure within the window: the group is given up, stopped in reverse order.
    assert c.observe(seen("a", Seen.MONITOR_FAILED), 2_031) == Output(actions=(stop(B),))
    assert c.observe(seen("b", Seen.STOPPED), 2_040) == Output(actions=(stop(A),))
    failed = report(ReportKind.FAILED, 2_050, resource="a", detail="monitor_failed")
    assert c.observe(seen("a", Seen.STOPPED), 2_050) == Output(reports=(failed,))
    # Given up under epoch 7: nothing starts again while the grant stands.
    assert c.tick(2_060) == Output()
    assert c.view()[0].given_up


def test_a_restart_window_forgets_old_failures() -> None:
    spec = ResourceSpec(
        "a", "process", monitor_interval_ms=1_000, max_restarts=1, restart_window_ms=5_000
    )
    c = ResourceController(NODE, T, 0)
    c.lease(100_000, 0)
    assert c.owned(web(ONLINE, 7, spec), 0).actions == (start(spec),)
    assert c.observe(seen("a", Seen.STARTED), 10) == Output()  # ONLINE: no STARTED report
    out = c.observe(seen("a", Seen.EXITED, detail="code 1"), 100)
    assert out == Output(
        actions=(start(spec),),
        reports=(report(ReportKind.RESTARTED, 100, resource="a", detail="exited: code 1"),),
    )
    assert c.observe(seen("a", Seen.STARTED), 110) == Output()
    # 5_100: the failure at 100 is out of the window, so this one is restarted too.
    out = c.observe(seen("a", Seen.EXITED), 5_100)
    assert out.actions == (start(spec),) and [r.kind for r in out.reports] == [ReportKind.RESTARTED]


def test_a_start_failure_is_restarted_then_fails_the_group() -> None:
    c = ResourceController(NODE, T, 0)
    c.lease(100_000, 0)
    assert c.owned(web(STARTING), 0).actions == (start(A),)
    assert c.observe(seen("a", Seen.STARTED), 10).actions == (start(B),)
    out = c.observe(seen("b", Seen.START_FAILED, detail="timed out"), 20)
    assert out == Output(
        actions=(start(B),),
        reports=(report(ReportKind.RESTARTED, 20, resource="b", detail="start_failed: timed out"),),
    )
    # b failing again: nothing of b runs (the shell stopped it), so a is stopped, then FAILED.
    assert c.observe(seen("b", Seen.START_FAILED), 30) == Output(actions=(stop(A),))
    out = c.observe(seen("a", Seen.STOPPED), 40)
    assert out == Output(
        reports=(report(ReportKind.FAILED, 40, resource="b", detail="start_failed"),)
    )


def test_a_stop_that_times_out_waits_for_the_shell_to_kill() -> None:
    c = running()
    assert c.owned(web(STOPPING), 100) == Output(actions=(stop(B),))
    # The stop's timeout is carried in the action; the controller never issues another
    # action for b while it is in flight, however long it takes.
    assert stop(B).timeout_ms == 20_000
    assert c.tick(20_100) == Output()
    assert c.tick(40_000) == Output()
    # The shell killed b after the timeout: that is a STOPPED, and a goes next.
    assert c.observe(seen("b", Seen.STOPPED, detail="killed after 20000 ms"), 40_101) == Output(
        actions=(stop(A),)
    )
    assert c.observe(seen("a", Seen.STOPPED), 40_110).reports == (
        report(ReportKind.STOPPED, 40_110),
    )


def test_stopping_while_a_start_is_in_flight_waits_for_its_answer() -> None:
    c = ResourceController(NODE, T, 0)
    c.lease(100_000, 0)
    c.owned(web(STARTING), 0)
    assert c.observe(seen("a", Seen.STARTED), 10).actions == (start(B),)
    # Moved to STOPPING while b starts: nothing can be stopped before b answers.
    assert c.owned(web(STOPPING), 15) == Output()
    assert c.observe(seen("b", Seen.STARTED), 20) == Output(actions=(stop(B),))
    assert c.observe(seen("b", Seen.STOPPED), 30) == Output(actions=(stop(A),))
    assert c.observe(seen("a", Seen.STOPPED), 40) == Output(
        reports=(report(ReportKind.STOPPED, 40),)
    )


def test_a_group_owned_stopping_that_never_ran_reports_stopped_at_once() -> None:
    c = ResourceController(NODE, T, 0)
    assert c.owned(web(STOPPING, 3), 0) == Output(reports=(report(ReportKind.STOPPED, 0, epoch=3),))


def test_a_new_epoch_while_running_stops_then_starts_under_it() -> None:
    c = running()
    # Re-granted under epoch 9 (say, moved away and back): what runs under 7 is stopped.
    assert c.owned(web(STARTING, 9), 100) == Output(actions=(stop(B, 7),))
    assert c.observe(seen("b", Seen.STOPPED, 7), 110) == Output(actions=(stop(A, 7),))
    assert c.observe(seen("a", Seen.STOPPED, 7), 120) == Output(actions=(start(A, 9),))
    assert c.observe(seen("a", Seen.STARTED, 9), 130) == Output(actions=(start(B, 9),))
    assert c.observe(seen("b", Seen.STARTED, 9), 140).reports == (
        report(ReportKind.STARTED, 140, epoch=9),
    )


def test_an_old_epoch_answer_is_stopped_and_never_reported_under_the_new_one() -> None:
    c = ResourceController(NODE, T, 0)
    c.lease(100_000, 0)
    c.owned(web(STARTING), 0)
    c.observe(seen("a", Seen.STARTED), 10)  # START b under 7 now in flight
    assert c.owned(web(STARTING, 9), 15) == Output()  # waits for b's answer
    # b's start under 7 completes: it runs, so it is stopped; no STARTED for 7 or 9.
    assert c.observe(seen("b", Seen.STARTED, 7), 20) == Output(actions=(stop(B, 7),))
    # A stray answer under 9 for an action never issued is ignored.
    assert c.observe(seen("a", Seen.STARTED, 9), 21) == Output()
    assert c.observe(seen("b", Seen.STOPPED, 7), 30) == Output(actions=(stop(A, 7),))
    assert c.observe(seen("a", Seen.STOPPED, 7), 40) == Output(actions=(start(A, 9),))


def test_a_group_no_longer_owned_is_stopped_without_a_report() -> None:
    c = running()
    assert c.owned([], 100) == Output(actions=(stop(B),))
    assert c.observe(seen("b", Seen.STOPPED), 110) == Output(actions=(stop(A),))
    assert c.observe(seen("a", Seen.STOPPED), 120) == Output()
    assert c.view() == ()


def test_nothing_starts_without_a_lease() -> None:
    c = ResourceController(NODE, T, 0)
    assert c.owned(web(STARTING), 0) == Output()
    assert c.tick(1_000) == Output()
    # A lease that ends within the stop lead (3_000) is not enough either.
    assert c.lease(3_900, 1_000) == Output(lease=Lease(3_900))
    # 5_000 - 3_000 = 2_000 > 1_100: now it is.
    assert c.lease(5_000, 1_100) == Output(actions=(start(A),), lease=Lease(5_000))


def test_a_lease_about_to_lapse_fences_the_node_and_a_renewal_restarts() -> None:
    c = running(lease_until=10_000)
    # Stops take 2 x 20 s, capped at 3_000: everything stops at 7_000 (before the watchdog
    # kills all at 10_000), and monitors due before that still run.
    assert c.next_wake_ms() == 1_010
    c.tick(1_010), c.observe(seen("a", Seen.MONITOR_OK), 1_011)
    c.tick(1_020), c.observe(seen("b", Seen.MONITOR_OK), 1_021)
    c.tick(2_011), c.observe(seen("a", Seen.MONITOR_OK), 2_012)
    c.tick(2_021), c.observe(seen("b", Seen.MONITOR_OK), 2_022)
    assert c.tick(6_999).actions == (monitor(A), monitor(B))
    c.observe(seen("a", Seen.MONITOR_OK), 6_999), c.observe(seen("b", Seen.MONITOR_OK), 6_999)
    assert c.next_wake_ms() == 7_000
    assert c.tick(7_000) == Output(actions=(stop(B),))
    assert c.observe(seen("b", Seen.STOPPED), 7_100) == Output(actions=(stop(A),))
    # A crash while fencing is not a failure to count.
    assert c.observe(seen("a", Seen.STOPPED), 7_200) == Output()
    assert c.tick(9_000) == Output() and c.maybe_running() == {}
    # The lease is renewed and web is still owned: it starts again (no new report: ONLINE).
    assert c.lease(20_000, 11_000) == Output(actions=(start(A),), lease=Lease(20_000))
    assert c.observe(seen("a", Seen.STARTED), 11_010) == Output(actions=(start(B),))
    assert c.observe(seen("b", Seen.STARTED), 11_020) == Output()


def test_a_group_with_quick_stops_fences_only_as_late_as_its_stops_allow() -> None:
    quick = ResourceSpec("q", "process", stop_timeout_ms=500)
    c = ResourceController(NODE, T, 0)
    c.lease(10_000, 0)
    c.owned(web(ONLINE, 7, quick), 0)
    c.observe(seen("q", Seen.STARTED), 10)
    assert c.next_wake_ms() == 9_500  # the monitor (10_010) comes after the fence
    assert c.tick(9_499) == Output()
    assert c.tick(9_500) == Output(actions=(stop(quick),))


def test_lost_reports_are_re_emitted_until_owned_shows_them() -> None:
    A = ResourceSpec("a", "process", monitor_interval_ms=50_000)  # no monitor in the way
    c = ResourceController(NODE, T, 0)
    c.lease(100_000, 0)
    c.owned(web(STARTING, 7, A), 0)
    assert c.observe(seen("a", Seen.STARTED), 10).reports == (report(ReportKind.STARTED, 10),)
    assert c.next_wake_ms() == 10 + T.report_retry_ms
    assert c.tick(10 + T.report_retry_ms - 1) == Output()
    # Lost: proposed again every report_retry_ms, with the time it is proposed at.
    assert c.tick(2_010) == Output(reports=(report(ReportKind.STARTED, 2_010),))
    assert c.tick(4_010) == Output(reports=(report(ReportKind.STARTED, 4_010),))
    # Still STARTING under 7 (an unrelated change): not confirmed yet.
    assert c.owned(web(STARTING, 7, A), 4_500) == Output()
    assert c.owned(web(ONLINE, 7, A), 5_000) == Output()
    assert c.tick(6_010).reports == ()
    # STOPPED likewise, until the group is no longer owned STOPPING under 7.
    c.owned(web(STOPPING, 7, A), 7_000)
    assert c.observe(seen("a", Seen.STOPPED), 7_010).reports == (report(ReportKind.STOPPED, 7_010),)
    assert c.tick(9_010).reports == (report(ReportKind.STOPPED, 9_010),)
    assert c.owned([], 9_500) == Output()
    assert c.tick(11_010) == Output() and c.next_wake_ms() > 10**12


def test_an_observation_for_an_unknown_group_or_resource_is_ignored() -> None:
    c = running()
    assert c.observe(Observation("other", "a", 7, Seen.STARTED), 30) == Output()
    assert c.observe(seen("zz", Seen.EXITED), 30) == Output()
    # A second answer to an action already answered is ignored too.
    assert c.observe(seen("a", Seen.STARTED), 30) == Output()


def test_a_failure_before_the_started_report_is_confirmed_replaces_it_with_failed() -> None:
    once = ResourceSpec("a", "process", max_restarts=0, monitor_interval_ms=50_000)
    c = ResourceController(NODE, T, 0)
    c.lease(100_000, 0)
    c.owned(web(STARTING, 7, once), 0)
    assert c.observe(seen("a", Seen.STARTED), 10).reports == (report(ReportKind.STARTED, 10),)
    # The STARTED report is not applied yet when a exits, and no restart is allowed:
    # nothing runs any more, so FAILED at once, and STARTED is never proposed again.
    failed = report(ReportKind.FAILED, 500, resource="a", detail="exited")
    assert c.observe(seen("a", Seen.EXITED), 500) == Output(reports=(failed,))
    assert c.tick(2_010) == Output()
    assert c.tick(2_500) == Output(reports=(attrs.evolve(failed, at_ms=2_500),))


def test_the_watchdogs_kills_are_no_failures_and_a_clock_step_back_fences() -> None:
    c = running(lease_until=10_000)
    # The node's clock steps back 2 s: the lease (to 10_000) would outlast what the
    # leader allowed in real time, so the controller treats it as ended now.
    assert c.tick(3_000) == Output(actions=(monitor(A), monitor(B)))
    c.observe(seen("a", Seen.MONITOR_OK), 3_000), c.observe(seen("b", Seen.MONITOR_OK), 3_000)
    assert c.tick(1_000) == Output(actions=(stop(B),))
    assert not c.leased("web", 1_000)
    # The watchdog killed a meanwhile (no action in flight for it): EXITED, not counted as
    # a failure (a has max_restarts=1, yet no RESTARTED report and nothing starts).
    assert c.observe(seen("a", Seen.EXITED), 1_100) == Output()
    assert c.observe(seen("b", Seen.STOPPED), 1_200) == Output()
    assert c.maybe_running() == {}


def test_a_changed_spec_takes_effect_after_the_old_resources_stopped() -> None:
    c = running()
    slower = ResourceSpec("a", "process", start_timeout_ms=60_000)
    # Same epoch, new resources (the state allows it only offline, but the controller
    # must not mix specs): the old ones stop in reverse, then the new one starts.
    assert c.owned(web(ONLINE, 7, slower), 100) == Output(actions=(stop(B),))
    assert c.observe(seen("b", Seen.STOPPED), 110) == Output(actions=(stop(A),))
    assert c.observe(seen("a", Seen.STOPPED), 120) == Output(actions=(start(slower),))
    assert start(slower).timeout_ms == 60_000


def test_a_fatal_failure_gives_the_group_up_at_once_with_restarts_left() -> None:
    c = ResourceController(NODE, T, 0)
    c.lease(100_000, 0)
    assert c.owned(web(STARTING), 0).actions == (start(A),)
    assert c.observe(seen("a", Seen.STARTED), 10).actions == (start(B),)
    hard = attrs.evolve(seen("b", Seen.START_FAILED, detail="ocf exit 5"), fatal=True)
    # b has a restart left (max_restarts=1), but no restart here can cure it: a stops.
    assert c.observe(hard, 20) == Output(actions=(stop(A),))
    out = c.observe(seen("a", Seen.STOPPED), 30)
    assert out == Output(
        reports=(report(ReportKind.FAILED, 30, resource="b", detail="start_failed: ocf exit 5"),)
    )
