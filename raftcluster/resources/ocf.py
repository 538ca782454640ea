"""`OcfKind`: resources run by OCF resource agents (the Open Cluster Framework's agents,
as Pacemaker runs them: Debian's `resource-agents`, or your own).

An agent is an executable called with one argument, the action (`start`, `stop`,
`monitor`, `validate-all`, `meta-data`); it reads its parameters from the environment
and answers with its exit code. The resource's parameters (docs/groups.md, "Resource
type `ocf`"):

    agent      an absolute path, or `provider:type` (`ocf:provider:type` too), found at
               $OCF_ROOT/resource.d/<provider>/<type>
    ocf_root   OCF_ROOT (else the node's environment's OCF_ROOT, else /usr/lib/ocf)
    NAME       any other: passed as OCF_RESKEY_NAME (ASCII letters, digits and `_`;
               `CRM_meta_*` is reserved for what we set ourselves)

Every action's environment (on top of the node's and `ctx.env`: RAFTCLUSTER_EPOCH...):
OCF_ROOT, OCF_RA_VERSION_MAJOR=1, OCF_RA_VERSION_MINOR=0, OCF_RESOURCE_INSTANCE
("<group>:<resource>": unique on the node, and free of `/` because agents build file
names from it), OCF_RESOURCE_TYPE, OCF_RESOURCE_PROVIDER (for `provider:type` agents),
OCF_RESKEY_CRM_meta_timeout (the action's timeout in ms) and OCF_RESKEY_CRM_meta_interval
(the monitor interval in ms for `monitor`, else 0), as Pacemaker sets them. On a node not
running as root whose environment has no HA_RSCTMP, HA_RSCTMP is a private directory of
ours (`rsctmp_dir`): Debian's agents keep their state there, and their default
(/run/resource-agents) is writable by root only.

Actions and exit codes (OCF 1.0):
    start     validate-all first (exit 3, unimplemented, is taken as "nothing to
              check"), then start: 0 is success.
    monitor   0 is running; 7 (not running) is a SOFT failure.
    stop      0 or 7 is success. A failed stop raises ResourceFailed: the executor then
              kills the resource's sessions (it relies on that; we do not kill here).
    Any failure: 1 -> SOFT; 2 (invalid arguments), 3 (unimplemented), 4 (insufficient
    privileges), 5 (not installed) -> HARD (not on this node); 6 (not configured) ->
    CONFIG (on no node); 8, 9 (promoted roles: not supported) and any other code or a
    signal -> SOFT. An action past its timeout is a SOFT failure; the supervisor has
    already killed its session. A missing or non-executable agent is HARD at the action
    (it may exist on other nodes): `check` validates syntax only.

A failure's detail: "ocf agent <agent> <action>: <meaning>", then the agent's reason:
its last `ocf-exit-reason:` line on stderr, else the last non-empty line of stderr,
printable characters only, the whole at most 512 characters. Nothing else of its output
matters (it is in the resource's log files).

`meta_data(source)` returns an agent's XML description; `parse_meta_data(xml)` lists its
parameters and actions, refusing any DTD internal subset or entity declaration.
"""

from __future__ import annotations

import enum
import math
import os
import re
import stat
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
import trio

from raftcluster.resources.kind import ResourceContext, ResourceFailed, Severity
from raftcluster.supervisor.children import Completed, SpawnFailed, Supervisor
from statemachine.errors import ClusterError

DEFAULT_OCF_ROOT = "/usr/lib/ocf"
AGENT_PARAM = "agent"
OCF_ROOT_PARAM = "ocf_root"
RESERVED_PREFIX = "CRM_meta_"  # the cluster manager's meta attributes (we set them)
MAX_DETAIL_CHARS = 512  # what a report may say of a failure (MAX_DETAIL_CHARS in groups)
# An agent's meta-data is a few KiB (Debian's largest is ~30 KiB); the supervisor keeps at
# most its capture bound (64 KiB) of stdout, and a truncated answer is refused.
MAX_META_DATA_BYTES = 64 * 1024
META_DATA_TIMEOUT_MS = 5_000  # Pacemaker's usual meta-data timeout
INSTANCE_SEPARATOR = ":"  # OCF_RESOURCE_INSTANCE = group + ":" + resource
EXIT_REASON_PREFIX = b"ocf-exit-reason:"
_PARAM_NAME = re.compile(r"[A-Za-z0-9_]+")
_AGENT_PART = re.compile(r"[A-Za-z0-9_.+-]+")  # a provider's or a type's name


