"""`ResourceExecutor`: carries out the resource controller's actions on one node.

`act(action)` runs the action in a task of `serve` and calls `observe` with exactly one
`Observation` for it, carrying the action's group, resource and epoch:

    START    STARTED, or START_FAILED (the start failed or overran its timeout: what it
             began is stopped first, within the resource's stop timeout, then its key's
             processes are killed)
    STOP     STOPPED (a stop that failed or overran its timeout ends with the key's
             processes killed: "killed after the stop timeout")
    MONITOR  MONITOR_OK, or MONITOR_FAILED (failed, or overran its timeout)

`fatal` is set when the kind raised `ResourceFailed` with severity HARD or CONFIG (or
the type is unknown on this node): no restart on this node can cure it. `detail` is the
failure's text, at most MAX_DETAIL_CHARS. An exception a kind raises that is not
`ResourceFailed` is logged ("raftcluster.resources") and becomes a failed, non-fatal
observation: a kind never brings the node down.

After STARTED, if the kind has `watch(ctx) -> str`, a task awaits it and reports EXITED
(under the start's epoch, with what watch returned) when it returns, unless an action on
that resource is under way: a STOP or a new START cancels the watch when it begins.
`on_fenced()` (the node's watchdog killed its sessions) reports EXITED for every started
resource no action is under way on; those in flight are answered as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio

from raftcluster.groups.actions import Action, Do, Observation, Seen
from raftcluster.resources.kind import ResourceContext, ResourceFailed, ResourceKind, Severity
from raftcluster.resources.registry import Kinds
from raftcluster.supervisor.children import Supervisor, SupervisorStopped

log = logging.getLogger("raftcluster.resources")

MAX_DETAIL_CHARS = 512  # what reaches the log of events (ResourceFailed's contract)

_Key = tuple[str, str]  # (group, resource)


@attrs.define(eq=False)
class _Started:
    """A resource this executor started (STARTED reported) and has not stopped."""

    kind: ResourceKind
    ctx: ResourceContext
    seq: int  # start order
    watch: trio.CancelScope | None = None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 3] + "..."


def _failure(error: BaseException) -> ResourceFailed | None:
    """The ResourceFailed in `error` (itself, or the one leaf of an exception group)."""
    if isinstance(error, ResourceFailed):
        return error
    if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        return _failure(error.exceptions[0])
    return None


class ResourceExecutor:
    def __init__(
        self,
        node: int,
        supervisor: Supervisor,
        kinds: Kinds,
        observe: Callable[[Observation], None],
    ) -> None:
        self.node = node
        self.supervisor = supervisor
        self.kinds = kinds
        self._observe = observe
        self._busy: dict[_Key, Do] = {}  # the action under way on each resource
        self._started: dict[_Key, _Started] = {}
        self._seq = 0
        self._nursery: trio.Nursery | None = None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the actions' and watches' tasks; run until cancelled. Cancellation cancels
        every action under way (no observation for them) and every watch: call
        `stop_everything` first on a shutdown."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def act(self, action: Action) -> None:
        """Carry out `action` in a task of `serve` (never blocks); its observation comes
        through `observe`. Raises SupervisorStopped unless `serve` runs."""
        if self._nursery is None:
            raise SupervisorStopped("the resource executor is not serving")
        key = (action.group, action.resource.name)
        self._busy[key] = action.do
        if action.do in (Do.START, Do.STOP):
            started = self._started.get(key)
            if started is not None and started.watch is not None:
                started.watch.cancel()  # a stop or restart is not news
        self._nursery.start_soon(self._run, action)

    def on_fenced(self) -> None:
        """The watchdog killed this node's sessions: report EXITED for every started
        resource no action is under way on."""
        for key, started in list(self._started.items()):
            if key in self._busy:
                continue
            del self._started[key]
            if started.watch is not None:
                started.watch.cancel()
            self._emit(started.ctx, Seen.EXITED, "killed by the watchdog: the lease ended")

    async def stop_everything(self, timeout_ms: int) -> None:
        """Stop every started resource, in reverse start order, each within its stop
        timeout and all within `timeout_ms`; then kill every session of the supervisor.
        No observation is made (the node is going away).

        Cancellation: the stop under way is cancelled and everything is killed (kill_all)
        before Cancelled propagates."""
        try:
            with trio.move_on_after(timeout_ms / 1000):
                for key, started in sorted(self._started.items(), key=lambda kv: -kv[1].seq):
                    if started.watch is not None:
                        started.watch.cancel()
                    self._started.pop(key, None)
                    await self._stop(started.kind, started.ctx, started.ctx.spec.stop_timeout_ms)
        finally:
            self.supervisor.kill_all()

    # -- one action ---------------------------------------------------------------------

    def _context(self, action: Action) -> ResourceContext:
        env = {
            "RAFTCLUSTER_EPOCH": str(action.epoch),
            "RAFTCLUSTER_GROUP": action.group,
            "RAFTCLUSTER_RESOURCE": action.resource.name,
            "RAFTCLUSTER_NODE": str(self.node),
        }
        return ResourceContext(
            node=self.node,
            group=action.group,
            spec=action.resource,
            epoch=action.epoch,
            timeout_ms=action.timeout_ms,
            env=env,
            supervisor=self.supervisor,
        )

    def _emit(
        self, ctx: ResourceContext, seen: Seen, detail: str = "", fatal: bool = False
    ) -> None:
        self._observe(
            Observation(
                group=ctx.group,
                resource=ctx.spec.name,
                epoch=ctx.epoch,
                seen=seen,
                detail=_clip(detail),
                fatal=fatal,
            )
        )

    async def _run(self, action: Action) -> None:
        key = (action.group, action.resource.name)
        ctx = self._context(action)
        try:
            kind = self.kinds.get(action.resource.kind)
            if action.do == Do.START:
                seen, detail, fatal = await self._start(kind, ctx)
            elif action.do == Do.STOP:
                seen, detail, fatal = await self._stop_action(kind, ctx)
            else:
                seen, detail, fatal = await self._monitor(kind, ctx)
        finally:
            if self._busy.get(key) == action.do:
                del self._busy[key]
        if seen == Seen.STARTED and kind is not None:
            self._seq += 1
            started = _Started(kind, ctx, self._seq)
            self._started[key] = started
            watch = getattr(kind, "watch", None)
            if watch is not None and self._nursery is not None:
                started.watch = trio.CancelScope()
                self._nursery.start_soon(self._watch, key, started, watch)
        self._emit(ctx, seen, detail, fatal)

    def _unknown(self, ctx: ResourceContext) -> str:
        return (
            f"unknown resource type {ctx.spec.kind!r} on node {self.node} "
            f"(registered: {', '.join(self.kinds.names()) or 'none'})"
        )

    async def _start(
        self, kind: ResourceKind | None, ctx: ResourceContext
    ) -> tuple[Seen, str, bool]:
        key = (ctx.group, ctx.spec.name)
        self._started.pop(key, None)
        if kind is None:
            return Seen.START_FAILED, self._unknown(ctx), True
        failed: tuple[str, bool] | None = None
        try:
            kind.check(ctx.params)
            with trio.move_on_after(ctx.timeout_ms / 1000) as scope:
                await kind.start(ctx)
            if scope.cancelled_caught:
                failed = (f"start timed out after {ctx.timeout_ms} ms", False)
        except Exception as error:  # noqa: BLE001 - a kind never kills the node: logged, observed
            failed = self._explain("start", ctx, error)
        if failed is None:
            return Seen.STARTED, "", False
        await self._stop(kind, ctx, ctx.spec.stop_timeout_ms)
        return Seen.START_FAILED, failed[0], failed[1]

    async def _stop_action(
        self, kind: ResourceKind | None, ctx: ResourceContext
    ) -> tuple[Seen, str, bool]:
        self._started.pop((ctx.group, ctx.spec.name), None)
        if kind is None:  # nothing of it can run here; kill whatever is filed under it
            await self.supervisor.kill_key_and_wait(ctx.key)
            return Seen.STOPPED, "", False
        return Seen.STOPPED, await self._stop(kind, ctx, ctx.timeout_ms), False

    async def _stop(self, kind: ResourceKind, ctx: ResourceContext, timeout_ms: int) -> str:
        """Stop within `timeout_ms` (a STOP's own, or the spec's stop timeout after a
        failed start); kill the key's leftovers. Returns the detail for STOPPED."""
        ctx = attrs.evolve(ctx, timeout_ms=timeout_ms)
        detail = ""
        try:
            with trio.move_on_after(ctx.timeout_ms / 1000) as scope:
                await kind.stop(ctx)
            if scope.cancelled_caught:
                detail = "killed after the stop timeout"
        except Exception as error:  # noqa: BLE001 - a kind never kills the node: logged, observed
            said, _ = self._explain("stop", ctx, error)
            detail = f"killed after the stop failed: {said}"
        killed = await self.supervisor.kill_key_and_wait(ctx.key)
        if killed and not detail:
            log.info("%s: killed %d processes left after its stop", ctx.key, killed)
        return detail

    async def _monitor(
        self, kind: ResourceKind | None, ctx: ResourceContext
    ) -> tuple[Seen, str, bool]:
        if kind is None:
            return Seen.MONITOR_FAILED, self._unknown(ctx), True
        try:
            with trio.move_on_after(ctx.timeout_ms / 1000) as scope:
                await kind.monitor(ctx)
        except Exception as error:  # noqa: BLE001 - a kind never kills the node: logged, observed
            detail, fatal = self._explain("monitor", ctx, error)
            return Seen.MONITOR_FAILED, detail, fatal
        if scope.cancelled_caught:
            return Seen.MONITOR_FAILED, f"monitor timed out after {ctx.timeout_ms} ms", False
        return Seen.MONITOR_OK, "", False

    def _explain(self, what: str, ctx: ResourceContext, error: Exception) -> tuple[str, bool]:
        """An exception from a kind: (detail, fatal)."""
        failure = _failure(error)
        if failure is not None:
            return failure.detail, failure.severity in (Severity.HARD, Severity.CONFIG)
        log.error("resource %s (type %s): %s raised", ctx.key, ctx.spec.kind, what, exc_info=error)
        return f"{what} raised {type(error).__name__}: {error}", False

    async def _watch(self, key: _Key, started: _Started, watch: Callable[..., Any]) -> None:
        assert started.watch is not None
        what: str | None = None
        with started.watch:
            try:
                what = str(await watch(started.ctx))
            except Exception as error:  # noqa: BLE001 - a kind never kills the node: logged, observed
                what, _ = self._explain("watch", started.ctx, error)
        if what is None or self._started.get(key) is not started:
            return  # cancelled, or forgotten (stopped, fenced): not news
        if self._busy.get(key) in (Do.START, Do.STOP):
            return  # a stop or a restart is under way: not news
        del self._started[key]
        self._emit(started.ctx, Seen.EXITED, what)
