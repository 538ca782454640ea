"""`ResourceController`: the sans-IO core that runs, on one node, the groups it owns.

Inputs (each returns an `Output` at once; none blocks, reads a clock or touches a file;
`now_ms` is always the node's own clock):
    owned(groups, now_ms)      the full set of groups this node owns per its applied
                               state (`Owned`: group, epoch, state, resources), given
                               every time it changes
    observe(obs, now_ms)       what the shell saw of a resource: the answer to an action
                               (exactly one per action, carrying the action's epoch), or
                               a surprise (EXITED)
    lease(until_ms, now_ms)    the node's lease now runs to `until_ms` (`LeaseKeeper`)
    tick(now_ms)               time passes; call it at `next_wake_ms()`

Output: `actions` to carry out (START/STOP/MONITOR one resource under an epoch, within
its timeout), `reports` to propose (`GroupReport`, through the log to the leader), and
`lease` when the watchdog must be told a new end.

What it does, per group:
- owned STARTING or ONLINE under epoch e, with a valid lease: start the resources in
  order, one at a time (each START after the previous STARTED); then report STARTED
  under e; monitor each started resource every `monitor_interval_ms`;
- STOPPING, no longer owned, owned under a new epoch, given up, or the lease about to
  end: stop the resources in reverse order, one at a time; report STOPPED (still owned
  STOPPING under that epoch) or FAILED (given up) once all are stopped;
- a failure (START_FAILED, MONITOR_FAILED, EXITED) of a wanted resource: restart it in
  place (MONITOR_FAILED: stop it first, it may hang) and report RESTARTED, while its
  `max_restarts` within `restart_window_ms` allow; else (or at once for a `fatal`
  observation: a failure no restart here can cure) give the group up under e;
- self-fencing: a START needs now < lease_until - lead, where lead is the time the
  group's stops take (the sum of their stop timeouts) capped by
  `timing.self_fence_lead_cap_ms`; once now passes that point everything is stopped,
  so the watchdog (which kills all at `until_ms`) rarely has to. A renewed lease starts
  the groups still owned again;
- STARTED, STOPPED and FAILED are re-emitted every `report_retry_ms` until `owned()`
  shows the state they report or the group moved on (RESTARTED is a record: once).

The contract (asserted): at most one action in flight per resource; a START only under
an epoch this node owns STARTING or ONLINE, with a valid lease, after every earlier
resource of the group started; a report only under the epoch the group is owned under.
An observation for an older epoch updates what is believed to run (so it is stopped)
but never reports under the new epoch. An observation that answers no action in flight
is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from raftcluster.groups.actions import Action, Do, Lease, Observation, Output, Owned, Seen
from raftcluster.groups.timing import GroupTiming
from statemachine.groups.messages import GroupReport, GroupState, ReportKind, ResourceSpec

_RUN_STATES = (GroupState.STARTING, GroupState.ONLINE)
NEVER = 2**63 - 1


@attrs.define
class _Resource:
    spec: ResourceSpec
    running: bool = False  # started (or maybe still running: a stop not yet confirmed)
    epoch: int = 0  # the epoch it was started under (while running)
    busy: Do | None = None  # the action in flight
    busy_epoch: int = 0
    broken: bool = False  # failed a monitor while running: stop it, then start it again
    monitor_due_ms: int = NEVER
    failures: list[int] = attrs.Factory(list)  # restart times within the window


@attrs.define
class _Group:
    name: str
    resources: list[_Resource]
    owned: Owned | None = None
    given_up: int = 0  # the epoch under which the group was given up (0: none)
    failure: tuple[str, str] = ("", "")  # the resource and detail that gave it up
    report: GroupReport | None = None  # awaiting `owned()` to show it
    report_due_ms: int = NEVER

    def busy(self) -> bool:
        return any(r.busy is not None for r in self.resources)

    def idle(self) -> bool:
        """Nothing running, nothing in flight."""
        return not any(r.running or r.busy is not None for r in self.resources)


@attrs.frozen
class GroupView:
    """What the controller believes of one group (for checkers and `status`)."""

    group: str
    epoch: int  # owned under (0: not owned any more, still stopping)
    state: GroupState | None  # as owned (None: not owned)
    running: tuple[str, ...]  # resources started and not known stopped, in order
    in_flight: tuple[tuple[str, Do], ...]
    given_up: bool


class ResourceController:
    def __init__(self, node: int, timing: GroupTiming, now_ms: int) -> None:
        self.node = node
        self.timing = timing
        self.lease_until_ms = 0  # no lease: nothing starts
        self._now_ms = now_ms
        self._groups: dict[str, _Group] = {}

    # -- inputs -----------------------------------------------------------------------

    def owned(self, groups: Sequence[Owned], now_ms: int) -> Output:
        self._advance(now_ms)
        wanted = {g.group: g for g in groups}
        assert len(wanted) == len(groups), "a group owned twice"
        for owned in groups:
            assert owned.state in (*_RUN_STATES, GroupState.STOPPING), owned
            group = self._groups.get(owned.group)
            if group is None:
                group = _Group(owned.group, [_Resource(spec) for spec in owned.resources])
                self._groups[owned.group] = group
            if group.owned is None or group.owned.epoch != owned.epoch:
                for resource in group.resources:
                    resource.failures.clear()  # a new grant starts with a clean record
            group.owned = owned
        for name, group in self._groups.items():
            if name not in wanted:
                group.owned = None
        return self._step(now_ms)

    def observe(self, obs: Observation, now_ms: int) -> Output:
        self._advance(now_ms)
        group = self._groups.get(obs.group)
        resource = None if group is None else _find(group, obs.resource)
        if group is None or resource is None:
            return self._step(now_ms)  # nothing of ours: ignore
        reports: list[GroupReport] = []
        if obs.seen == Seen.EXITED:
            if resource.running and resource.epoch == obs.epoch:
                stopping = resource.busy == Do.STOP or resource.broken  # not news
                resource.running = resource.broken = False
                resource.monitor_due_ms = NEVER
                if not stopping:
                    self._failed(group, resource, obs, now_ms, reports)
            return self._step(now_ms, reports)
        expected = {
            Seen.STARTED: Do.START,
            Seen.START_FAILED: Do.START,
            Seen.STOPPED: Do.STOP,
            Seen.MONITOR_OK: Do.MONITOR,
            Seen.MONITOR_FAILED: Do.MONITOR,
        }[obs.seen]
        if resource.busy != expected or resource.busy_epoch != obs.epoch:
            return self._step(now_ms)  # answers nothing in flight: ignore
        resource.busy = None
        if obs.seen == Seen.STARTED:
            resource.running, resource.epoch = True, obs.epoch
            resource.monitor_due_ms = now_ms + resource.spec.monitor_interval_ms
        elif obs.seen == Seen.START_FAILED:  # the shell stopped whatever it began
            resource.running = False
            self._failed(group, resource, obs, now_ms, reports)
        elif obs.seen == Seen.STOPPED:
            resource.running = resource.broken = False
            resource.monitor_due_ms = NEVER
        elif obs.seen == Seen.MONITOR_OK:
            resource.monitor_due_ms = now_ms + resource.spec.monitor_interval_ms
        elif resource.running:  # MONITOR_FAILED: it may hang, so stop it before a restart
            resource.broken = True
            resource.monitor_due_ms = NEVER
            self._failed(group, resource, obs, now_ms, reports)
        return self._step(now_ms, reports)

    def lease(self, until_ms: int, now_ms: int) -> Output:
        self._advance(now_ms)
        changed = until_ms > self.lease_until_ms
        if changed:
            self.lease_until_ms = until_ms
        out = self._step(now_ms)
        return attrs.evolve(out, lease=Lease(until_ms)) if changed else out

    def tick(self, now_ms: int) -> Output:
        self._advance(now_ms)
        return self._step(now_ms)

    def next_wake_ms(self) -> int:
        """The next time `tick` has something to do (after the last input's time: what was
        due by then was done, or waits for an observation). NEVER when nothing is."""
        times = []
        for group in self._groups.values():
            times.append(group.report_due_ms)
            if any(r.running or r.busy == Do.START for r in group.resources):
                times.append(self._fence_at(group))
            times += [r.monitor_due_ms for r in group.resources if r.running and r.busy is None]
        return min((t for t in times if t > self._now_ms), default=NEVER)

    # -- inspection -------------------------------------------------------------------

    def view(self) -> tuple[GroupView, ...]:
        out = []
        for name in sorted(self._groups):
            group = self._groups[name]
            out.append(
                GroupView(
                    group=name,
                    epoch=group.owned.epoch if group.owned else 0,
                    state=group.owned.state if group.owned else None,
                    running=tuple(r.spec.name for r in group.resources if r.running),
                    in_flight=tuple(
                        (r.spec.name, r.busy) for r in group.resources if r.busy is not None
                    ),
                    given_up=bool(group.owned and group.given_up == group.owned.epoch),
                )
            )
        return tuple(out)

    def maybe_running(self) -> Mapping[str, tuple[str, ...]]:
        """Per group, the resources that may be running (started, or a START in flight)."""
        out = {}
        for name, group in sorted(self._groups.items()):
            names = tuple(r.spec.name for r in group.resources if r.running or r.busy == Do.START)
            if names:
                out[name] = names
        return out

    def leased(self, group: str, now_ms: int) -> bool:
        """Whether `group` may START now (its stops fit in what is left of the lease)."""
        known = self._groups.get(group)
        return known is not None and now_ms < self._fence_at(known)

    # -- the decisions ----------------------------------------------------------------

    def _advance(self, now_ms: int) -> None:
        if now_ms < self._now_ms:  # the clock stepped back: the lease proves nothing now
            self.lease_until_ms = min(self.lease_until_ms, now_ms)
        self._now_ms = now_ms

    def _fence_at(self, group: _Group) -> int:
        lead = sum(r.spec.stop_timeout_ms for r in group.resources)
        return self.lease_until_ms - min(lead, self.timing.self_fence_lead_cap_ms)

    def _failed(
        self,
        group: _Group,
        resource: _Resource,
        obs: Observation,
        now_ms: int,
        reports: list[GroupReport],
    ) -> None:
        """Restart `resource` in place if its policy allows, else give the group up."""
        owned = group.owned
        if owned is None or owned.state not in _RUN_STATES or owned.epoch != obs.epoch:
            return  # not wanted under this epoch any more: it is being stopped anyway
        if group.given_up == owned.epoch or now_ms >= self._fence_at(group):
            return  # already giving up, or fencing: no restart to count
        spec = resource.spec
        resource.failures = [t for t in resource.failures if now_ms - t < spec.restart_window_ms]
        detail = f"{obs.seen.name.lower()}: {obs.detail}" if obs.detail else obs.seen.name.lower()
        if len(resource.failures) < spec.max_restarts and not obs.fatal:
            resource.failures.append(now_ms)
            reports.append(self._report(group, ReportKind.RESTARTED, now_ms, spec.name, detail))
            return
        group.given_up = owned.epoch
        group.failure = (spec.name, detail[:512])

    def _step(self, now_ms: int, reports: list[GroupReport] | None = None) -> Output:
        actions: list[Action] = []
        reports = list(reports or ())
        for name in sorted(self._groups):
            group = self._groups[name]
            self._confirm(group)
            actions += self._decide(group, now_ms, reports)
            if group.report is not None and now_ms >= group.report_due_ms:
                reports.append(attrs.evolve(group.report, at_ms=now_ms))
                group.report_due_ms = now_ms + self.timing.report_retry_ms
        for name in [n for n, g in self._groups.items() if g.owned is None and g.idle()]:
            del self._groups[name]
        for report in reports:
            owned = self._groups[report.group].owned
            assert owned is not None and owned.epoch == report.epoch, (report, owned)
        return Output(actions=tuple(actions), reports=tuple(reports))

    def _confirm(self, group: _Group) -> None:
        """Drop the pending report once `owned()` shows it (or the group moved on)."""
        report, owned = group.report, group.owned
        if report is None:
            return
        if owned is None or owned.epoch != report.epoch:
            moved_on = True
        elif report.kind == ReportKind.STARTED:
            moved_on = owned.state != GroupState.STARTING
        elif report.kind == ReportKind.STOPPED:
            moved_on = owned.state != GroupState.STOPPING
        else:  # FAILED: the group is no longer wanted running here
            moved_on = owned.state not in _RUN_STATES
        if moved_on:
            group.report, group.report_due_ms = None, NEVER

    def _decide(self, group: _Group, now_ms: int, reports: list[GroupReport]) -> list[Action]:
        owned = group.owned
        if owned is not None and [r.spec for r in group.resources] != list(owned.resources):
            if group.idle():  # a new spec takes effect once the old one's resources stopped
                group.resources = [_Resource(spec) for spec in owned.resources]
            else:
                owned = None  # stop what runs under the old spec first
        run = (
            owned is not None
            and owned.state in _RUN_STATES
            and group.given_up != owned.epoch
            and now_ms < self._fence_at(group)
        )
        stale = (
            owned is None
            or any(r.epoch != owned.epoch for r in group.resources if r.running)
            or any(r.busy_epoch != owned.epoch for r in group.resources if r.busy is not None)
        )
        if not run or stale:
            if group.report is not None and group.report.kind == ReportKind.STARTED:
                group.report, group.report_due_ms = None, NEVER  # no longer true
            return self._stop_next(group, now_ms, reports)
        assert owned is not None
        return self._start_next(group, owned, now_ms, reports)

    def _stop_next(self, group: _Group, now_ms: int, reports: list[GroupReport]) -> list[Action]:
        """Stop the last resource that may run; once none runs, report what is due."""
        for resource in reversed(group.resources):
            if resource.busy is not None:
                return []  # wait for its answer (a START becomes something to stop)
            if resource.running:
                return [self._act(group, resource, Do.STOP, resource.epoch, now_ms)]
        owned = group.owned
        if owned is None or group.report is not None:
            return []
        if owned.state == GroupState.STOPPING:
            reports.append(self._pending(group, ReportKind.STOPPED, now_ms))
        elif owned.state in _RUN_STATES and group.given_up == owned.epoch:
            reports.append(self._pending(group, ReportKind.FAILED, now_ms, *group.failure))
        return []

    def _start_next(
        self, group: _Group, owned: Owned, now_ms: int, reports: list[GroupReport]
    ) -> list[Action]:
        actions: list[Action] = []
        starting = False
        for resource in group.resources:
            if resource.broken and resource.running and resource.busy is None:
                actions.append(self._act(group, resource, Do.STOP, resource.epoch, now_ms))
            if not resource.running or resource.broken:
                starting = True
                if resource.busy is None and not resource.broken and not actions:
                    assert now_ms < self._fence_at(group) and owned.state in _RUN_STATES
                    assert all(r.running and not r.broken for r in _before(group, resource))
                    actions.append(self._act(group, resource, Do.START, owned.epoch, now_ms))
                break
        for resource in group.resources:
            idle = resource.running and resource.busy is None and not resource.broken
            if idle and now_ms >= resource.monitor_due_ms:
                actions.append(self._act(group, resource, Do.MONITOR, resource.epoch, now_ms))
        if starting and group.report is not None and group.report.kind == ReportKind.STARTED:
            group.report, group.report_due_ms = None, NEVER  # not true again until restarted
        if not starting and owned.state == GroupState.STARTING and group.report is None:
            reports.append(self._pending(group, ReportKind.STARTED, now_ms))
        return actions

    def _act(self, group: _Group, resource: _Resource, do: Do, epoch: int, now_ms: int) -> Action:
        assert resource.busy is None, ("one action in flight per resource", resource)
        resource.busy, resource.busy_epoch = do, epoch
        spec = resource.spec
        timeout = {
            Do.START: spec.start_timeout_ms,
            Do.STOP: spec.stop_timeout_ms,
            Do.MONITOR: spec.monitor_timeout_ms,
        }[do]
        if do == Do.MONITOR:
            resource.monitor_due_ms = NEVER
        return Action(do, group.name, spec, epoch, timeout)

    def _pending(
        self, group: _Group, kind: ReportKind, now_ms: int, resource: str = "", detail: str = ""
    ) -> GroupReport:
        report = self._report(group, kind, now_ms, resource, detail)
        group.report = report
        group.report_due_ms = now_ms + self.timing.report_retry_ms
        return report

    def _report(
        self, group: _Group, kind: ReportKind, now_ms: int, resource: str = "", detail: str = ""
    ) -> GroupReport:
        owned = group.owned
        assert owned is not None, ("a report for a group not owned", group.name, kind)
        return GroupReport(group.name, self.node, owned.epoch, kind, resource, detail[:512], now_ms)


def _find(group: _Group, name: str) -> _Resource | None:
    for resource in group.resources:
        if resource.spec.name == name:
            return resource
    return None


def _before(group: _Group, resource: _Resource) -> list[_Resource]:
    return group.resources[: group.resources.index(resource)]
