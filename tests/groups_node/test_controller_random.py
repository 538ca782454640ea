"""Random owned/observation/lease/tick sequences against the controller, with a model
shell that answers each action exactly once. Checked on every output, independently of
the controller's own asserts:

- a START only while now < lease_until (the lease the shell gave it), under an epoch the
  node owns STARTING or ONLINE, after every earlier resource of the group started;
- a report only under the epoch the group is owned under at that moment; STARTED only
  while every resource of the group runs under it, STOPPED and FAILED only while none
  runs or has an action in flight;
- at most one action in flight per resource.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from raftcluster.groups.actions import Action, Do, Observation, Output, Owned, Seen
from raftcluster.groups.controller import ResourceController
from raftcluster.groups.timing import GroupTiming
from statemachine.groups.messages import GroupState, ReportKind, ResourceSpec


def spec(name: str) -> ResourceSpec:
    return ResourceSpec(
        name,
        "process",
        monitor_interval_ms=500,
        stop_timeout_ms=300,
        max_restarts=1,
        restart_window_ms=5_000,
    )


GROUPS = {"g1": (spec("a"), spec("b")), "g2": (spec("c"),)}
# The times these scripts were written for (round seconds; the defaults are LAN-short).
T = GroupTiming(
    heartbeat_interval_ms=1_000,
    fence_after_ms=5_000,
    node_down_after_ms=12_000,
    election_timeout_ms=1_000,
    kill_ms=1_000,
    report_retry_ms=2_000,
)
STATES = (GroupState.STARTING, GroupState.ONLINE, GroupState.STOPPING)


class Shell:
    def __init__(self) -> None:
        self.c = ResourceController(3, T, 0)
        self.now = 0
        self.lease = 0
        self.owned: dict[str, Owned] = {}
        self.epochs = {g: 1 for g in GROUPS}
        self.inflight: dict[tuple[str, str], Action] = {}
        self.running: dict[tuple[str, str], int] = {}  # -> the epoch it was started under

    def check(self, out: Output) -> None:
        for action in out.actions:
            key = (action.group, action.resource.name)
            assert key not in self.inflight, ("two actions in flight", action)
            if action.do == Do.START:
                assert self.now < self.lease, ("START without a lease", self.now, self.lease)
                owned = self.owned.get(action.group)
                assert owned is not None and owned.epoch == action.epoch, action
                assert owned.state in (GroupState.STARTING, GroupState.ONLINE), owned
                names = [r.name for r in GROUPS[action.group]]
                for before in names[: names.index(action.resource.name)]:
                    assert self.running.get((action.group, before)) == action.epoch, before
            self.inflight[key] = action
        for report in out.reports:
            owned = self.owned.get(report.group)
            assert owned is not None and owned.epoch == report.epoch, (report, owned)
            assert report.node == 3
            names = [(report.group, r.name) for r in GROUPS[report.group]]
            if report.kind == ReportKind.STARTED:  # every resource runs under its epoch
                assert all(self.running.get(key) == report.epoch for key in names), report
            elif report.kind in (ReportKind.STOPPED, ReportKind.FAILED):  # none does
                assert not any(key in self.running for key in names), report
                assert not any(key in self.inflight for key in names), report

    def answer(self, key: tuple[str, str], ok: bool) -> None:
        action = self.inflight.pop(key)
        if action.do == Do.START:
            seen = Seen.STARTED if ok else Seen.START_FAILED
            if ok:
                self.running[key] = action.epoch
        elif action.do == Do.STOP:
            seen = Seen.STOPPED
            self.running.pop(key, None)
        else:
            seen = Seen.MONITOR_OK if ok else Seen.MONITOR_FAILED
        obs = Observation(action.group, key[1], action.epoch, seen)
        self.check(self.c.observe(obs, self.now))

    def exited(self, key: tuple[str, str]) -> None:
        epoch = self.running.pop(key)
        self.check(self.c.observe(Observation(key[0], key[1], epoch, Seen.EXITED), self.now))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_sequences_keep_the_controllers_promises(data: st.DataObject) -> None:
    shell = Shell()
    for _ in range(data.draw(st.integers(10, 80), label="steps")):
        step = data.draw(st.sampled_from(["answer", "exit", "own", "lease", "time"]))
        if step == "answer" and shell.inflight:
            key = data.draw(st.sampled_from(sorted(shell.inflight)))
            shell.answer(key, data.draw(st.booleans()))
        elif step == "exit" and shell.running:
            shell.exited(data.draw(st.sampled_from(sorted(shell.running))))
        elif step == "own":
            group = data.draw(st.sampled_from(sorted(GROUPS)))
            choice = data.draw(st.sampled_from(["drop", "same", "next"]))
            if choice == "drop":
                shell.owned.pop(group, None)
            else:
                if choice == "next":
                    shell.epochs[group] += 1
                state = data.draw(st.sampled_from(STATES))
                shell.owned[group] = Owned(group, shell.epochs[group], state, GROUPS[group])
            shell.check(
                shell.c.owned(sorted(shell.owned.values(), key=lambda o: o.group), shell.now)
            )
        elif step == "lease":
            until = shell.now + data.draw(st.integers(0, 8_000))
            shell.lease = max(shell.lease, until)
            shell.check(shell.c.lease(until, shell.now))
        else:
            wake = shell.c.next_wake_ms()
            assert wake > shell.now  # a wake-up in the past would spin a shell
            jump = data.draw(st.integers(0, 3_000))
            to_wake = data.draw(st.booleans())
            shell.now = min(shell.now + jump, wake) if to_wake else shell.now + jump
            shell.check(shell.c.tick(shell.now))
    # Answer everything and let time pass without a lease: nothing may be left running
    # (the controller stopped it all itself, before the watchdog).
    for _ in range(50):
        if not shell.inflight:
            break
        shell.answer(sorted(shell.inflight)[0], True)
    if shell.now >= shell.lease:
        shell.check(shell.c.tick(shell.now))
        while shell.inflight:
            key = sorted(shell.inflight)[0]
            assert shell.inflight[key].do != Do.START
            shell.answer(key, True)
        assert shell.c.maybe_running() == {}
