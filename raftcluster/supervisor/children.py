"""`Supervisor`: the processes one node runs for its resources (and, later, for anyone).

Every process it starts (`spawn`: long-running; `run_command`: one-shot, output
captured) runs in a session of its own (setsid: a new process group too), filed under a
key ("group/resource": subdirectories of `root`). A session's id is its leader's pid, and
everything the leader forks stays in it, daemons included, so `kill_key` and the node's
watchdog (`watchdog.py`, told of every session through `on_session`) can end all of it.

Under `root/<key>/`:
    stdout.log, stderr.log   what the processes wrote (appended; rotated by size:
                             `log_keep` older files stdout.log.1 ... kept)
    exits.jsonl              one JSON line per process leader that ended: pid, argv,
                             started/ended wall ms, code, signal (rotated the same way)

Exits are learnt by reaping (`trio.Process.wait`), never by polling pids; a session is
forgotten (and `on_session(sid, False)` called) once its leader is reaped and no process
of it is left (checked at the reap and every second). Everything needs `serve` running:
it owns the reapers, the output pumps and the log rotation, and when it ends (cancelled)
it kills every session it started and waits for them, so nothing is left running.

Log rotation copies the live file to `.1` and truncates it (the processes hold it open,
appending): a line written between the copy and the truncation is lost. Linux only
(/proc, see `proctable.py`).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import trio

from raftcluster.supervisor import proctable
from statemachine.errors import ClusterError, InvalidArgument

log = logging.getLogger("raftcluster.supervisor")

# A one-shot command's output kept in memory (each stream): enough for any agent's
# answer or error message; the rest still reaches the log files.
MAX_CAPTURE_BYTES = 64 * 1024
# One read from a command's pipe: bounds the memory one pump holds at a time.
READ_CHUNK_BYTES = 64 * 1024
HOUSEKEEPING_INTERVAL_S = 1.0  # session ends and log sizes are checked this often
# After a one-shot command's leader exited, how long its output may still arrive
# before `run_command` returns (a daemon it left may hold the pipes open for ever;
# what it writes later still goes to the log files).
EOF_GRACE_S = 0.2
# A process sent SIGKILL ends at once unless stuck in the kernel (D state): wait this
# long for its reaping before giving up on it.
KILL_WAIT_S = 5.0
MAX_KEY_SEGMENTS = 8
MAX_SEGMENT_CHARS = 128
MAX_ARGV_IN_RECORD = 64  # arguments written to exits.jsonl per process (argv may be huge)
MAX_ARG_CHARS_IN_RECORD = 256

LOG_NAMES = ("stdout.log", "stderr.log")
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
EXITS_NAME = "exits.jsonl"


class SpawnProblem(enum.Enum):
    NOT_FOUND = "command not found"
    NOT_EXECUTABLE = "not executable"
    NO_CWD = "no such directory"
    OS_ERROR = "could not start"


class SpawnFailed(ClusterError):
    """A process could not be started: `problem` says why (the command does not exist,
    is not executable, the working directory is missing, or the system refused)."""

    def __init__(self, key: str, argv: Sequence[str], problem: SpawnProblem, message: str):
        super().__init__(message)
        self.key = key
        self.argv = tuple(argv)
        self.problem = problem


class SupervisorStopped(ClusterError):
    """The supervisor is not serving (not started yet, or ended): nothing can start."""


@attrs.frozen
class ExitStatus:
    """How a process ended: `code` if it exited, `signal` if a signal killed it."""

    code: int | None  # exit code, or None if killed by a signal
    signal: int | None  # the signal that ended it, or None

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitStatus:
        if returncode < 0:
            return cls(code=None, signal=-returncode)
        return cls(code=returncode, signal=None)

    def describe(self) -> str:
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        return f"exited {self.code}"


@attrs.frozen
class Completed:
    """A one-shot command's end."""

    status: ExitStatus | None  # None: timed out (its session was killed)
    stdout: bytes  # at most MAX_CAPTURE_BYTES: the first ones
    stderr: bytes  # the same bound
    truncated: bool  # some output was dropped (not from the log files)
    elapsed_ms: int

    @property
    def timed_out(self) -> bool:
        return self.status is None


@attrs.define(eq=False)
class _Session:
    key: str
    sid: int  # the leader's pid
    process: trio.Process
    argv: tuple[str, ...]
    started_ms: int  # wall clock
    started_s: float  # trio clock
    oneshot: bool
    ended: trio.Event = attrs.Factory(trio.Event)  # the leader was reaped
    status: ExitStatus | None = None
    ended_ms: int = 0
    ended_s: float = 0.0


