"""The `process` resource type with real processes, real TCP and HTTP health checks."""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from raftcluster.config.init import free_ports
from raftcluster.resources.kind import ResourceContext, ResourceFailed, Severity
from raftcluster.resources.process import ProcessKind
from raftcluster.supervisor.children import Supervisor
from statemachine.groups.messages import ResourceSpec
from tests.supervisor.kit import running, running_supervisor

SERVER = str(Path(__file__).with_name("health_server.py"))


def free_port() -> int:
    return free_ports(1)[0]


def command(*argv: str) -> str:
    return shlex.join([sys.executable, *argv])


def context(
    sup: Supervisor, timeout_ms: int = 10_000, epoch: int = 5, **params: str
) -> ResourceContext:
    spec = ResourceSpec(name="r", kind="process", params=tuple(sorted(params.items())))
    env = {
        "RAFTCLUSTER_EPOCH": str(epoch),
        "RAFTCLUSTER_GROUP": "g",
        "RAFTCLUSTER_RESOURCE": "r",
        "RAFTCLUSTER_NODE": "1",
    }
    return ResourceContext(
        node=1, group="g", spec=spec, epoch=epoch, timeout_ms=timeout_ms, env=env, supervisor=sup
    )


@pytest.fixture
async def sup(tmp_path: Path) -> AsyncIterator[Supervisor]:
    async with running_supervisor(tmp_path / "res") as supervisor:
        yield supervisor


async def test_start_monitor_stop(sup: Supervisor) -> None:
    kind = ProcessKind()
    code = (
        "import os, time; print(os.environ['RAFTCLUSTER_EPOCH'], os.environ['MINE'], flush=True);"
        "time.sleep(60)"
    )
    ctx = context(sup, command=command("-c", code), **{"env.MINE": "mine"})
    await kind.start(ctx)
    [child] = sup.children()
    await kind.monitor(ctx)
    with pytest.raises(ResourceFailed, match="not running here under epoch 6"):
        await kind.monitor(context(sup, epoch=6, command=command("-c", code)))
    log = sup.root / "g/r/stdout.log"
    with trio.fail_after(5):
        while log.read_text() != "5 mine\n":
            await trio.sleep(0.02)
    await kind.stop(ctx)
    assert not running(child.pid)
    with pytest.raises(ResourceFailed) as failed:
        await kind.monitor(ctx)
    assert failed.value.severity == Severity.SOFT


async def test_a_command_that_does_not_exist_is_a_hard_failure(sup: Supervisor) -> None:
    kind = ProcessKind()
    with pytest.raises(ResourceFailed, match="command not found: no-such-program-xyz") as failed:
        await kind.start(context(sup, command="no-such-program-xyz --flag"))
    assert failed.value.severity == Severity.HARD


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({}, "'command' is required"),
        ({"command": "   "}, "'command' is required"),
        ({"command": "echo 'unclosed"}, "cannot split"),
        ({"command": "true", "health": "udp:1"}, "expected cmd:"),
        ({"command": "true", "health": "tcp:localhost"}, "tcp:HOST:PORT"),
        ({"command": "true", "health": "http://localhost/x"}, "needs a host and a port"),
        ({"command": "true", "health_status": "ok"}, "not a whole number"),
        ({"command": "true", "start_grace_ms": "-1"}, "not within"),
        ({"command": "true", "comand": "x"}, "unknown parameter 'comand'"),
    ],
)
def test_check_refuses_bad_parameters(params: dict[str, str], complaint: str) -> None:
    with pytest.raises(ResourceFailed, match=complaint) as failed:
        ProcessKind().check(params)
    assert failed.value.severity == Severity.CONFIG


def test_check_accepts_good_parameters() -> None:
    ProcessKind().check(
        {
            "command": "server --port 80",
            "cwd": "/tmp",
            "env.A": "1",
            "health": "http://127.0.0.1:80/healthz?deep=1",
            "health_status": "204",
            "start_grace_ms": "100",
        }
    )


async def test_start_waits_for_a_tcp_health_check(sup: Supervisor) -> None:
    kind = ProcessKind()
    port = free_port()
    ctx = context(
        sup, command=command(SERVER, str(port), "200", "400"), health=f"tcp:127.0.0.1:{port}"
    )
    began = trio.current_time()
    await kind.start(ctx)
    assert trio.current_time() - began >= 0.4  # the server listens after 400 ms
    await kind.monitor(ctx)
    assert (sup.root / "g/r/stdout.log").read_text() == "epoch=5\n"
    await kind.stop(ctx)
    with pytest.raises(ResourceFailed):
        await kind.monitor(ctx)


async def test_http_health_check(sup: Supervisor) -> None:
    kind = ProcessKind()
    port = free_port()
    ctx = context(
        sup,
        command=command(SERVER, str(port), "204"),
        health=f"http://127.0.0.1:{port}/health",
        health_status="204",
    )
    await kind.start(ctx)
    await kind.monitor(ctx)
    await kind.stop(ctx)


async def test_http_health_check_wants_its_status(sup: Supervisor) -> None:
    kind = ProcessKind()
    port = free_port()
    ctx = context(
        sup, command=command(SERVER, str(port), "503"), health=f"http://127.0.0.1:{port}/"
    )
    with trio.move_on_after(1) as scope:
        await kind.start(ctx)  # never healthy: the executor's timeout ends it
    assert scope.cancelled_caught
    with pytest.raises(ResourceFailed, match="answered 503, not 200"):
        await kind.monitor(ctx)
    await kind.stop(ctx)
    assert not sup.alive("g/r")


async def test_cmd_health_check(sup: Supervisor, tmp_path: Path) -> None:
    kind = ProcessKind()
    flag = tmp_path / "healthy"
    probe = command("-c", f"import os, sys; sys.exit(0 if os.path.exists({str(flag)!r}) else 1)")
    ctx = context(sup, command=command("-c", "import time; time.sleep(60)"), health=f"cmd:{probe}")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(kind.start, ctx)
        await trio.sleep(0.5)
        flag.touch()
    await kind.monitor(ctx)
    flag.unlink()
    with pytest.raises(ResourceFailed, match="health command exited 1"):
        await kind.monitor(ctx)
    await kind.stop(ctx)


async def test_a_process_that_dies_in_its_grace_fails_the_start(sup: Supervisor) -> None:
    kind = ProcessKind()
    ctx = context(sup, command=command("-c", "raise SystemExit(4)"), start_grace_ms="2000")
    with pytest.raises(ResourceFailed, match="exited 4 during its start") as failed:
        await kind.start(ctx)
    assert failed.value.severity == Severity.SOFT


async def test_watch_returns_when_the_process_ends(sup: Supervisor) -> None:
    kind = ProcessKind()
    ctx = context(sup, command=command("-c", "import time; time.sleep(0.3); raise SystemExit(2)"))
    await kind.start(ctx)
    with trio.fail_after(5):
        assert await kind.watch(ctx) == "the process exited 2"


async def test_stop_kills_what_the_process_left(sup: Supervisor) -> None:
    kind = ProcessKind()
    code = (
        "import signal, subprocess, sys, time;"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time;"
        " signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']);"
        "time.sleep(60)"
    )
    ctx = context(sup, timeout_ms=300, command=command("-c", code))
    await kind.start(ctx)
    await trio.sleep(0.3)
    await kind.stop(ctx)
    assert not sup.alive("g/r")
