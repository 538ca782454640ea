"""`ProcessKind` (type "process"): a resource that is one long-running command.

Parameters (`ResourceSpec.params`, strings):
    command          required: the command line, split as a shell would (shlex) but
                     never run by a shell; its executable must exist on the node
    cwd              its working directory
    env.NAME         sets NAME in its environment (on top of the node's and ctx.env:
                     RAFTCLUSTER_EPOCH, RAFTCLUSTER_GROUP, RAFTCLUSTER_RESOURCE,
                     RAFTCLUSTER_NODE)
    health           optional, how to tell it is healthy:
                       cmd:<command line>    the command exits 0 (no shell either)
                       tcp:HOST:PORT         a TCP connection succeeds
                       http://HOST:PORT/PATH a GET answered with `health_status`
    health_status    the HTTP status `http://` health wants (default 200)
    start_grace_ms   how long the process must stay up after its spawn before the start
                     counts (default 0)

start: spawn the command (a missing or non-executable command, or a missing cwd, is a
HARD failure: no restart here can cure it), stay up `start_grace_ms`, then, with
`health`, poll it every HEALTH_POLL_MS until it passes (within the action's timeout, which
the executor enforces). A process that exits meanwhile fails the start (SOFT). A start
first kills whatever an earlier start left under the resource's key.
monitor: the process started under this epoch still runs and `health` passes.
stop: SIGTERM to its process group, SIGKILL to its session at the action's timeout, then
SIGKILL to anything left in the resource's sessions (daemons it forked).
watch: returns when the started process ended on its own, saying how.
"""

from __future__ import annotations

import logging
import shlex
import urllib.parse
from collections.abc import Mapping

import trio

from raftcluster.resources.kind import ResourceContext, ResourceFailed, Severity
from raftcluster.supervisor.children import Child, SpawnFailed, SpawnProblem

log = logging.getLogger("raftcluster.resources")

HEALTH_POLL_MS = 100  # a start with `health` checks it this often until it passes
# One health check's time, within what is left of the action's: a check that hangs
# (a blackholed TCP connect) must not take the whole start or monitor.
HEALTH_TIMEOUT_MS = 5_000
# An HTTP health answer is read up to its status line: a server sending more (or
# never a line end) is cut here.
MAX_HTTP_RESPONSE_BYTES = 4096
KNOWN_PARAMS = ("command", "cwd", "health", "health_status", "start_grace_ms")
ENV_PREFIX = "env."


class _Health:
    """A parsed `health` parameter."""

    def __init__(self, spec: str, status: int) -> None:
        self.spec = spec
        self.status = status
        self.argv: tuple[str, ...] = ()
        self.host = ""
        self.port = 0
        self.path = ""
        if spec.startswith("cmd:"):
            self.how = "cmd"
            self.argv = tuple(_split(spec[4:], "health"))
            if not self.argv:
                raise ResourceFailed("health 'cmd:' needs a command line", Severity.CONFIG)
        elif spec.startswith("tcp:"):
            self.how = "tcp"
            self.host, self.port = _host_port(spec[4:], spec)
        elif spec.startswith("http://"):
            self.how = "http"
            try:
                url = urllib.parse.urlsplit(spec)
                port = url.port
            except ValueError as error:
                raise ResourceFailed(f"health {spec!r}: {error}", Severity.CONFIG) from error
            if not url.hostname or port is None:
                raise ResourceFailed(
                    f"health {spec!r}: http://HOST:PORT/PATH needs a host and a port",
                    Severity.CONFIG,
                )
            self.host, self.port = url.hostname, port
            self.path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        else:
            raise ResourceFailed(
                f"health {spec!r}: expected cmd:<command>, tcp:HOST:PORT or http://HOST:PORT/PATH",
                Severity.CONFIG,
            )

    async def check(self, ctx: ResourceContext, env: Mapping[str, str], timeout_ms: int) -> None:
        """Raise ResourceFailed (SOFT) unless healthy now."""
        if self.how == "cmd":
            try:
                done = await ctx.run_command(self.argv, env=env, timeout_ms=timeout_ms)
            except SpawnFailed as error:
                raise ResourceFailed(f"health command: {error}", Severity.HARD) from error
            if done.timed_out:
                raise ResourceFailed(f"health command timed out after {timeout_ms} ms")
            assert done.status is not None
            if done.status.code != 0:
                said = done.stderr.decode(errors="replace").strip()[-200:]
                raise ResourceFailed(
                    f"health command {done.status.describe()}" + (f": {said}" if said else "")
                )
            return
        with trio.move_on_after(timeout_ms / 1000):
            try:
                stream = await trio.open_tcp_stream(self.host, self.port)
            except OSError as error:
                raise ResourceFailed(
                    f"health: cannot connect to {self.host}:{self.port}: {error}"
                ) from error
            async with stream:
                if self.how == "tcp":
                    return
                status = await _http_status(stream, self.host, self.port, self.path)
            if status != self.status:
                raise ResourceFailed(
                    f"health: GET {self.spec} answered {status}, not {self.status}"
                )
            return
        raise ResourceFailed(f"health: {self.spec} did not answer within {timeout_ms} ms")