class Child:
    """A long-running process started by `Supervisor.spawn`."""

    def __init__(self, session: _Session) -> None:
        self._session = session

    @property
    def key(self) -> str:
        return self._session.key

    @property
    def pid(self) -> int:
        return self._session.sid

    @property
    def argv(self) -> tuple[str, ...]:
        return self._session.argv

    @property
    def started_ms(self) -> int:
        return self._session.started_ms

    @property
    def status(self) -> ExitStatus | None:
        """How it ended, once it did (None while it runs)."""
        return self._session.status

    async def wait(self) -> ExitStatus:
        """Until it ended. Cancellation stops the waiting only: the process runs on."""
        await self._session.ended.wait()
        assert self._session.status is not None
        return self._session.status

    def __repr__(self) -> str:
        return f"Child(key={self.key!r}, pid={self.pid}, status={self.status})"


class _Capture:
    """What `run_command` keeps of one stream (the first MAX_CAPTURE_BYTES)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.kept_bytes = 0
        self.truncated = False
        self.open = True  # False once run_command returned: the pump only logs then
        self.eof = trio.Event()

    def add(self, data: bytes) -> None:
        if not self.open:
            return
        room = MAX_CAPTURE_BYTES - self.kept_bytes
        if len(data) > room:
            self.truncated = True
            data = data[:room]
        if data:
            self.chunks.append(data)
            self.kept_bytes += len(data)

    def value(self) -> bytes:
        return b"".join(self.chunks)


def check_key(key: str) -> tuple[str, ...]:
    """The key's segments; raises InvalidArgument unless it is 1 to MAX_KEY_SEGMENTS
    names of letters, digits, '-', '_' or '.' (not '.' or '..') joined by '/'."""
    segments = tuple(key.split("/"))
    if not 1 <= len(segments) <= MAX_KEY_SEGMENTS:
        raise InvalidArgument("key", f"{key[:200]!r}: 1 to {MAX_KEY_SEGMENTS} names")
    for segment in segments:
        if (
            not segment
            or len(segment) > MAX_SEGMENT_CHARS
            or segment in (".", "..")
            or not all(c.isalnum() or c in "-_." for c in segment)
        ):
            raise InvalidArgument(
                "key",
                f"{key[:200]!r}: each name 1 to {MAX_SEGMENT_CHARS} letters, digits, "
                "'-', '_' or '.' (not '.' or '..'), joined by '/'",
            )
    return segments


def _wall_ms() -> int:
    return int(time.time() * 1000)


def rotate(path: Path, max_bytes: int, keep: int, *, copy: bool) -> bool:
    """If `path` is over `max_bytes`: shift path.1 .. path.(keep-1) up by one (dropping
    path.keep) and move the file to path.1 (`copy`: copy it and truncate the original,
    which writers hold open with O_APPEND). Returns whether it rotated. Blocking."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size <= max_bytes:
        return False
    if keep > 0:
        for index in range(keep - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
        first = path.with_name(f"{path.name}.1")
        if copy:
            shutil.copyfile(path, first)
        else:
            os.replace(path, first)
            return True
    if copy:
        os.truncate(path, 0)
    else:
        path.unlink(missing_ok=True)
    return True


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


class Supervisor:
    def __init__(
        self,
        root: Path,
        *,
        log_max_bytes: int = 10 << 20,
        log_keep: int = 3,
        on_session: Callable[[int, bool], None] | None = None,
    ) -> None:
        """`root`: e.g. data_dir/"resources". `on_session(sid, alive)` is told of every
        session started (alive=True) and forgotten (False: its leader was reaped and no
        process of it is left); the node passes it to its watchdog."""
        if log_max_bytes < 1 or log_keep < 0:
            raise InvalidArgument("Supervisor", "log_max_bytes >= 1 and log_keep >= 0")
        self.root = Path(root)
        self.log_max_bytes = log_max_bytes
        self.log_keep = log_keep
        self._on_session = on_session
        self._sessions: dict[int, _Session] = {}  # sid -> session, until forgotten
        self._children: list[Child] = []  # spawned and not ended, in spawn order
        self._locks: dict[str, trio.Lock] = {}  # key -> its files' lock
        self._nursery: trio.Nursery | None = None

    # -- the service --------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled: reap children, pump one-shot commands' output, rotate logs.
        On exit (cancellation, or an error) it kills every session it started (SIGKILL)
        and waits for their leaders, shielded, so nothing it started is left running."""
        if self._nursery is not None:
            raise SupervisorStopped("this supervisor is already serving")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._housekeeping)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self._kill_everything()

    async def _kill_everything(self) -> None:
        deadline = trio.current_time() + KILL_WAIT_S
        while self._sessions and trio.current_time() < deadline:
            counts = proctable.kill_sessions(self._sessions)
            for session in list(self._sessions.values()):
                returncode = session.process.poll() if session.status is None else None
                if returncode is not None:
                    await self._ended(session, returncode)
                if session.ended.is_set() and counts.get(session.sid, 0) == 0:
                    self._forget(session)
            if self._sessions:
                await trio.sleep(0.01)
        for session in list(self._sessions.values()):
            log.error(
                "session %d (%s) survived SIGKILL for %ss", session.sid, session.key, KILL_WAIT_S
            )

    async def _housekeeping(self) -> None:
        while True:
            await trio.sleep(HOUSEKEEPING_INTERVAL_S)
            self._forget_empty()
            keys = {session.key for session in self._sessions.values()}
            for key in sorted(keys):
                try:
                    await self._rotate_logs(key)
                except OSError as error:  # a full disk must not stop the supervision
                    log.warning("could not rotate the logs of %s: %s", key, error)

    def _forget_empty(self) -> None:
        done = [s for s in self._sessions.values() if s.ended.is_set()]
        if not done:
            return
        left = proctable.members(s.sid for s in done)
        for session in done:
            if not left.get(session.sid):
                self._forget(session)

    def _forget(self, session: _Session) -> None:
        if self._sessions.pop(session.sid, None) is not None and self._on_session is not None:
            self._on_session(session.sid, False)

    def _nursery_or_raise(self) -> trio.Nursery:
        if self._nursery is None:
            raise SupervisorStopped("the supervisor is not serving: nothing can start")
        return self._nursery

    # -- files --------------------------------------------------------------------------

    def key_dir(self, key: str) -> Path:
        """root/<key>: its log files and exits.jsonl."""
        return self.root.joinpath(*check_key(key))

    def _lock(self, key: str) -> trio.Lock:
        return self._locks.setdefault(key, trio.Lock())

    async def _rotate_logs(self, key: str) -> None:
        folder = self.key_dir(key)
        async with self._lock(key):
            for name in LOG_NAMES:
                await trio.to_thread.run_sync(self._rotate_log, folder / name)

    def _rotate_log(self, path: Path) -> None:
        rotate(path, self.log_max_bytes, self.log_keep, copy=True)

    async def _append_log(self, key: str, name: str, data: bytes) -> None:
        path = self.key_dir(key) / name
        async with self._lock(key):
            await trio.to_thread.run_sync(_append, path, data)
            await trio.to_thread.run_sync(self._rotate_log, path)

    async def _record_exit(self, session: _Session) -> None:
        status = session.status
        assert status is not None
        argv = [arg[:MAX_ARG_CHARS_IN_RECORD] for arg in session.argv[:MAX_ARGV_IN_RECORD]]
        record = {
            "pid": session.sid,
            "argv": argv,
            "oneshot": session.oneshot,
            "started_ms": session.started_ms,
            "ended_ms": session.ended_ms,
            "code": status.code,
            "signal": status.signal,
        }
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        path = self.key_dir(session.key) / EXITS_NAME

        def write() -> None:
            rotate(path, self.log_max_bytes, self.log_keep, copy=False)
            _append(path, line)

        async with self._lock(session.key):
            try:
                await trio.to_thread.run_sync(write)
            except OSError as error:  # a full disk must not stop the reaping
                log.warning("could not record the exit of %d in %s: %s", session.sid, path, error)

    # -- starting -----------------------------------------------------------------------

    def _check_command(
        self, key: str, argv: Sequence[str], env: Mapping[str, str], cwd: str | None
    ) -> None:
        if not argv or not argv[0]:
            raise SpawnFailed(key, argv, SpawnProblem.NOT_FOUND, "command not found: (empty)")
        if cwd is not None and not os.path.isdir(cwd):
            raise SpawnFailed(key, argv, SpawnProblem.NO_CWD, f"no such directory: {cwd}")
        command = argv[0]
        if "/" in command:
            path = command if os.path.isabs(command) else os.path.join(cwd or ".", command)
            if not os.path.exists(path):
                raise SpawnFailed(
                    key, argv, SpawnProblem.NOT_FOUND, f"command not found: {command}"
                )
        else:
            found = shutil.which(command, mode=os.F_OK, path=env.get("PATH", os.defpath))
            if found is None:
                raise SpawnFailed(
                    key, argv, SpawnProblem.NOT_FOUND, f"command not found: {command}"
                )
            path = found
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise SpawnFailed(
                key, argv, SpawnProblem.NOT_EXECUTABLE, f"not executable: {command} ({path})"
            )

    async def _start(
        self,
        key: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        *,
        oneshot: bool,
    ) -> _Session:
        nursery = self._nursery_or_raise()
        argv = tuple(argv)
        folder = self.key_dir(key)
        merged = {**os.environ, **env}
        self._check_command(key, argv, merged, cwd)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not oneshot:
                await self._rotate_logs(key)
        except OSError as error:
            raise SpawnFailed(
                key, argv, SpawnProblem.OS_ERROR, f"cannot prepare {folder}: {error}"
            ) from error
        stdout: int | None = None
        stderr: int | None = None
        try:
            if oneshot:
                stdout = stderr = subprocess.PIPE
            else:
                try:
                    stdout = os.open(folder / "stdout.log", _APPEND_FLAGS, 0o644)
                    stderr = os.open(folder / "stderr.log", _APPEND_FLAGS, 0o644)
                except OSError as error:
                    raise SpawnFailed(
                        key, argv, SpawnProblem.OS_ERROR, f"cannot open its logs: {error}"
                    ) from error
            process = await trio.lowlevel.open_process(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=merged,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise SpawnFailed(
                key, argv, SpawnProblem.NOT_FOUND, f"command not found: {argv[0]} ({error})"
            ) from error
        except PermissionError as error:
            raise SpawnFailed(
                key, argv, SpawnProblem.NOT_EXECUTABLE, f"not executable: {argv[0]} ({error})"
            ) from error
        except OSError as error:
            raise SpawnFailed(
                key, argv, SpawnProblem.OS_ERROR, f"could not start {argv[0]}: {error}"
            ) from error
        finally:
            for fd in (stdout, stderr):
                if fd is not None and fd >= 0:
                    os.close(fd)
        session = _Session(
            key=key,
            sid=process.pid,
            process=process,
            argv=argv,
            started_ms=_wall_ms(),
            started_s=trio.current_time(),
            oneshot=oneshot,
        )
        self._sessions[session.sid] = session
        if self._on_session is not None:
            self._on_session(session.sid, True)
        nursery.start_soon(self._reap, session)
        return session

    async def _reap(self, session: _Session) -> None:
        returncode = await session.process.wait()
        await self._ended(session, returncode)
        self._forget_empty()

    async def _ended(self, session: _Session, returncode: int) -> None:
        if session.status is not None:
            return
        session.status = ExitStatus.from_returncode(returncode)
        session.ended_ms = _wall_ms()
        session.ended_s = trio.current_time()
        self._children = [c for c in self._children if c.pid != session.sid]
        try:
            await self._record_exit(session)  # written before anyone learns of the end
        finally:
            session.ended.set()

    async def spawn(
        self, key: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None = None
    ) -> Child:
        """Start a long-running process in a session of its own, filed under `key`; its
        stdout and stderr are appended to root/<key>/stdout.log and stderr.log, its stdin
        is /dev/null, its environment os.environ + `env`. Raises SpawnFailed if the
        command does not exist or is not executable, or `cwd` is missing; InvalidArgument
        for a bad key; SupervisorStopped unless `serve` runs.

        Cancellation: before the process exists, nothing is left; once it exists, it is
        supervised (reaped, killed when `serve` ends) like any other."""
        session = await self._start(key, argv, env, cwd, oneshot=False)
        child = Child(session)
        self._children.append(child)
        return child

    async def run_command(
        self,
        key: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | None = None,
        timeout_ms: int,
    ) -> Completed:
        """Run a one-shot command in a session of its own, to its end: its output is
        captured (the first MAX_CAPTURE_BYTES of each stream) and appended to the key's
        logs. At the timeout the whole session is killed (SIGKILL) and `status` is None.
        Processes it leaves behind (a daemon it started) stay in its session, under the
        key, and their output still goes to the log files. Raises as `spawn` does.

        Cancellation: the session is killed (SIGKILL) and its leader reaped (shielded, at
        most KILL_WAIT_S), then Cancelled propagates."""
        session = await self._start(key, argv, env, cwd, oneshot=True)
        nursery = self._nursery_or_raise()
        captures = (_Capture(), _Capture())
        streams = (session.process.stdout, session.process.stderr)
        for name, stream, capture in zip(LOG_NAMES, streams, captures, strict=True):
            assert stream is not None
            nursery.start_soon(self._pump, session.key, name, stream, capture)
        finished = False
        try:
            with trio.move_on_after(max(timeout_ms, 0) / 1000):
                await session.ended.wait()
            timed_out = not session.ended.is_set()
            if timed_out:
                await self._kill_and_wait(session)
            with trio.move_on_after(EOF_GRACE_S):
                for capture in captures:
                    await capture.eof.wait()
            finished = True
        finally:
            for capture in captures:
                capture.open = False
            if not finished:
                await self._kill_and_wait(session)
        end_s = session.ended_s if session.ended.is_set() else trio.current_time()
        return Completed(
            status=None if timed_out else session.status,
            stdout=captures[0].value(),
            stderr=captures[1].value(),
            truncated=any(c.truncated for c in captures),
            elapsed_ms=math.ceil((end_s - session.started_s) * 1000),
        )

    async def _pump(
        self, key: str, name: str, stream: trio.abc.ReceiveStream, capture: _Capture
    ) -> None:
        """Copy a one-shot command's pipe to its capture and its log file, to EOF."""
        try:
            async with stream:
                while chunk := await stream.receive_some(READ_CHUNK_BYTES):
                    data = bytes(chunk)
                    capture.add(data)
                    try:
                        await self._append_log(key, name, data)
                    except OSError as error:  # a full disk: the capture still works
                        log.warning("could not log the output of %s: %s", key, error)
        except trio.BrokenResourceError:
            pass
        finally:
            capture.eof.set()

    async def _kill_and_wait(self, session: _Session) -> None:
        """SIGKILL the session and wait (shielded, at most KILL_WAIT_S) for its leader."""
        proctable.kill_sessions([session.sid])
        with trio.CancelScope(shield=True), trio.move_on_after(KILL_WAIT_S):
            await session.ended.wait()

    # -- stopping -----------------------------------------------------------------------

    async def stop(self, child: Child, timeout_ms: int) -> ExitStatus:
        """SIGTERM to the child's process group, then wait for it; once `timeout_ms`
        passes, SIGKILL to its whole session. Returns how the child ended (processes of
        its session that outlived it are not waited for: see `kill_key`).

        Cancellation: the session is killed (SIGKILL) and the child reaped (shielded, at
        most KILL_WAIT_S), then Cancelled propagates."""
        session = child._session
        if not session.ended.is_set():
            with contextlib.suppress(OSError):  # the group is gone already
                os.killpg(session.sid, signal.SIGTERM)
        finished = False
        try:
            with trio.move_on_after(max(timeout_ms, 0) / 1000):
                await session.ended.wait()
            if not session.ended.is_set():
                await self._kill_and_wait(session)
            finished = True
        finally:
            if not finished:
                await self._kill_and_wait(session)
        if session.status is None:
            raise ClusterError(
                f"process {session.sid} of {session.key} survived SIGKILL for {KILL_WAIT_S} s"
            )
        return session.status

    def _sids_under(self, key: str) -> list[int]:
        return [
            s.sid for s in self._sessions.values() if s.key == key or s.key.startswith(key + "/")
        ]

    def kill_key(self, key: str) -> int:
        """SIGKILL every process of every session started under `key` (the key itself
        and the keys below it: "group" covers "group/resource"), leaders and what they
        left behind alike. Returns how many processes were signalled."""
        return sum(proctable.kill_sessions(self._sids_under(key)).values())

    async def kill_key_and_wait(self, key: str) -> int:
        """`kill_key`, then wait until no process under `key` is alive (SIGKILL takes
        effect asynchronously), at most KILL_WAIT_S. Returns how many were signalled.

        Cancellation: stops the waiting only (the signals were sent)."""
        killed = self.kill_key(key)
        with trio.move_on_after(KILL_WAIT_S):
            while killed and self.alive(key):
                await trio.sleep(0.01)
        return killed

    def alive(self, key: str) -> bool:
        """Whether any process of a session under `key` is still alive (not a zombie)."""
        return any(proctable.members(self._sids_under(key)).values())

    def kill_all(self) -> int:
        """SIGKILL every process of every session of every key (fencing, shutdown).
        Returns how many processes were signalled."""
        return sum(proctable.kill_sessions(self._sessions).values())

    def children(self) -> tuple[Child, ...]:
        """The spawned children that have not ended, in spawn order."""
        return tuple(self._children)

    def sessions(self) -> tuple[int, ...]:
        """The ids of the sessions not forgotten yet (a leader alive, or processes left)."""
        return tuple(self._sessions)