class OcfExit(enum.IntEnum):
    """OCF's exit codes (ocf-returncodes)."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9


# What each code means to us, when it is a failure, and how far the failure reaches.
_MEANINGS: dict[int, tuple[str, Severity]] = {
    OcfExit.SUCCESS: ("succeeded, where that is a failure", Severity.SOFT),
    OcfExit.ERR_GENERIC: ("generic error", Severity.SOFT),
    OcfExit.ERR_ARGS: ("invalid arguments", Severity.HARD),
    OcfExit.ERR_UNIMPLEMENTED: ("action not implemented", Severity.HARD),
    OcfExit.ERR_PERM: ("insufficient privileges", Severity.HARD),
    OcfExit.ERR_INSTALLED: ("not installed on this node", Severity.HARD),
    OcfExit.ERR_CONFIGURED: ("not configured (on no node can it run)", Severity.CONFIG),
    OcfExit.NOT_RUNNING: ("not running", Severity.SOFT),
    OcfExit.RUNNING_PROMOTED: (
        "running promoted (promotable resources are not supported)",
        Severity.SOFT,
    ),
    OcfExit.FAILED_PROMOTED: (
        "failed promoted (promotable resources are not supported)",
        Severity.SOFT,
    ),
}


class InvalidMetaData(ClusterError, ValueError):
    """An agent's meta-data is not a description we accept (not UTF-8, too large, not
    XML, a DTD internal subset or an entity, or no <resource-agent> root)."""


@attrs.frozen
class Agent:
    """An agent resolved from a resource's parameters (no file looked at yet)."""

    path: str  # absolute
    provider: str  # "" for an agent given by its path
    type: str  # the file's name for an agent given by its path
    ocf_root: str
    spec: str  # the `agent` parameter as given (it names the agent in details)


def parse_agent(spec: str) -> tuple[str, str] | None:
    """`(provider, type)` for "provider:type" or "ocf:provider:type"; None for an
    absolute path. Raises ResourceFailed(CONFIG) for anything else."""
    if not spec:
        raise ResourceFailed(f"the ocf parameter {AGENT_PARAM!r} is empty", Severity.CONFIG)
    if "\0" in spec:
        raise ResourceFailed(f"the ocf agent {spec!r} holds a NUL character", Severity.CONFIG)
    if spec.startswith("/"):
        return None
    parts = spec.split(":")
    if len(parts) == 3 and parts[0] == "ocf":
        parts = parts[1:]
    if len(parts) != 2 or not all(
        _AGENT_PART.fullmatch(part) and part not in (".", "..") for part in parts
    ):
        raise ResourceFailed(
            f"the ocf agent {spec!r} is neither an absolute path nor provider:type "
            "(letters, digits, '.', '_', '+' or '-'; e.g. ocf:heartbeat:Dummy)",
            Severity.CONFIG,
        )
    return parts[0], parts[1]


