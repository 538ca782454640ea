"""The watchdog process (see `watchdog.py` for its protocol): standard library only.

The node runs this file by its path (`python -E -s .../watchdog_process.py`), not as a
module of the package: it then imports nothing of raftcluster's (nor trio, attrs...),
starts in a few tens of milliseconds, and depends on nothing the node's process holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import stat
import sys
import time

if __package__:
    from raftcluster.supervisor import proctable
else:  # run by path, as the node does: its own directory is first on sys.path
    import proctable  # type: ignore[no-redef]

MAX_LINE_BYTES = 256  # a protocol line; anything longer is not ours: dropped
READ_BYTES = 4096  # one read of stdin
KILL_RETRY_S = 2.0  # how long a kill keeps scanning for processes of the sessions
KILL_PAUSE_S = 0.02  # between two scans of one kill
STDOUT_FD = 1


class _Terminated(Exception):
    """SIGTERM or SIGHUP reached the watchdog: kill everything and exit, as on EOF."""


class _Dog:
    """The watchdog process's state: the lease end and the tracked sessions."""

    def __init__(self) -> None:
        self.lease_until: float | None = None
        self.tracked: set[int] = set()

    def emit(self, record: dict[str, object]) -> None:
        """One line on stdout, never blocking: stdout is non-blocking (a stopped node
        that reads nothing must not stop the killing), and a line (< PIPE_BUF) is
        written whole or not at all: dropped when the pipe is full or gone."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with contextlib.suppress(OSError):  # full (EAGAIN) or gone: killing is what matters
            os.write(STDOUT_FD, line)

    def complain(self, why: str, line: bytes) -> None:
        try:
            sys.stderr.write(f"watchdog: ignored {why}: {line[:80]!r}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def due(self, now: float) -> bool:
        return bool(self.tracked) and (self.lease_until is None or now >= self.lease_until)

    def kill_tracked(self) -> None:
        """Kill every tracked session, then forget them (not before: a SIGTERM that cuts
        this short leaves them tracked for the kill on the way out)."""
        sids = sorted(self.tracked)
        if not sids:
            return
        killed = dict.fromkeys(sids, 0)
        deadline = time.monotonic() + KILL_RETRY_S
        while True:
            counts = proctable.kill_sessions(sids)
            for sid, count in counts.items():
                killed[sid] += count
            if not any(counts.values()) or time.monotonic() >= deadline:
                break
            time.sleep(KILL_PAUSE_S)
        self.tracked.difference_update(sids)
        now = time.monotonic()
        for sid in sids:
            self.emit({"killed": sid, "processes": killed[sid], "at": now})

    def handle(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = json.loads(line)
        except ValueError:
            self.complain("a line that is not JSON", line)
            return
        if not isinstance(message, dict) or len(message) != 1:
            self.complain("a line that is not one {name: value}", line)
            return
        [(name, value)] = message.items()
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if name == "lease_until" and number:
            self.lease_until = float(value)
        elif (
            name in ("track", "untrack") and isinstance(value, int) and not isinstance(value, bool)
        ):
            if value <= 0:
                self.complain("a session id that is not positive", line)
            elif name == "track":
                self.tracked.add(value)
            else:
                self.tracked.discard(value)
        elif name == "fence" and value is True:
            self.kill_tracked()
        else:
            self.complain("an unknown or malformed message", line)


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated(signum)


def main() -> int:
    """The watchdog process: read stdin until EOF, kill on time. Returns the exit code."""
    dog = _Dog()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the node's business
    stdin = sys.stdin.fileno()
    with contextlib.suppress(OSError):  # stdout closed: nobody hears of kills; they happen
        if stat.S_ISFIFO(os.fstat(STDOUT_FD).st_mode):  # our pipe (not a shared terminal)
            os.set_blocking(STDOUT_FD, False)
    dog.emit({"ready": os.getpid()})
    pending = bytearray()  # at most MAX_LINE_BYTES + READ_BYTES: a partial line
    skipping = False  # inside a line that grew past MAX_LINE_BYTES: drop to its end
    try:
        while True:
            now = time.monotonic()
            if dog.due(now):
                dog.kill_tracked()
            timeout = None
            if dog.tracked and dog.lease_until is not None:
                timeout = max(0.0, dog.lease_until - now)
            readable, _, _ = select.select([stdin], [], [], timeout)
            if not readable:
                continue
            data = os.read(stdin, READ_BYTES)
            if not data:
                break
            pending += data
            while (end := pending.find(b"\n")) >= 0:
                line = bytes(pending[:end])
                del pending[: end + 1]
                if skipping:
                    skipping = False
                elif len(line) > MAX_LINE_BYTES:
                    dog.complain(f"a line over {MAX_LINE_BYTES} bytes", line)
                else:
                    dog.handle(line)
            if len(pending) > MAX_LINE_BYTES:
                if not skipping:
                    dog.complain(f"a line over {MAX_LINE_BYTES} bytes", bytes(pending))
                skipping = True
                pending.clear()
    except _Terminated:
        pass
    dog.kill_tracked()
    return 0


if __name__ == "__main__":
    sys.exit(main())
