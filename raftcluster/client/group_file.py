"""The group file (`raftcluster group apply FILE.toml`): parse it, and diff it against a cluster.

Pure: reading the file is the only I/O (`load_group_file`); `parse_group_file` takes the
text, `plan_apply` the file and the cluster's `GroupInfo`s and returns the commands that
make the cluster match the file. Nothing here talks to a cluster (raftcluster/client/
groups.py runs the plan).

    [[groups]]
    name = "web"
    online = true                 # default true
    preferred_owners = [1, 2]
    failback = "immediate"        # never | immediate | window | stable

    [[groups.resources]]
    name = "http"
    kind = "process"
    params = { command = "python3 -m http.server 8080" }
    monitor_interval_ms = 2000

Every other `GroupSpec` and `ResourceSpec` field is written by its name. Unknown keys,
values of the wrong type, parameter values that are not strings and specs the state
machine would refuse are all a `GroupFileError` naming the file, the group (and
resource) and the key: the whole file is checked before anything is written.

The plan (`plan_apply`): a group missing from the cluster is created (`CreateGroup` with
its `online`); one whose spec differs is updated (`UpdateGroup`); one whose `online`
differs is set online or offline; one equal in both is left alone (no command at all, so
applying a file twice writes nothing the second time). Groups in the cluster but not in
the file are left alone unless `prune` (then `DeleteGroup`). What the state machine
would refuse for a reason the cluster's state shows (resources changed while a group
runs, a pruned group that is not offline) is refused here, before any write.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from statemachine.codec import Message
from statemachine.errors import ClusterError, InvalidArgument
from statemachine.groups.messages import (
    CreateGroup,
    DeleteGroup,
    Failback,
    GroupInfo,
    GroupSpec,
    GroupState,
    ResourceSpec,
    SetGroupOffline,
    SetGroupOnline,
    UpdateGroup,
)

# A group file describes at most MAX_GROUPS groups of at most 32 resources with at most 64
# parameters of 4 KiB: 1 MiB is far above any real one, and bounds what is read.
MAX_GROUP_FILE_BYTES = 1024 * 1024


class GroupFileError(ClusterError):
    """A group file that cannot be applied: `path`, where in it (`where`: "groups[web]
    .resources[http]"), and why (`reason`)."""

    def __init__(self, path: str, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}" if where else f"{path}: {reason}")
        self.path = path
        self.where = where
        self.reason = reason


class Kind(enum.Enum):
    """How a field is written in the file (TOML) and on the command line (text)."""

    INT = "an integer"
    BOOL = "true or false"
    NAME = "a string"
    NODES = "a list of node ids"
    NAMES = "a list of group names"
    FAILBACK = "one of " + ", ".join(f.name.lower() for f in Failback)
    PARAMS = "a table of strings"


# Every GroupSpec field a file or `group set` may give, and how it is written.
GROUP_FIELDS: dict[str, Kind] = {
    "preferred_owners": Kind.NODES,
    "possible_owners": Kind.NODES,
    "anti_affinity": Kind.NAME,
    "priority": Kind.INT,
    "failover_threshold": Kind.INT,
    "failover_period_ms": Kind.INT,
    "failback": Kind.FAILBACK,
    "window_start_hour": Kind.INT,
    "window_end_hour": Kind.INT,
    "stable_ms": Kind.INT,
    "stickiness": Kind.INT,
    "start_after": Kind.NAMES,
    "colocate_with": Kind.NAME,
}
RESOURCE_FIELDS: dict[str, Kind] = {
    "kind": Kind.NAME,
    "params": Kind.PARAMS,
    "monitor_interval_ms": Kind.INT,
    "start_timeout_ms": Kind.INT,
    "stop_timeout_ms": Kind.INT,
    "monitor_timeout_ms": Kind.INT,
    "max_restarts": Kind.INT,
    "restart_window_ms": Kind.INT,
}
_GROUP_KEYS = ("name", "online", *GROUP_FIELDS, "resources")
_RESOURCE_KEYS = ("name", *RESOURCE_FIELDS)


@attrs.frozen
class GroupEntry:
    """One group of a file: its spec and whether it is wanted online."""

    spec: GroupSpec
    online: bool = True


@attrs.frozen
class GroupFile:
    """A parsed group file (`path` is only for messages)."""

    path: str
    groups: tuple[GroupEntry, ...]


@attrs.frozen
class ApplyPlan:
    """What applying a file does: the commands in order, and the names by outcome."""

    commands: tuple[Message, ...]
    created: tuple[str, ...]
    updated: tuple[str, ...]  # spec or `online` (or both) changed
    unchanged: tuple[str, ...]
    deleted: tuple[str, ...]  # only with prune
    left_alone: tuple[str, ...]  # in the cluster, not in the file, kept (no prune)


# -- reading -------------------------------------------------------------------------------


def load_group_file(path: str | Path) -> GroupFile:
    """Read and parse the group file at `path`. Raises GroupFileError."""
    where = str(path)
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_GROUP_FILE_BYTES + 1)
    except OSError as e:
        raise GroupFileError(where, "", f"cannot read it: {e.strerror}") from None
    if len(data) > MAX_GROUP_FILE_BYTES:
        raise GroupFileError(where, "", f"over {MAX_GROUP_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise GroupFileError(where, "", "not UTF-8 text") from None
    return parse_group_file(text, where)


def parse_group_file(text: str, path: str = "<group file>") -> GroupFile:
    """The groups `text` (TOML) describes. Raises GroupFileError naming `path`."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GroupFileError(path, "", f"not valid TOML: {e}") from None
    _no_unknown(path, "", document, ("groups",))
    tables = document.get("groups", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise GroupFileError(path, "groups", "must be an array of tables ([[groups]])")
    entries: list[GroupEntry] = []
    seen: set[str] = set()
    for i, table in enumerate(tables):
        entry = _group(path, i, table)
        if entry.spec.name in seen:
            raise GroupFileError(path, f"groups[{entry.spec.name}]", "the group is given twice")
        seen.add(entry.spec.name)
        entries.append(entry)
    return GroupFile(path, tuple(entries))


def _group(path: str, index: int, table: dict[str, Any]) -> GroupEntry:
    name = table.get("name")
    if not isinstance(name, str):
        raise GroupFileError(path, f"groups[{index}]", "'name' (a string) is required")
    where = f"groups[{name}]"
    _no_unknown(path, where, table, _GROUP_KEYS)
    online = table.get("online", True)
    if not isinstance(online, bool):
        raise GroupFileError(path, where, f"online: {_shown(online)} is not {Kind.BOOL.value}")
    fields = {
        key: from_toml(path, where, key, kind, table[key])
        for key, kind in GROUP_FIELDS.items()
        if key in table
    }
    resources = table.get("resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise GroupFileError(path, where, "resources: must be an array of tables")
    fields["resources"] = tuple(_resource(path, where, i, r) for i, r in enumerate(resources))
    try:
        spec = GroupSpec(name, **fields)
    except (InvalidArgument, ValueError, TypeError) as e:
        raise GroupFileError(path, where, str(e)) from None
    return GroupEntry(spec, online)


def _resource(path: str, group: str, index: int, table: dict[str, Any]) -> ResourceSpec:
    name = table.get("name")
    if not isinstance(name, str):
        raise GroupFileError(path, f"{group}.resources[{index}]", "'name' (a string) is required")
    where = f"{group}.resources[{name}]"
    _no_unknown(path, where, table, _RESOURCE_KEYS)
    if "kind" not in table:
        raise GroupFileError(path, where, "'kind' is required (process, ocf, ...)")
    fields = {
        key: from_toml(path, where, key, kind, table[key])
        for key, kind in RESOURCE_FIELDS.items()
        if key in table
    }
    try:
        return ResourceSpec(name, **fields)
    except (InvalidArgument, ValueError, TypeError) as e:
        raise GroupFileError(path, where, str(e)) from None


def _no_unknown(path: str, where: str, table: Mapping[str, Any], known: Sequence[str]) -> None:
    for key in table:
        if key not in known:
            raise GroupFileError(
                path, where, f"unknown key {key!r} (the known keys: {', '.join(known)})"
            )


def _shown(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)  # fmt: skip
    text = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{text} ({kind})"


def from_toml(path: str, where: str, key: str, kind: Kind, value: Any) -> Any:
    """`value` (as TOML gave it) as the field's type; GroupFileError if it is not one."""

    def wrong(what: str = "") -> GroupFileError:
        return GroupFileError(path, where, f"{key}: {what or _shown(value)} is not {kind.value}")

    if kind == Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if kind == Kind.BOOL:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if kind == Kind.NAME:
        if not isinstance(value, str):
            raise wrong()
        return value
    if kind == Kind.NODES:
        ok = isinstance(value, list)
        if not ok or not all(isinstance(n, int) and not isinstance(n, bool) for n in value):
            raise wrong()
        return tuple(value)
    if kind == Kind.NAMES:
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise wrong()
        return tuple(value)
    if kind == Kind.FAILBACK:
        if not isinstance(value, str):
            raise wrong()
        return failback_named(value, lambda: wrong(repr(value)))
    assert kind == Kind.PARAMS
    if not isinstance(value, dict):
        raise wrong()
    for name, text in value.items():
        if not isinstance(text, str):
            raise GroupFileError(
                path, where, f"params.{name}: {_shown(text)}: parameter values must be "
                f"strings (write {name} = \"{text}\")",
            )  # fmt: skip
    return tuple(sorted(value.items()))


def failback_named(name: str, error: Callable[[], ClusterError]) -> Failback:
    """The Failback policy `name` (any case); `error()` is raised for another name."""
    try:
        return Failback[name.upper()]
    except KeyError:
        raise error() from None


# -- text (the command line) -----------------------------------------------------------------


def from_text(where: str, key: str, kind: Kind, text: str) -> Any:
    """A field's value written as text on a command line ("1,2" for a list, "" for an empty
    one). Raises InvalidArgument naming `where` and `key`."""

    def wrong() -> InvalidArgument:
        return InvalidArgument(f"{where}.{key}", f"{text!r} is not {kind.value}")

    if kind == Kind.INT:
        try:
            return int(text)
        except ValueError:
            raise wrong() from None
    if kind == Kind.BOOL:
        if text.lower() not in ("true", "false"):
            raise wrong()
        return text.lower() == "true"
    if kind == Kind.NAME:
        return text
    if kind == Kind.FAILBACK:
        return failback_named(text, wrong)
    items = [part.strip() for part in text.split(",") if part.strip()]
    if kind == Kind.NAMES:
        return tuple(items)
    if kind == Kind.NODES:
        try:
            return tuple(int(item) for item in items)
        except ValueError:
            raise wrong() from None
    raise wrong()  # params are given one by one (--param K=V)


# -- the diff --------------------------------------------------------------------------------

_STOPPED = (GroupState.OFFLINE, GroupState.FAILED)


def plan_apply(
    file: GroupFile, current: Sequence[GroupInfo], *, prune: bool, at_ms: int
) -> ApplyPlan:
    """The commands (each at `at_ms`) that make the cluster's groups (`current`) what
    `file` says. Raises GroupFileError, before anything is written, for a change the
    state machine would refuse given `current`."""
    existing = {info.spec.name: info for info in current}
    wanted = {entry.spec.name for entry in file.groups}
    commands: list[Message] = []
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for entry in file.groups:
        name = entry.spec.name
        info = existing.get(name)
        if info is None:
            commands.append(CreateGroup(entry.spec, entry.online, at_ms))
            created.append(name)
            continue
        changed = False
        if entry.spec != info.spec:
            if entry.spec.resources != info.spec.resources and info.state not in _STOPPED:
                raise GroupFileError(
                    file.path, f"groups[{name}]",
                    f"its resources differ from the cluster's, and the group is "
                    f"{info.state.name}: resources change only while a group is OFFLINE or "
                    f"FAILED (set it offline first: raftcluster group offline {name})",
                )  # fmt: skip
            commands.append(UpdateGroup(entry.spec, at_ms))
            changed = True
        if entry.online != info.online:
            command = SetGroupOnline if entry.online else SetGroupOffline
            commands.append(command(name, at_ms))
            changed = True
        (updated if changed else unchanged).append(name)
    others = sorted(set(existing) - wanted)
    deleted: list[str] = []
    if prune:
        running = [n for n in others if existing[n].state not in _STOPPED]
        if running:
            states = ", ".join(f"{n} ({existing[n].state.name})" for n in running)
            raise GroupFileError(
                file.path, "",
                f"--prune would delete groups that are not offline: {states}; set them "
                "offline first (raftcluster group offline NAME) and wait until they are "
                "OFFLINE",
            )  # fmt: skip
        commands.extend(DeleteGroup(n, at_ms) for n in others)
        deleted = others
    return ApplyPlan(
        tuple(commands),
        tuple(created),
        tuple(updated),
        tuple(unchanged),
        tuple(deleted),
        () if prune else tuple(others),
    )