def resolve_agent(params: Mapping[str, str], environ: Mapping[str, str]) -> Agent:
    """The agent a resource's parameters name, with its OCF_ROOT (`params["ocf_root"]`,
    else `environ["OCF_ROOT"]`, else /usr/lib/ocf). Raises ResourceFailed(CONFIG) for
    parameters that can never name one; looks at no file."""
    if AGENT_PARAM not in params:
        raise ResourceFailed(
            f"an ocf resource needs the parameter {AGENT_PARAM!r} "
            "(an absolute path, or provider:type)",
            Severity.CONFIG,
        )
    spec = params[AGENT_PARAM]
    named = parse_agent(spec)
    ocf_root = params.get(OCF_ROOT_PARAM) or environ.get("OCF_ROOT") or DEFAULT_OCF_ROOT
    if not os.path.isabs(ocf_root) or "\0" in ocf_root:
        raise ResourceFailed(f"OCF_ROOT {ocf_root!r} is not an absolute path", Severity.CONFIG)
    if named is None:
        return Agent(
            path=spec, provider="", type=os.path.basename(spec), ocf_root=ocf_root, spec=spec
        )
    provider, type_ = named
    path = os.path.join(ocf_root, "resource.d", provider, type_)
    return Agent(path=path, provider=provider, type=type_, ocf_root=ocf_root, spec=spec)


def check_params(params: Mapping[str, str]) -> None:
    """Raise ResourceFailed(CONFIG) for parameters that can never work (syntax only)."""
    resolve_agent(params, {})
    for name, value in params.items():
        if not _PARAM_NAME.fullmatch(name):
            raise ResourceFailed(
                f"ocf parameter {name[:64]!r}: a name is ASCII letters, digits and '_' "
                "(it becomes the environment variable OCF_RESKEY_<name>)",
                Severity.CONFIG,
            )
        if name.startswith(RESERVED_PREFIX):
            raise ResourceFailed(
                f"ocf parameter {name!r}: {RESERVED_PREFIX}* is set by raftcluster itself",
                Severity.CONFIG,
            )
        if "\0" in value:
            raise ResourceFailed(f"ocf parameter {name!r} holds a NUL character", Severity.CONFIG)


def check_installed(agent: Agent) -> None:
    """Raise ResourceFailed(HARD) unless the agent is an executable file on this node."""
    try:
        mode = os.stat(agent.path).st_mode
    except OSError as e:
        raise ResourceFailed(
            f"ocf agent {agent.spec} is not installed on this node: {agent.path}: {e.strerror}",
            Severity.HARD,
        ) from e
    if not stat.S_ISREG(mode) or not os.access(agent.path, os.X_OK):
        raise ResourceFailed(
            f"ocf agent {agent.spec} is not an executable file on this node: {agent.path}",
            Severity.HARD,
        )


def rsctmp_dir(environ: Mapping[str, str], euid: int) -> str | None:
    """The HA_RSCTMP we set, or None to leave it to the node's environment (it has one)
    or to the agents' default (root: /run/resource-agents). Not root: a directory only
    this user may use, in XDG_RUNTIME_DIR if set (emptied at reboot, as HA_RSCTMP must
    be), else in the temporary directory, named for the user."""
    if environ.get("HA_RSCTMP") or euid == 0:
        return None
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):
        return os.path.join(runtime, "raftcluster-rsctmp")
    return os.path.join(tempfile.gettempdir(), f"raftcluster-rsctmp-{euid}")


def ensure_private_dir(path: str, euid: int) -> None:
    """Create `path` (mode 0700) if missing; raise ResourceFailed(HARD) unless it is then
    a directory (not a link) owned by `euid` that no one else may use: in a shared
    temporary directory, someone else could have made it first."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise ResourceFailed(f"HA_RSCTMP {path}: {e.strerror}", Severity.HARD) from e
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != euid or st.st_mode & 0o077:
        raise ResourceFailed(
            f"HA_RSCTMP {path} is not a private directory of uid {euid}", Severity.HARD
        )


def printable(raw: bytes | str, max_chars: int = MAX_DETAIL_CHARS) -> str:
    """`raw` decoded (UTF-8, errors replaced), every character that is not printable
    replaced by '?', cut to `max_chars` (ending "...")."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = "".join(c if c.isprintable() and c != "\ufffd" else "?" for c in text)
    if len(text) > max_chars:
        text = text[: max(max_chars - 3, 0)] + "..."
    return text


