"""The watchdog process, through its protocol and through the node's `Watchdog`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from raftcluster.supervisor.children import ExitStatus, Supervisor
from raftcluster.supervisor.watchdog import Watchdog, WatchdogFailed, command
from tests.supervisor.kit import PY, SLEEP, py, running, running_supervisor, wait_for

DAEMON_AND_SLEEP = (
    "import os, subprocess, sys, time;"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    "print(p.pid, flush=True); time.sleep(60)"
)


@pytest.fixture
async def sup(tmp_path: Path) -> AsyncIterator[Supervisor]:
    async with running_supervisor(tmp_path / "res") as supervisor:
        yield supervisor


class RawDog:
    """The watchdog process driven by hand: lines in, lines out."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._pending = b""

    @classmethod
    async def start(cls) -> RawDog:
        process = await trio.lowlevel.open_process(
            command(PY),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        dog = cls(process)
        assert (await dog.read())["ready"] == process.pid
        return dog

    async def send(self, raw: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(raw)

    async def say(self, message: dict[str, object]) -> None:
        await self.send(json.dumps(message).encode() + b"\n")

    async def read(self, timeout_s: float = 10.0) -> dict[str, object]:
        assert self.process.stdout is not None
        with trio.fail_after(timeout_s):
            while b"\n" not in self._pending:
                chunk = await self.process.stdout.receive_some(4096)
                assert chunk, "the watchdog closed its stdout"
                self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        result = json.loads(line)
        assert isinstance(result, dict)
        return result

    async def close(self) -> int:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with trio.fail_after(5):
            return await self.process.wait()

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        data = b""
        with trio.move_on_after(2):
            while chunk := await self.process.stderr.receive_some(4096):
                data += chunk
        return data.decode()


async def test_the_lease_end_kills_tracked_sessions(sup: Supervisor) -> None:
    killed: list[int] = []
    dog = Watchdog(on_killed=killed.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(dog.serve)
        dog.arm(until_ms=10_600, now_ms=10_000)  # 600 ms from now
        started = time.monotonic()
        child = await sup.spawn("g/r", py(DAEMON_AND_SLEEP), env={})
        dog.track(child.pid)
        spare = await sup.spawn("g/spare", py(SLEEP), env={})  # never tracked
        log = sup.root / "g/r/stdout.log"
        await wait_for(lambda: log.exists() and log.read_text().endswith("\n"))
        daemon = int(log.read_text())
        with trio.fail_after(5):
            status = await child.wait()
        elapsed_s = time.monotonic() - started
        assert status == ExitStatus(code=None, signal=signal.SIGKILL)
        assert 0.55 <= elapsed_s < 2.0
        await wait_for(lambda: not running(daemon))
        await wait_for(lambda: killed == [child.pid])
        assert running(spare.pid)
        nursery.cancel_scope.cancel()


async def test_a_session_tracked_without_a_lease_is_killed_at_once(sup: Supervisor) -> None:
    dog = await RawDog.start()
    child = await sup.spawn("g/r", py(SLEEP), env={})
    await dog.say({"track": child.pid})
    killed = await dog.read()
    assert killed["killed"] == child.pid and killed["processes"] == 1
    assert (await child.wait()).signal == signal.SIGKILL
    # and an expired lease is no lease
    await dog.say({"lease_until": time.monotonic() - 1})
    second = await sup.spawn("g/r", py(SLEEP), env={})
    await dog.say({"track": second.pid})
    assert (await dog.read())["killed"] == second.pid
    assert await dog.close() == 0


async def test_fence_kills_tracked_sessions_only(sup: Supervisor) -> None:
    dog = await RawDog.start()
    await dog.say({"lease_until": time.monotonic() + 600})
    tracked = await sup.spawn("g/a", py(SLEEP), env={})
    untracked = await sup.spawn("g/b", py(SLEEP), env={})
    await dog.say({"track": tracked.pid})
    await dog.say({"track": untracked.pid})
    await dog.say({"untrack": untracked.pid})
    await dog.say({"fence": True})
    assert (await dog.read())["killed"] == tracked.pid
    assert (await tracked.wait()).signal == signal.SIGKILL
    assert running(untracked.pid)
    assert await dog.close() == 0
    assert running(untracked.pid)  # untracked: not the watchdog's business on EOF either


async def test_garbage_is_ignored_and_the_watchdog_keeps_working(sup: Supervisor) -> None:
    dog = await RawDog.start()
    await dog.send(b"not json\n")
    await dog.send(b"[1, 2]\n")
    await dog.send(b'{"track": "abc"}\n{"track": true}\n{"lease_until": true}\n')
    await dog.send(b'{"fence": true, "track": 1}\n{"what": 1}\n\n')
    await dog.send(b'{"track": ' + b"9" * 1000 + b"}\n")  # over the line limit
    await dog.send(b"x" * 5000)  # an endless line, then one that is fine
    await dog.send(b"\n")
    await dog.say({"lease_until": time.monotonic() + 0.5})
    child = await sup.spawn("g/r", py(SLEEP), env={})
    await dog.say({"track": child.pid})
    killed = await dog.read()
    assert killed["killed"] == child.pid
    assert (await child.wait()).signal == signal.SIGKILL
    assert await dog.close() == 0
    complaints = await dog.stderr()
    assert complaints.count("ignored") >= 8, complaints


@pytest.mark.parametrize("node_fate", ["killed", "stopped"])
async def test_a_dead_or_hung_node_cannot_keep_its_resources(
    sup: Supervisor, node_fate: str
) -> None:
    victim = await sup.spawn("g/r", py(DAEMON_AND_SLEEP), env={})
    log = sup.root / "g/r/stdout.log"
    await wait_for(lambda: log.exists() and log.read_text().endswith("\n"))
    daemon = int(log.read_text())
    # A "node": starts the watchdog (its stdout goes to ours), gives it a lease (long if
    # it is to be killed, 3 s if it is to hang) and the victim's session, then sleeps.
    lease_s = 600 if node_fate == "killed" else 3
    node_code = (
        "import json, subprocess, sys, time;"
        f"w = subprocess.Popen({command()!r}, stdin=subprocess.PIPE,"
        " start_new_session=True);"
        f"w.stdin.write((json.dumps({{'lease_until': time.monotonic() + {lease_s}}}) + '\\n')"
        ".encode());"
        f"w.stdin.write(b'{{\"track\": {victim.pid}}}\\n'); w.stdin.flush();"
        "time.sleep(60)"
    )
    node = await trio.lowlevel.open_process(py(node_code), stdout=subprocess.PIPE)
    dog = RawDog(node)
    watchdog_pid = (await dog.read())["ready"]
    assert isinstance(watchdog_pid, int)
    await trio.sleep(0.3)
    assert running(victim.pid)  # the lease holds while the node lives
    os.kill(node.pid, signal.SIGKILL if node_fate == "killed" else signal.SIGSTOP)
    killed = await dog.read()
    assert killed["killed"] == victim.pid and killed["processes"] == 2
    assert (await victim.wait()).signal == signal.SIGKILL
    await wait_for(lambda: not running(daemon))
    if node_fate == "stopped":
        assert running(watchdog_pid)  # the node's stdin is still open: it waits on
        os.kill(node.pid, signal.SIGKILL)
    await node.wait()
    await wait_for(lambda: not running(watchdog_pid))


async def test_cancelling_the_node_side_kills_tracked_sessions(sup: Supervisor) -> None:
    killed: list[int] = []
    dog = Watchdog(on_killed=killed.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(dog.serve)
        dog.arm(until_ms=600_000, now_ms=0)
        child = await sup.spawn("g/r", py(SLEEP), env={})
        dog.track(child.pid)
        await trio.sleep(0.2)
        assert running(child.pid)
        watchdog_pid = dog.pid
        nursery.cancel_scope.cancel()
    assert not running(watchdog_pid)
    with trio.fail_after(5):
        assert (await child.wait()).signal == signal.SIGKILL
    assert killed == []  # the node stopped listening: it kills its own on the way out


async def test_a_watchdog_that_dies_is_an_error_for_the_node() -> None:
    dog = Watchdog(on_killed=lambda sid: None)
    with pytest.raises(ExceptionGroup) as info:  # the test's nursery wraps it
        async with trio.open_nursery() as nursery:
            await nursery.start(dog.serve)
            os.kill(dog.pid, signal.SIGKILL)
            await trio.sleep(10)
    [failed] = info.value.exceptions
    assert isinstance(failed, WatchdogFailed)  # serve raised it bare
    assert "ended: code -9" in str(failed)