async def _http_status(stream: trio.SocketStream, host: str, port: int, path: str) -> int:
    request = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    try:
        await stream.send_all(request.encode("latin-1"))
        received = b""
        while b"\r\n" not in received and len(received) < MAX_HTTP_RESPONSE_BYTES:
            chunk = await stream.receive_some(MAX_HTTP_RESPONSE_BYTES - len(received))
            if not chunk:
                break
            received += chunk
    except (OSError, trio.BrokenResourceError) as error:
        raise ResourceFailed(f"health: {host}:{port}: {error}") from error
    status_line = received.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        raise ResourceFailed(f"health: {host}:{port} answered no HTTP status line")
    try:
        return int(status_line[1])
    except ValueError:
        raise ResourceFailed(f"health: {host}:{port} answered {status_line[1]!r}") from None


def _split(line: str, what: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as error:
        raise ResourceFailed(f"{what}: cannot split {line!r}: {error}", Severity.CONFIG) from error


def _host_port(text: str, spec: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ResourceFailed(f"health {spec!r}: expected tcp:HOST:PORT", Severity.CONFIG)
    return host, int(port)


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ResourceFailed(f"{name} {text!r} is not a whole number", Severity.CONFIG) from None
    if not low <= value <= high:
        raise ResourceFailed(f"{name} {value} is not within {low}..{high}", Severity.CONFIG)
    return value


class _Config:
    """The parameters of one process resource, checked."""

    def __init__(self, params: Mapping[str, str]) -> None:
        unknown = [
            name for name in params if name not in KNOWN_PARAMS and not name.startswith(ENV_PREFIX)
        ]
        if unknown:
            raise ResourceFailed(
                f"unknown parameter {unknown[0]!r} (known: {', '.join(KNOWN_PARAMS)}, env.NAME)",
                Severity.CONFIG,
            )
        command = params.get("command", "")
        if not command.strip():
            raise ResourceFailed("the parameter 'command' is required", Severity.CONFIG)
        self.argv = tuple(_split(command, "command"))
        if not self.argv:
            raise ResourceFailed("the parameter 'command' is empty", Severity.CONFIG)
        self.cwd = params.get("cwd") or None
        self.env: dict[str, str] = {}
        for name, value in params.items():
            if name.startswith(ENV_PREFIX):
                var = name[len(ENV_PREFIX) :]
                if not var or "=" in var or "\0" in var or "\0" in value:
                    raise ResourceFailed(f"{name!r} names no variable", Severity.CONFIG)
                self.env[var] = value
        self.start_grace_ms = _int_param(params, "start_grace_ms", 0, 0, 24 * 3_600_000)
        status = _int_param(params, "health_status", 200, 100, 599)
        health = params.get("health", "")
        self.health = _Health(health, status) if health else None


class ProcessKind:
    """The "process" resource type (see the module's docstring)."""

    name = "process"

    def __init__(self) -> None:
        self._children: dict[str, tuple[int, Child]] = {}  # key -> (epoch, child)

    def check(self, params: Mapping[str, str]) -> None:
        _Config(params)

    async def start(self, ctx: ResourceContext) -> None:
        """Cancellation (the executor's timeout): whatever was spawned stays filed under
        the key, for the stop that follows."""
        config = _Config(ctx.params)
        if ctx.supervisor.alive(ctx.key):
            killed = await ctx.supervisor.kill_key_and_wait(ctx.key)
            log.warning("%s: killed %d processes left from before its start", ctx.key, killed)
        self._children.pop(ctx.key, None)
        try:
            child = await ctx.spawn(config.argv, env=config.env, cwd=config.cwd)
        except SpawnFailed as error:
            severity = Severity.SOFT if error.problem == SpawnProblem.OS_ERROR else Severity.HARD
            raise ResourceFailed(str(error), severity) from error
        self._children[ctx.key] = (ctx.epoch, child)
        if config.start_grace_ms:
            with trio.move_on_after(config.start_grace_ms / 1000):
                status = await child.wait()
                raise ResourceFailed(f"it {status.describe()} during its start")
        if config.health is not None:
            while True:
                if child.status is not None:
                    raise ResourceFailed(f"it {child.status.describe()} during its start")
                try:
                    await config.health.check(ctx, config.env, HEALTH_TIMEOUT_MS)
                    break
                except ResourceFailed as failure:
                    if failure.severity != Severity.SOFT:
                        raise
                    await trio.sleep(HEALTH_POLL_MS / 1000)
        if child.status is not None:
            raise ResourceFailed(f"it {child.status.describe()} during its start")

    async def monitor(self, ctx: ResourceContext) -> None:
        """Cancellation: only a health check may be under way (a `cmd:` one is killed)."""
        config = _Config(ctx.params)
        child = self._child(ctx)
        if child.status is not None:
            raise ResourceFailed(f"it {child.status.describe()}")
        if config.health is not None:
            await config.health.check(ctx, config.env, min(HEALTH_TIMEOUT_MS, ctx.timeout_ms))

    async def stop(self, ctx: ResourceContext) -> None:
        """Cancellation: the process is killed (SIGKILL) before Cancelled propagates; the
        executor then kills what is left under the key."""
        entry = self._children.pop(ctx.key, None)
        if entry is not None and entry[1].status is None:
            await ctx.supervisor.stop(entry[1], ctx.timeout_ms)
        await ctx.supervisor.kill_key_and_wait(ctx.key)

    async def watch(self, ctx: ResourceContext) -> str:
        """Returns how the process started under `ctx.epoch` ended, once it did.
        Cancellation: stops the watching only."""
        child = self._child(ctx)
        status = await child.wait()
        return f"the process {status.describe()}"

    def _child(self, ctx: ResourceContext) -> Child:
        entry = self._children.get(ctx.key)
        if entry is None or entry[0] != ctx.epoch:
            raise ResourceFailed(f"not running here under epoch {ctx.epoch}")
        return entry[1]