def exit_reason(stderr: bytes) -> str:
    """What an agent said of its failure: its last `ocf-exit-reason:` line, else the last
    non-empty line of its stderr (printable, bounded); "" if it said nothing."""
    lines = [line.strip() for line in stderr.splitlines()]
    for line in reversed(lines):
        if line.startswith(EXIT_REASON_PREFIX):
            reason = line[len(EXIT_REASON_PREFIX) :].strip()
            if reason:
                return printable(reason)
    for line in reversed(lines):
        if line:
            return printable(line)
    return ""


def failure(
    agent: str, action: str, completed: Completed, timeout_ms: int, accept: Iterable[int]
) -> ResourceFailed | None:
    """None if the action's end is one of `accept`, else the ResourceFailed it means."""
    status = completed.status
    if status is None:
        return ResourceFailed(
            printable(f"ocf agent {agent} {action} timed out after {timeout_ms} ms"),
            Severity.SOFT,
        )
    if status.code is not None and status.code in set(accept):
        return None
    if status.code is None:
        meaning, severity = status.describe(), Severity.SOFT
    elif status.code in _MEANINGS:
        text, severity = _MEANINGS[status.code]
        meaning = f"exit {status.code} ({OcfExit(status.code).name}: {text})"
    else:
        meaning, severity = f"exit {status.code} (not an OCF exit code)", Severity.SOFT
    detail = f"ocf agent {agent} {action}: {meaning}"
    reason = exit_reason(completed.stderr)
    if reason:
        detail += f": {reason}"
    return ResourceFailed(printable(detail), severity)


def instance_name(group: str, resource: str) -> str:
    """OCF_RESOURCE_INSTANCE of a group's resource."""
    return f"{group}{INSTANCE_SEPARATOR}{resource}"


def agent_env(
    agent: Agent,
    params: Mapping[str, str],
    *,
    instance: str,
    timeout_ms: int,
    interval_ms: int,
    rsctmp: str | None,
) -> dict[str, str]:
    """The OCF environment of one action (what goes on top of the node's and ctx.env)."""
    env = {
        "OCF_ROOT": agent.ocf_root,
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "0",
        "OCF_RESOURCE_INSTANCE": instance,
        "OCF_RESOURCE_TYPE": agent.type,
        "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
        "OCF_RESKEY_CRM_meta_interval": str(interval_ms),
    }
    if agent.provider:
        env["OCF_RESOURCE_PROVIDER"] = agent.provider
    if rsctmp is not None:
        env["HA_RSCTMP"] = rsctmp
    for name, value in params.items():
        if name not in (AGENT_PARAM, OCF_ROOT_PARAM):
            env[f"OCF_RESKEY_{name}"] = value
    return env


