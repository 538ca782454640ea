"""The supervisor with real processes: sessions, logs, exits, stops, kills, shutdown."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from raftcluster.supervisor.children import (
    MAX_CAPTURE_BYTES,
    ExitStatus,
    SpawnFailed,
    SpawnProblem,
    Supervisor,
    SupervisorStopped,
)
from statemachine.errors import InvalidArgument
from tests.supervisor.kit import SLEEP, py, running, running_supervisor, wait_for

# Starts a grandchild that stays in the session (a daemon), prints both pids, exits.
DAEMONIZE = (
    "import os, subprocess, sys;"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    "print(os.getpid(), p.pid, flush=True)"
)


@pytest.fixture
async def sup(tmp_path: Path) -> AsyncIterator[Supervisor]:
    async with running_supervisor(tmp_path / "res") as supervisor:
        yield supervisor


def exits(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "exits.jsonl").read_text().splitlines()]


async def test_spawn_runs_in_its_own_session_and_logs_to_files(sup: Supervisor) -> None:
    code = (
        "import os, sys; print(os.getpid(), os.getsid(0), os.getpgid(0), flush=True);"
        "print('to stderr', file=sys.stderr, flush=True);"
        "print(os.environ['EXTRA'], flush=True)"
    )
    child = await sup.spawn("g/r", py(code), env={"EXTRA": "extra-value"})
    assert await child.wait() == ExitStatus(code=0, signal=None)
    folder = sup.root / "g" / "r"
    lines = (folder / "stdout.log").read_text().splitlines()
    pid, sid, pgid = (int(x) for x in lines[0].split())
    assert pid == sid == pgid == child.pid
    assert sid != os.getsid(0)
    assert lines[1] == "extra-value"
    assert (folder / "stderr.log").read_text() == "to stderr\n"


async def test_exit_code_and_signal_are_recorded(sup: Supervisor) -> None:
    three = await sup.spawn("g/r", py("raise SystemExit(3)"), env={})
    killed = await sup.spawn("g/r", py("import os; os.kill(os.getpid(), 9)"), env={})
    assert (await three.wait()).describe() == "exited 3"
    assert (await killed.wait()).describe() == "killed by SIGKILL"
    records = {r["pid"]: r for r in exits(sup.root / "g" / "r")}
    assert records[three.pid]["code"] == 3 and records[three.pid]["signal"] is None
    assert records[killed.pid]["code"] is None and records[killed.pid]["signal"] == 9
    record = records[three.pid]
    assert record["argv"] == list(three.argv)
    assert isinstance(record["ended_ms"], int) and isinstance(record["started_ms"], int)
    assert record["ended_ms"] >= record["started_ms"]


async def test_logs_rotate_past_the_limit_keeping_n_files(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, log_max_bytes=1000, log_keep=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.serve)
        for index in range(5):
            child = await supervisor.spawn("k", py(f"print('{index}' * 1500)"), env={})
            await child.wait()
        nursery.cancel_scope.cancel()
    names = sorted(p.name for p in tmp_path.joinpath("k").iterdir())
    assert names == [
        "exits.jsonl",
        "stderr.log",
        "stdout.log",
        "stdout.log.1",
        "stdout.log.2",
    ]
    # newest last: stdout.log.2, stdout.log.1, stdout.log (the housekeeping may have
    # rotated the last output too, leaving stdout.log empty)
    folder = tmp_path / "k"
    texts = [(folder / name).read_text() for name in ("stdout.log.2", "stdout.log.1", "stdout.log")]
    outputs = [text[0] for text in texts if text]
    assert outputs in (["2", "3", "4"], ["3", "4"]), outputs
    assert all(len(text) in (0, 1501) for text in texts)


async def test_a_running_child_log_is_rotated_every_second(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, log_max_bytes=1000, log_keep=1)
    code = "import time\nfor i in range(40):\n print('x' * 200, flush=True); time.sleep(0.05)"
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.serve)
        child = await supervisor.spawn("k", py(code), env={})
        await child.wait()
        nursery.cancel_scope.cancel()
    assert (tmp_path / "k" / "stdout.log.1").exists()
    assert not (tmp_path / "k" / "stdout.log.2").exists()


async def test_stop_kills_a_child_that_ignores_sigterm(sup: Supervisor) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)"
    )
    child = await sup.spawn("g/r", py(code), env={})
    log = sup.root / "g" / "r" / "stdout.log"
    await wait_for(lambda: log.exists() and log.read_text() == "ready\n")
    start = trio.current_time()
    status = await sup.stop(child, timeout_ms=300)
    assert status == ExitStatus(code=None, signal=signal.SIGKILL)
    assert trio.current_time() - start >= 0.3
    assert not running(child.pid)


async def test_stop_ends_a_well_behaved_child_with_sigterm(sup: Supervisor) -> None:
    child = await sup.spawn("g/r", py(SLEEP), env={})
    status = await sup.stop(child, timeout_ms=5000)
    assert status == ExitStatus(code=None, signal=signal.SIGTERM)
    assert sup.children() == ()


async def test_kill_key_kills_the_daemon_left_in_the_session(sup: Supervisor) -> None:
    child = await sup.spawn("g/r", py(DAEMONIZE), env={})
    assert await child.wait() == ExitStatus(code=0, signal=None)
    leader, daemon = (int(x) for x in (sup.root / "g/r/stdout.log").read_text().split())
    assert leader == child.pid
    assert running(daemon)
    assert sup.alive("g/r") and sup.alive("g")
    assert not sup.alive("g/other")
    assert sup.kill_key("g/r") == 1
    await wait_for(lambda: not running(daemon))
    assert not sup.alive("g/r")


async def test_kill_key_kills_leader_and_grandchild(sup: Supervisor) -> None:
    code = DAEMONIZE + "; import time; time.sleep(60)"
    child = await sup.spawn("g/r", py(code), env={})
    log = sup.root / "g/r/stdout.log"
    await wait_for(lambda: log.exists() and log.read_text().endswith("\n"))
    _, daemon = (int(x) for x in log.read_text().split())
    assert sup.kill_key("g") == 2
    assert await child.wait() == ExitStatus(code=None, signal=signal.SIGKILL)
    await wait_for(lambda: not running(daemon))


async def test_sessions_are_reported_started_and_forgotten(tmp_path: Path) -> None:
    seen: list[tuple[int, bool]] = []
    supervisor = Supervisor(tmp_path, on_session=lambda sid, alive: seen.append((sid, alive)))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.serve)
        child = await supervisor.spawn("k", py(DAEMONIZE), env={})
        assert seen == [(child.pid, True)]
        await child.wait()
        await trio.sleep(0.1)
        assert seen == [(child.pid, True)]  # the daemon still runs in the session
        supervisor.kill_key("k")
        await wait_for(lambda: len(seen) == 2, timeout_s=3)
        assert seen[1] == (child.pid, False)
        assert supervisor.sessions() == ()
        nursery.cancel_scope.cancel()


async def test_cancelling_serve_leaves_nothing_running(tmp_path: Path) -> None:
    seen: list[tuple[int, bool]] = []
    supervisor = Supervisor(tmp_path, on_session=lambda sid, alive: seen.append((sid, alive)))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.serve)
        first = await supervisor.spawn("a/x", py(SLEEP), env={})
        second = await supervisor.spawn(
            "b/y", py(DAEMONIZE + "; import time; time.sleep(60)"), env={}
        )
        log = tmp_path / "b/y/stdout.log"
        await wait_for(lambda: log.exists() and log.read_text().endswith("\n"))
        _, daemon = (int(x) for x in log.read_text().split())
        nursery.cancel_scope.cancel()
    for pid in (first.pid, second.pid, daemon):
        assert not running(pid), pid
    assert first.status == ExitStatus(code=None, signal=signal.SIGKILL)
    assert sorted(sid for sid, alive in seen if not alive) == sorted([first.pid, second.pid])
    with pytest.raises(SupervisorStopped):
        await supervisor.spawn("a/x", py(SLEEP), env={})


async def test_cancelling_serve_kills_a_running_command(tmp_path: Path) -> None:
    pids: list[int] = []
    supervisor = Supervisor(tmp_path, on_session=lambda sid, alive: pids.append(sid))
    cancelled = False
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.serve)

        async def command() -> None:
            nonlocal cancelled
            try:
                await supervisor.run_command("c", py(SLEEP), env={}, timeout_ms=60_000)
            except trio.Cancelled:
                cancelled = True
                raise

        nursery.start_soon(command)
        await wait_for(lambda: bool(pids))
        nursery.cancel_scope.cancel()
    assert cancelled
    assert not running(pids[0])


async def test_run_command_captures_output_and_status(sup: Supervisor) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(7)"
    done = await sup.run_command("g/r", py(code), env={}, timeout_ms=10_000)
    assert done.status == ExitStatus(code=7, signal=None)
    assert done.stdout == b"out\n" and done.stderr == b"err\n"
    assert not done.truncated and not done.timed_out
    assert (sup.root / "g/r/stdout.log").read_bytes() == b"out\n"
    assert (sup.root / "g/r/stderr.log").read_bytes() == b"err\n"
    assert exits(sup.root / "g/r")[0]["oneshot"] is True


async def test_run_command_output_is_bounded(sup: Supervisor) -> None:
    code = f"import sys; sys.stdout.write('y' * {MAX_CAPTURE_BYTES * 3})"
    done = await sup.run_command("g/r", py(code), env={}, timeout_ms=10_000)
    assert done.status == ExitStatus(code=0, signal=None)
    assert done.stdout == b"y" * MAX_CAPTURE_BYTES
    assert done.truncated
    await wait_for(lambda: (sup.root / "g/r/stdout.log").stat().st_size == MAX_CAPTURE_BYTES * 3)


async def test_run_command_timeout_kills_the_session(sup: Supervisor) -> None:
    code = DAEMONIZE + "; import time; time.sleep(60)"
    done = await sup.run_command("g/r", py(code), env={}, timeout_ms=1000)
    assert done.timed_out and done.status is None
    assert 1000 <= done.elapsed_ms < 5000
    leader, daemon = (int(x) for x in done.stdout.split())
    assert not running(leader)
    await wait_for(lambda: not running(daemon))


async def test_run_command_cancelled_kills_the_session(tmp_path: Path) -> None:
    seen: list[tuple[int, bool]] = []
    supervisor = Supervisor(tmp_path, on_session=lambda sid, alive: seen.append((sid, alive)))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.serve)
        with trio.move_on_after(0.5) as scope:
            await supervisor.run_command("g/r", py(SLEEP), env={}, timeout_ms=60_000)
        assert scope.cancelled_caught
        sid = seen[0][0]
        assert not running(sid)
        await wait_for(lambda: (sid, False) in seen, timeout_s=3)
        nursery.cancel_scope.cancel()


async def test_run_command_returns_while_a_daemon_keeps_the_pipes(sup: Supervisor) -> None:
    done = await sup.run_command("g/r", py(DAEMONIZE), env={}, timeout_ms=10_000)
    assert done.status == ExitStatus(code=0, signal=None)
    _, daemon = (int(x) for x in done.stdout.split())
    assert running(daemon) and sup.alive("g/r")
    assert sup.kill_key("g/r") == 1


async def test_spawn_failures_are_clear(sup: Supervisor, tmp_path: Path) -> None:
    with pytest.raises(SpawnFailed, match="command not found: no-such-command-xyz") as info:
        await sup.spawn("g/r", ["no-such-command-xyz", "arg"], env={})
    assert info.value.problem == SpawnProblem.NOT_FOUND
    with pytest.raises(SpawnFailed, match="command not found") as info:
        await sup.run_command("g/r", [str(tmp_path / "missing")], env={}, timeout_ms=1000)
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program")
    with pytest.raises(SpawnFailed, match="not executable") as info:
        await sup.spawn("g/r", [str(plain)], env={})
    assert info.value.problem == SpawnProblem.NOT_EXECUTABLE
    with pytest.raises(SpawnFailed, match="no such directory") as info:
        await sup.spawn("g/r", py(SLEEP), env={}, cwd=str(tmp_path / "nowhere"))
    assert info.value.problem == SpawnProblem.NO_CWD
    assert sup.sessions() == ()


@pytest.mark.parametrize("key", ["", "a//b", "../x", "a/..", "a b", "/abs", "a/" + "x" * 200])
async def test_bad_keys_are_refused(sup: Supervisor, key: str) -> None:
    with pytest.raises(InvalidArgument):
        await sup.spawn(key, py(SLEEP), env={})
    assert sup.sessions() == ()
