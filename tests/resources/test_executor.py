"""The resource executor: one observation per action, timeouts, exits, fencing."""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import attrs
import pytest
import trio

from raftcluster.groups.actions import Action, Do, Observation, Seen
from raftcluster.resources.executor import MAX_DETAIL_CHARS, ResourceExecutor
from raftcluster.resources.kind import ResourceContext, ResourceFailed, Severity
from raftcluster.resources.process import ProcessKind
from raftcluster.resources.registry import Kinds
from raftcluster.supervisor.children import Supervisor
from statemachine.groups.messages import ResourceSpec
from tests.supervisor.kit import running


class Scripted:
    """A resource type whose every call does what its parameters say: "ok", "hang",
    "boom" (a KeyError), "soft", "hard" or "long" (a ResourceFailed); `start` also spawns
    a sleeper under the resource's key, so there is something to stop or leave behind."""

    name = "scripted"

    def check(self, params: Mapping[str, str]) -> None:
        if params.get("check") == "bad":
            raise ResourceFailed("bad parameters", Severity.CONFIG)

    async def _do(self, ctx: ResourceContext, call: str) -> None:
        what = ctx.params.get(call, "ok")
        if what == "hang":
            await trio.sleep_forever()
        if what == "boom":
            raise KeyError(f"{call} exploded")
        if what in ("soft", "hard"):
            raise ResourceFailed(f"{call} failed", Severity[what.upper()])
        if what == "long":
            raise ResourceFailed("x" * 2000)

    async def start(self, ctx: ResourceContext) -> None:
        await ctx.spawn((sys.executable, "-c", "import time; time.sleep(60)"))
        await self._do(ctx, "start")

    async def stop(self, ctx: ResourceContext) -> None:
        await self._do(ctx, "stop")
        ctx.supervisor.kill_key(ctx.key)

    async def monitor(self, ctx: ResourceContext) -> None:
        await self._do(ctx, "monitor")


def spec(name: str, kind: str = "scripted", **params: str) -> ResourceSpec:
    return ResourceSpec(
        name=name, kind=kind, params=tuple(sorted(params.items())), stop_timeout_ms=500
    )


def act(do: Do, resource: ResourceSpec, epoch: int = 3, timeout_ms: int = 5_000) -> Action:
    return Action(do=do, group="g", resource=resource, epoch=epoch, timeout_ms=timeout_ms)


@attrs.define
class Rig:
    sup: Supervisor
    executor: ResourceExecutor
    seen: list[Observation]

    async def next(self, count: int = 1, timeout_s: float = 10) -> list[Observation]:
        """Wait until `count` more observations arrived; return them."""
        start = len(self.seen)
        with trio.fail_after(timeout_s):
            while len(self.seen) < start + count:
                await trio.sleep(0.01)
        return self.seen[start : start + count]

    async def do(self, action: Action, timeout_s: float = 10) -> Observation:
        self.executor.act(action)
        [obs] = await self.next(1, timeout_s)
        return obs


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sup = Supervisor(tmp_path / "res")
    seen: list[Observation] = []
    executor = ResourceExecutor(7, sup, Kinds([ProcessKind(), Scripted()]), seen.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.serve)
        await nursery.start(executor.serve)
        yield Rig(sup, executor, seen)
        nursery.cancel_scope.cancel()