class OcfKind:
    """The `ocf` resource type. `environ` is the node's environment (the default OCF_ROOT
    and HA_RSCTMP come from it); by default the process's own, read at each action."""

    name = "ocf"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def check(self, params: Mapping[str, str]) -> None:
        """Raise ResourceFailed(CONFIG) for parameters that can never work. Syntax only:
        the agent may be installed on some nodes only, and is looked for at each action."""
        check_params(params)

    def _agent(self, ctx: ResourceContext) -> Agent:
        params = ctx.params
        check_params(params)
        agent = resolve_agent(params, self._env())
        check_installed(agent)
        return agent

    async def _run(
        self,
        ctx: ResourceContext,
        agent: Agent,
        action: str,
        deadline: float,
        accept: tuple[int, ...],
    ) -> int:
        """Run one action within what is left until `deadline` (trio time); return its
        exit code if accepted, else raise its ResourceFailed."""
        timeout_ms = math.ceil((deadline - trio.current_time()) * 1000)
        if timeout_ms <= 0:
            raise ResourceFailed(
                printable(f"ocf agent {agent.spec} {action} timed out: no time left"),
                Severity.SOFT,
            )
        euid = os.geteuid()
        rsctmp = rsctmp_dir(self._env(), euid)
        if rsctmp is not None:
            ensure_private_dir(rsctmp, euid)
        env = agent_env(
            agent,
            ctx.params,
            instance=instance_name(ctx.group, ctx.spec.name),
            timeout_ms=timeout_ms,
            interval_ms=ctx.spec.monitor_interval_ms if action == "monitor" else 0,
            rsctmp=rsctmp,
        )
        try:
            completed = await ctx.run_command((agent.path, action), env=env, timeout_ms=timeout_ms)
        except SpawnFailed as e:
            raise ResourceFailed(
                printable(f"ocf agent {agent.spec} {action}: {e}"), Severity.HARD
            ) from e
        failed = failure(agent.spec, action, completed, timeout_ms, accept)
        if failed is not None:
            raise failed
        assert completed.status is not None and completed.status.code is not None
        return completed.status.code

    def _deadline(self, ctx: ResourceContext) -> float:
        return trio.current_time() + ctx.timeout_ms / 1000

    async def start(self, ctx: ResourceContext) -> None:
        """validate-all, then start, both within the action's timeout. Raises
        ResourceFailed. Cancellation: the running action's session is killed."""
        deadline = self._deadline(ctx)
        agent = self._agent(ctx)
        accept = (OcfExit.SUCCESS, OcfExit.ERR_UNIMPLEMENTED)
        await self._run(ctx, agent, "validate-all", deadline, accept)
        await self._run(ctx, agent, "start", deadline, (OcfExit.SUCCESS,))

    async def stop(self, ctx: ResourceContext) -> None:
        """stop: 0 or 7 (not running) is success. Raises ResourceFailed otherwise (the
        executor then kills the resource's sessions). Cancellation: as start."""
        deadline = self._deadline(ctx)
        agent = self._agent(ctx)
        await self._run(ctx, agent, "stop", deadline, (OcfExit.SUCCESS, OcfExit.NOT_RUNNING))

    async def monitor(self, ctx: ResourceContext) -> None:
        """monitor: returns if 0 (running); raises ResourceFailed otherwise (7, not
        running, is SOFT). Cancellation: as start."""
        deadline = self._deadline(ctx)
        agent = self._agent(ctx)
        await self._run(ctx, agent, "monitor", deadline, (OcfExit.SUCCESS,))


@attrs.frozen
class AgentParameter:
    """One parameter an agent's meta-data declares."""

    name: str
    required: bool
    unique: bool
    type: str  # string, integer, boolean... ("" if not said)
    default: str | None
    shortdesc: str


@attrs.frozen
class AgentAction:
    """One action an agent's meta-data declares, with its advised timings ("20s"...)."""

    name: str
    timeout: str
    interval: str


@attrs.frozen
class AgentMetaData:
    """What `parse_meta_data` makes of an agent's meta-data."""

    name: str
    version: str
    shortdesc: str
    parameters: tuple[AgentParameter, ...]
    actions: tuple[AgentAction, ...]


