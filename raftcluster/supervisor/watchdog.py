"""The watchdog: a process apart from the node that kills the node's resources when the
node's lease ends, even if the node hangs (SIGSTOP, a stuck event loop) or died.

The process is `watchdog_process.py`, run by its path (`command()`); the node starts it in
a session of its own (`Watchdog.serve`) and talks to it over its stdin, in JSON lines of at most
MAX_LINE_BYTES (a longer or malformed line is ignored, with a line on stderr; bad input
never ends the watchdog):

    {"lease_until": <float>}   the lease ends then (time.monotonic() seconds); the
                               latest given wins, shorter or longer
    {"track": <sid>}           a session the node started: kill it when the lease ends
    {"untrack": <sid>}         that session ended (or is not the watchdog's business)
    {"fence": true}            kill every tracked session now

Every tracked session is killed (SIGKILL to each of its processes, found by session id
in /proc; repeated until none is left or KILL_RETRY_S passed) when the lease end passes,
on "fence", and on stdin's EOF (the node is gone: at once). Before any lease is given
nothing may run, so a session tracked with no lease, or an expired one, is killed at
once. A killed session is no longer tracked. The watchdog writes JSON lines on stdout:
first {"ready": <its pid>}, then one {"killed": sid, "processes": n, "at": <monotonic>}
per session killed. After the EOF and its kill it exits 0 (SIGTERM and SIGHUP do the
same).

Time: CLOCK_MONOTONIC (Python's time.monotonic() on Linux) is one clock for the whole
system, so the node and the watchdog read the same one; the node converts its lease end
from its own clock with `Watchdog.arm` (deadline = monotonic now + (until - now)).
"""

from __future__ import annotations

import collections
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import trio

from statemachine.errors import ClusterError

log = logging.getLogger("raftcluster.supervisor")


def command(python: str = sys.executable) -> list[str]:
    """How the node starts the watchdog process: `watchdog_process.py` by its path, with
    only the standard library (-E -s: no PYTHON* variables, no user site)."""
    return [python, "-E", "-s", str(Path(__file__).with_name("watchdog_process.py"))]


# -- the node's side ------------------------------------------------------------------

# Messages waiting for the watchdog to read them. It reads at once unless it hangs, and
# the node sends a few per session: this many pending means it is stuck (they are
# dropped, with an error in the log).
MAX_PENDING_LINES = 10_000
READ_BYTES = 4096  # one read of the watchdog's stdout
MAX_REPLY_LINE_BYTES = 1024  # a line from the watchdog is far shorter
READY_TIMEOUT_S = 30.0  # the watchdog's start (a Python interpreter's)
EXIT_WAIT_S = 3.0  # after its stdin closed, for it to kill everything and exit


class WatchdogFailed(ClusterError):
    """The watchdog process did not start, or ended while the node needs it."""


class Watchdog:
    """The node's side of the watchdog: starts the process and tells it the lease and
    the sessions. The methods that tell it something never block: what they say is
    sent in order by `serve` (the latest lease first: a lease is safe to learn early)."""

    def __init__(
        self,
        *,
        on_killed: Callable[[int], None],
        python: str = sys.executable,
        stderr: int | None = None,
    ) -> None:
        """`on_killed(sid)` is called for each session the watchdog killed. `stderr`: a
        file descriptor for the watchdog's complaints (default: the node's stderr)."""
        self._on_killed = on_killed
        self._python = python
        self._stderr = stderr
        self._lease: bytes | None = None
        self._outbox: collections.deque[bytes] = collections.deque()
        self._wake = trio.Event()
        self.pid = 0

    def arm(self, until_ms: int, now_ms: int) -> None:
        """The lease ends at `until_ms` of the node's clock, which reads `now_ms` now."""
        deadline = time.monotonic() + (until_ms - now_ms) / 1000
        self._lease = _line({"lease_until": deadline})
        self._wake.set()

    def track(self, sid: int) -> None:
        self._send({"track": sid})

    def untrack(self, sid: int) -> None:
        self._send({"untrack": sid})

    def fence(self) -> None:
        """Kill every tracked session now."""
        self._send({"fence": True})

    def _send(self, message: dict[str, object]) -> None:
        if len(self._outbox) >= MAX_PENDING_LINES:
            log.error("the watchdog reads nothing: dropped %s", message)
            return
        self._outbox.append(_line(message))
        self._wake.set()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the watchdog process and run until cancelled: send what the node says,
        report kills to `on_killed`. Started once the watchdog said it is ready.

        Cancellation: stdin is closed, so the watchdog kills every tracked session and
        exits; it is waited for (shielded, at most EXIT_WAIT_S), then SIGKILLed if it
        did not. Raises WatchdogFailed if the process cannot start or ends meanwhile."""
        try:
            process = await trio.lowlevel.open_process(
                command(self._python),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
            )
        except OSError as error:
            raise WatchdogFailed(f"could not start the watchdog: {error}") from error
        self.pid = process.pid
        assert process.stdin is not None and process.stdout is not None
        try:
            async with trio.open_nursery() as nursery:
                ready = trio.Event()
                nursery.start_soon(self._read, process.stdout, ready)
                nursery.start_soon(self._exited, process)
                with trio.move_on_after(READY_TIMEOUT_S):
                    await ready.wait()
                if not ready.is_set():
                    raise WatchdogFailed(f"the watchdog did not start in {READY_TIMEOUT_S} s")
                nursery.start_soon(self._write, process.stdin)
                task_status.started()
        except BaseExceptionGroup as group:
            failed, rest = group.split(WatchdogFailed)
            if failed is None or rest is not None:
                raise
            raise _first(failed) from group
        finally:
            with trio.CancelScope(shield=True):
                await process.stdin.aclose()
                with trio.move_on_after(EXIT_WAIT_S):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    async def _exited(self, process: trio.Process) -> None:
        code = await process.wait()
        raise WatchdogFailed(f"the watchdog (pid {process.pid}) ended: code {code}")

    async def _write(self, stdin: trio.abc.SendStream) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if self._lease is not None:
                lease, self._lease = self._lease, None
                await stdin.send_all(lease)
            while self._outbox:
                await stdin.send_all(self._outbox.popleft())

    async def _read(self, stdout: trio.abc.ReceiveStream, ready: trio.Event) -> None:
        pending = b""
        while chunk := await stdout.receive_some(READ_BYTES):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._heard(line, ready)
            if len(pending) > MAX_REPLY_LINE_BYTES:
                log.error("the watchdog wrote a line too long: %r", pending[:80])
                pending = b""

    def _heard(self, line: bytes, ready: trio.Event) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            log.error("the watchdog wrote %r", line[:80])
            return
        if not isinstance(message, dict):
            return
        if "ready" in message:
            ready.set()
        elif isinstance(message.get("killed"), int):
            log.warning(
                "the watchdog killed session %d (%s processes)",
                message["killed"],
                message.get("processes"),
            )
            self._on_killed(message["killed"])


def _first(group: BaseExceptionGroup[WatchdogFailed]) -> WatchdogFailed:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error


def _line(message: dict[str, object]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()