def python(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


async def test_one_observation_per_action_and_no_exit_after_a_stop(rig: Rig) -> None:
    sleeper = spec("r", "process", command=python("import time; time.sleep(60)"))
    started = await rig.do(act(Do.START, sleeper))
    assert started == Observation("g", "r", 3, Seen.STARTED)
    assert (await rig.do(act(Do.MONITOR, sleeper))).seen == Seen.MONITOR_OK
    [child] = rig.sup.children()
    assert (await rig.do(act(Do.STOP, sleeper))) == Observation("g", "r", 3, Seen.STOPPED)
    assert not running(child.pid)
    await trio.sleep(0.3)
    assert len(rig.seen) == 3  # no EXITED for the requested stop


async def test_the_epoch_reaches_the_process(rig: Rig, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    names = "'RAFTCLUSTER_EPOCH', 'RAFTCLUSTER_GROUP', 'RAFTCLUSTER_RESOURCE', 'RAFTCLUSTER_NODE'"
    code = (
        f"import os; open({str(out)!r}, 'w').write(' '.join(os.environ[n] for n in ({names})));"
        "import time; time.sleep(60)"
    )
    resource = spec("r", "process", command=python(code))
    assert (await rig.do(act(Do.START, resource, epoch=42))).seen == Seen.STARTED
    with trio.fail_after(5):
        while not out.exists() or not out.read_text():
            await trio.sleep(0.02)
    assert out.read_text() == "42 g r 7"
    await rig.do(act(Do.STOP, resource, epoch=42))


async def test_a_start_past_its_timeout_fails_and_leaves_nothing(rig: Rig) -> None:
    hangs = spec("r", start="hang")
    obs = await rig.do(act(Do.START, hangs, timeout_ms=300))
    assert obs == Observation("g", "r", 3, Seen.START_FAILED, "start timed out after 300 ms")
    assert not rig.sup.alive("g/r")
    # a stop that hangs too: the key is killed all the same
    both = spec("r2", start="hang", stop="hang")
    obs = await rig.do(act(Do.START, both, timeout_ms=300))
    assert obs.seen == Seen.START_FAILED and not obs.fatal
    assert not rig.sup.alive("g/r2")


async def test_a_process_start_that_never_gets_healthy_times_out(rig: Rig) -> None:
    resource = spec(
        "r",
        "process",
        command=python("import time; time.sleep(60)"),
        health="tcp:127.0.0.1:1",
    )
    obs = await rig.do(act(Do.START, resource, timeout_ms=500))
    assert obs.seen == Seen.START_FAILED
    assert obs.detail == "start timed out after 500 ms"
    assert not rig.sup.alive("g/r")


async def test_exited_when_the_process_dies_on_its_own(rig: Rig) -> None:
    resource = spec("r", "process", command=python("import time; time.sleep(0.3); exit(3)"))
    assert (await rig.do(act(Do.START, resource, epoch=9))).seen == Seen.STARTED
    [exited] = await rig.next()
    assert exited == Observation("g", "r", 9, Seen.EXITED, "the process exited 3")


async def test_a_failed_start_is_stopped(rig: Rig) -> None:
    obs = await rig.do(act(Do.START, spec("r", start="soft")))
    assert obs == Observation("g", "r", 3, Seen.START_FAILED, "start failed", fatal=False)
    assert not rig.sup.alive("g/r")
    obs = await rig.do(act(Do.START, spec("r", start="hard")))
    assert obs == Observation("g", "r", 3, Seen.START_FAILED, "start failed", fatal=True)
    obs = await rig.do(act(Do.START, spec("r", check="bad")))
    assert obs == Observation("g", "r", 3, Seen.START_FAILED, "bad parameters", fatal=True)
    obs = await rig.do(act(Do.START, spec("r", start="long")))
    assert len(obs.detail) == MAX_DETAIL_CHARS


async def test_an_unknown_type_is_fatal(rig: Rig) -> None:
    obs = await rig.do(act(Do.START, spec("r", "nosuch")))
    assert obs.seen == Seen.START_FAILED and obs.fatal
    assert obs.detail == (
        "unknown resource type 'nosuch' on node 7 (registered: process, scripted)"
    )
    obs = await rig.do(act(Do.MONITOR, spec("r", "nosuch")))
    assert obs.seen == Seen.MONITOR_FAILED and obs.fatal
    assert (await rig.do(act(Do.STOP, spec("r", "nosuch")))).seen == Seen.STOPPED


async def test_a_kind_that_raises_anything_does_not_kill_the_node(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    obs = await rig.do(act(Do.START, spec("r", start="boom")))
    assert obs.seen == Seen.START_FAILED and not obs.fatal
    assert obs.detail == "start raised KeyError: 'start exploded'"
    assert not rig.sup.alive("g/r")
    obs = await rig.do(act(Do.MONITOR, spec("r", monitor="boom")))
    assert obs.seen == Seen.MONITOR_FAILED and not obs.fatal
    obs = await rig.do(act(Do.STOP, spec("r", stop="boom")))
    assert obs.seen == Seen.STOPPED
    assert obs.detail == "killed after the stop failed: stop raised KeyError: 'stop exploded'"
    assert any(r.name == "raftcluster.resources" and r.exc_info for r in caplog.records)
    # and it still works
    assert (await rig.do(act(Do.START, spec("r")))).seen == Seen.STARTED


async def test_stop_and_monitor_timeouts(rig: Rig) -> None:
    resource = spec("r", stop="hang", monitor="hang")
    assert (await rig.do(act(Do.START, resource))).seen == Seen.STARTED
    assert rig.sup.alive("g/r")
    obs = await rig.do(act(Do.MONITOR, resource, timeout_ms=200))
    assert obs == Observation("g", "r", 3, Seen.MONITOR_FAILED, "monitor timed out after 200 ms")
    obs = await rig.do(act(Do.STOP, resource, timeout_ms=200))
    assert obs == Observation("g", "r", 3, Seen.STOPPED, "killed after the stop timeout")
    assert not rig.sup.alive("g/r")


async def test_fenced_resources_exit_once(rig: Rig) -> None:
    resource = spec("r", "process", command=python("import time; time.sleep(60)"))
    other = spec("o", "process", command=python("import time; time.sleep(60)"))
    assert (await rig.do(act(Do.START, resource))).seen == Seen.STARTED
    assert (await rig.do(act(Do.START, other))).seen == Seen.STARTED
    rig.sup.kill_all()  # as the watchdog does
    rig.executor.on_fenced()
    exited = rig.seen[2:]  # at once
    assert {(o.resource, o.seen) for o in exited} == {("r", Seen.EXITED), ("o", Seen.EXITED)}
    await trio.sleep(0.3)
    assert len(rig.seen) == 4  # the watches said nothing more


async def test_stop_everything_stops_in_reverse_order(rig: Rig, tmp_path: Path) -> None:
    order = tmp_path / "order.txt"

    def resource(name: str) -> ResourceSpec:
        code = (
            "import signal, sys, time\n"
            "def bye(*_):\n"
            f"    open({str(order)!r}, 'a').write({name!r}); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "time.sleep(60)"
        )
        return spec(name, "process", command=python(code))

    for name in ("a", "b", "c"):
        assert (await rig.do(act(Do.START, resource(name)))).seen == Seen.STARTED
    await trio.sleep(0.3)  # the handlers are set
    await rig.executor.stop_everything(5_000)
    assert order.read_text() == "cba"
    assert not rig.sup.alive("g")
    await trio.sleep(0.2)
    assert len(rig.seen) == 3