def _text(element: ElementTree.Element | None) -> str:
    if element is None:
        return ""
    return printable(" ".join("".join(element.itertext()).split()), 1024)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def parse_meta_data(xml: bytes | str) -> AgentMetaData:
    """Parse an agent's meta-data. Refuses (InvalidMetaData) more than
    MAX_META_DATA_BYTES, text that is not UTF-8, a DTD internal subset or any entity
    declaration (so no entity can expand: the usual DOCTYPE with a SYSTEM id is accepted,
    and no external DTD is ever read), and XML whose root is not <resource-agent>."""
    raw = xml.encode("utf-8") if isinstance(xml, str) else xml
    if len(raw) > MAX_META_DATA_BYTES:
        raise InvalidMetaData(f"meta-data of {len(raw)} bytes, over {MAX_META_DATA_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidMetaData(f"meta-data is not UTF-8: {e}") from e
    if "<!ENTITY" in text:
        raise InvalidMetaData("meta-data declares an entity")
    doctype = text.find("<!DOCTYPE")
    if doctype >= 0 and "[" in text[doctype : text.find(">", doctype)]:
        raise InvalidMetaData("meta-data has a DTD internal subset")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as e:
        raise InvalidMetaData(f"meta-data is not well-formed XML: {e}") from e
    if root.tag != "resource-agent":
        raise InvalidMetaData(
            f"meta-data's root is <{printable(root.tag, 64)}>, not <resource-agent>"
        )
    parameters = []
    for element in root.iterfind("parameters/parameter"):
        content = element.find("content")
        parameters.append(
            AgentParameter(
                name=printable(element.get("name", ""), 128),
                required=_flag(element.get("required")),
                unique=_flag(element.get("unique")),
                type=printable(content.get("type", ""), 64) if content is not None else "",
                default=(
                    printable(content.get("default", ""), 1024)
                    if content is not None and "default" in content.attrib
                    else None
                ),
                shortdesc=_text(element.find("shortdesc")),
            )
        )
    actions = tuple(
        AgentAction(
            name=printable(element.get("name", ""), 64),
            timeout=printable(element.get("timeout", ""), 64),
            interval=printable(element.get("interval", ""), 64),
        )
        for element in root.iterfind("actions/action")
    )
    return AgentMetaData(
        name=printable(root.get("name", ""), 128),
        version=_text(root.find("version")) or printable(root.get("version", ""), 64),
        shortdesc=_text(root.find("shortdesc")),
        parameters=tuple(parameters),
        actions=actions,
    )


async def meta_data(
    source: ResourceContext | str,
    *,
    environ: Mapping[str, str] | None = None,
    ocf_root: str | None = None,
    timeout_ms: int = META_DATA_TIMEOUT_MS,
) -> str:
    """An agent's meta-data XML, checked by `parse_meta_data` (raises InvalidMetaData).

    `source`: a resource's context (its `agent` and `ocf_root` parameters; run under its
    key by its node's supervisor, within min(its timeout, `timeout_ms`)), or an agent as
    the `agent` parameter spells it (with `ocf_root`, else `environ`'s OCF_ROOT...), then
    run by a supervisor of its own in a temporary directory (for the command line).
    Raises ResourceFailed as an action does (a missing agent is HARD).

    Cancellation: the agent's session is killed (and a temporary supervisor ended)."""
    env_in = os.environ if environ is None else environ
    if isinstance(source, ResourceContext):
        params = source.params
        timeout_ms = min(timeout_ms, source.timeout_ms)
        instance = instance_name(source.group, source.spec.name)
    else:
        params = {AGENT_PARAM: source}
        if ocf_root is not None:
            params[OCF_ROOT_PARAM] = ocf_root
        instance = "meta-data"
    agent = resolve_agent(params, env_in)
    check_installed(agent)
    env = agent_env(agent, {}, instance=instance, timeout_ms=timeout_ms, interval_ms=0, rsctmp=None)
    argv = (agent.path, "meta-data")
    try:
        if isinstance(source, ResourceContext):
            completed = await source.run_command(argv, env=env, timeout_ms=timeout_ms)
        else:
            completed = await _run_alone(argv, env, timeout_ms)
    except SpawnFailed as e:
        raise ResourceFailed(
            printable(f"ocf agent {agent.spec} meta-data: {e}"), Severity.HARD
        ) from e
    failed = failure(agent.spec, "meta-data", completed, timeout_ms, (OcfExit.SUCCESS,))
    if failed is not None:
        raise failed
    if completed.truncated and len(completed.stdout) >= MAX_META_DATA_BYTES:
        raise InvalidMetaData(f"meta-data over {MAX_META_DATA_BYTES} bytes")
    parse_meta_data(completed.stdout)
    return completed.stdout.decode("utf-8")


async def _run_alone(argv: tuple[str, ...], env: Mapping[str, str], timeout_ms: int) -> Completed:
    """Run one command under a supervisor of its own (its logs in a temporary directory,
    removed after); everything it started is killed when it returns."""
    with tempfile.TemporaryDirectory(prefix="raftcluster-ocf-") as folder:
        supervisor = Supervisor(Path(folder))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.serve)
            completed = await supervisor.run_command(
                "meta-data", argv, env=env, timeout_ms=timeout_ms
            )
            nursery.cancel_scope.cancel()
        return completed
