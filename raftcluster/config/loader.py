"""Load a cluster file (TOML, read with the standard library's `tomllib`) into a `ClusterFile`.

Every problem raises `ConfigError` naming the file, the line and the key: `tomllib`
gives the line of a syntax error; for a value that parses but is not acceptable (an
unknown key, a wrong type, a number out of range, a duplicate id or address, a missing
or unsafe secret file) the line is found by scanning the text for the key (`Locator`).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import attrs

from raftcluster.config.errors import ConfigError
from raftcluster.config.frames import frame_needs
from raftcluster.config.schema import (
    CLUSTER_KEYS,
    FENCING_KEYS,
    GROUP_KEYS,
    LIMIT_KEYS,
    MAX_NODES,
    NODE_KEYS,
    SECTIONS,
    STATE_KEYS,
    TIMING_KEYS,
    TLS_KEYS,
    ClusterFile,
    Fencing,
    Groups,
    Key,
    NodeEntry,
    NodeLimits,
    Timing,
    TlsFiles,
)
from raftcluster.config.secret import read_secret
from raftcluster.config.tls import check_ca
from raftcluster.groups.timing import min_node_down_after_ms
from raftcluster.loading import PartLoadError, split_path
from raftcluster.raft.config import RaftConfig
from raftcluster.transport.config import MAX_CLUSTER_ID_CHARS, MAX_LINKS, Address
from statemachine.cluster import BUILTIN_PARTS, MAX_PARTS
from statemachine.errors import InvalidArgument

MAX_FILE_BYTES = 1 << 20
MAX_USER_PARTS = MAX_PARTS - len(BUILTIN_PARTS)  # a state holds at most MAX_PARTS parts
CLUSTER_FILE = "cluster.toml"
_CLUSTER_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_CLUSTER_ID_CHARS}}}")
_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)$")

Path_ = tuple[
    str | int, ...
]  # a key's place: ("timing", "election_timeout_ms"), ("nodes", 1, "id")


def cluster_file_path(path: str | Path) -> Path:
    """`path` itself, or `path`/cluster.toml when it names a directory."""
    p = Path(path)
    return p / CLUSTER_FILE if p.is_dir() else p


def load_cluster(path: str | Path) -> ClusterFile:
    """Read and check the cluster file at `path` (a file, or a directory holding
    cluster.toml), and the secret file it names. Raises ConfigError."""
    file = cluster_file_path(path).absolute()
    text = _read_text(file)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = _AT_LINE.search(message)
        line = int(found[1]) if found else 0
        reason = _AT_LINE.sub("", message).strip()
        raise ConfigError(file, line, "", f"not valid TOML: {reason}") from None
    return _Reader(file, Locator(text)).cluster(document)


def _read_text(file: Path) -> str:
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            file, 0, "", "no such file (`raftcluster init DIR` writes DIR/cluster.toml)"
        ) from None
    except OSError as e:
        raise ConfigError(file, 0, "", f"cannot read: {e.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(file, 0, "", f"{len(data)} bytes; a cluster file is at most 1 MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(file, line, "", "not UTF-8 text") from None


class Locator:
    """Finds the line of a key in TOML text: the key's own line, else its table's header.

    A light scan, not a parser: it follows `[table]` and `[[array]]` headers and the
    `key =` lines under them, skipping comments and the inside of multi-line arrays.
    Good enough to point at a key in a file `tomllib` has already accepted.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[Path_, int] = {}
        table: Path_ = ()
        counts: dict[str, int] = {}
        depth = 0  # open brackets of a multi-line array value
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip() if '"' not in raw else raw.strip()
            if depth:
                depth = max(0, depth + line.count("[") - line.count("]"))
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("[["):
                name = line[2:].split("]]", 1)[0].strip()
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (name, index)
                self._lines.setdefault((name,), number)
                self._lines.setdefault(table, number)
            elif line.startswith("["):
                table = tuple(part.strip() for part in line[1:].split("]", 1)[0].split("."))
                self._lines.setdefault(table, number)
            elif "=" in line:
                key, value = line.split("=", 1)
                names = tuple(part.strip().strip("\"'") for part in key.split("."))
                self._lines.setdefault(table + names, number)
                depth = max(0, value.count("[") - value.count("]"))

    def line(self, path: Path_) -> int:
        """The line of `path`, else of its nearest enclosing table (0: not found)."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return 0


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class _Reader:
    def __init__(self, file: Path, where: Locator) -> None:
        self.file = file
        self.where = where

    def fail(self, path: Path_, reason: str) -> ConfigError:
        return ConfigError(self.file, self.where.line(path), dotted(path), reason)

    # -- the whole file ------------------------------------------------------------------

    def cluster(self, document: dict[str, Any]) -> ClusterFile:
        for name in document:
            if name not in SECTIONS:
                raise self.fail((name,), f"unknown section; the sections are {_list(SECTIONS)}")
        cluster = self.table(document, "cluster", required=True)
        self.known_keys(("cluster",), cluster, CLUSTER_KEYS)
        cluster_id = self.cluster_id(cluster)
        secret_name = self.value(("cluster", "secret_file"), cluster, str, "secret")
        allow_faults = self.value(("cluster", "allow_fault_injection"), cluster, bool, False)
        timing = Timing(**self.settings("timing", document, TIMING_KEYS))
        self.check_timing(timing)
        limits = NodeLimits(**self.settings("limits", document, LIMIT_KEYS))
        self.check_frames(limits)
        groups = Groups(**self.settings("groups", document, GROUP_KEYS))
        groups = self.check_groups(groups, timing)
        fencing = self.fencing(document)
        parts = self.parts(document)
        tls = self.tls(document)
        nodes = self.nodes(document)
        secret_file = self.resolve(secret_name)
        try:
            secret = read_secret(secret_file)
        except ConfigError as e:
            raise self.fail(("cluster", "secret_file"), f"{secret_file}: {e.reason}") from None
        client_secret_file, client_secret = self.client_secret(cluster, secret)
        keys_name = self.value(("cluster", "client_keys_file"), cluster, str, "client-keys.toml")
        return ClusterFile(
            path=self.file,
            cluster_id=cluster_id,
            secret_file=secret_file,
            secret=secret,
            allow_fault_injection=allow_faults,
            timing=timing,
            limits=limits,
            nodes=nodes,
            groups=groups,
            fencing=fencing,
            parts=parts,
            client_secret_file=client_secret_file,
            client_secret=client_secret,
            client_keys_file=self.resolve(keys_name),
            tls=tls,
        )

    def client_secret(self, cluster: dict[str, Any], secret: bytes) -> tuple[Path, bytes]:
        """The client secret's file and bytes: readable, and not the cluster secret."""
        path: Path_ = ("cluster", "client_secret_file")
        file = self.resolve(self.value(path, cluster, str, "client-secret"))
        try:
            client_secret = read_secret(file)
        except ConfigError as e:
            raise self.fail(
                path, f"{file}: {e.reason}; a cluster made before client credentials: run "
                f"`raftcluster client init-secret --cluster {self.file.parent}`",
            ) from None  # fmt: skip
        if client_secret == secret:
            raise self.fail(path, f"{file} holds the cluster secret; clients need their own")
        return file, client_secret

    def resolve(self, name: str) -> Path:
        return (self.file.parent / Path(name).expanduser()).absolute()

    def cluster_id(self, cluster: dict[str, Any]) -> str:
        path: Path_ = ("cluster", "id")
        value = self.value(path, cluster, str, None)
        if not _CLUSTER_ID.fullmatch(value):
            raise self.fail(
                path,
                f"{value!r}: use 1..{MAX_CLUSTER_ID_CHARS} letters, digits, '.', '_' or '-'",
            )
        return str(value)

    # -- generic checks ------------------------------------------------------------------

    def table(self, parent: dict[str, Any], name: str, *, required: bool) -> dict[str, Any]:
        value = parent.get(name)
        if value is None:
            if required:
                raise self.fail((name,), f"missing; the file needs a [{name}] table")
            return {}
        if not isinstance(value, dict):
            raise self.fail((name,), f"must be a table ([{name}]), not {_kind(value)}")
        return value

    def known_keys(self, path: Path_, table: dict[str, Any], keys: tuple[Key, ...]) -> None:
        names = [k.name for k in keys]
        for name in table:
            if name not in names:
                raise self.fail(path + (name,), f"unknown key; {dotted(path)} takes {_list(names)}")

    def value(self, path: Path_, table: dict[str, Any], kind: type, default: object) -> Any:
        name = path[-1]
        assert isinstance(name, str)
        if name not in table:
            if default is None:
                raise self.fail(path, "missing (required)")
            return default
        value = table[name]
        if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise self.fail(path, f"must be an integer, not {_kind(value)}")
        if kind is not int and not isinstance(value, kind):
            raise self.fail(path, f"must be {_kind_name(kind)}, not {_kind(value)}")
        return value

    def settings(
        self, section: str, document: dict[str, Any], keys: tuple[Key, ...]
    ) -> dict[str, int]:
        table = self.table(document, section, required=False)
        self.known_keys((section,), table, keys)
        out = {}
        for key in keys:
            path: Path_ = (section, key.name)
            value = self.value(path, table, int, key.default)
            if not key.lo <= value <= key.hi:
                raise self.fail(path, f"{value} is outside {key.lo}..{key.hi}")
            out[key.name] = value
        return out

    def fencing(self, document: dict[str, Any]) -> Fencing:
        table = self.table(document, "fencing", required=False)
        self.known_keys(("fencing",), table, FENCING_KEYS)
        text = self.value(("fencing", "command"), table, str, "")
        try:
            argv = tuple(shlex.split(text))
        except ValueError as e:
            raise self.fail(("fencing", "command"), f"{text!r}: {e}") from None
        path: Path_ = ("fencing", "timeout_ms")
        timeout = self.value(path, table, int, 10_000)
        if not 1 <= timeout <= 3_600_000:
            raise self.fail(path, f"{timeout} is outside 1..3600000")
        return Fencing(command=argv, timeout_ms=timeout)

    def parts(self, document: dict[str, Any]) -> tuple[str, ...]:
        """[state] parts: import paths, checked for their form here; the modules are
        imported by whoever runs a node (`node_settings`), not by every reader."""
        table = self.table(document, "state", required=False)
        self.known_keys(("state",), table, STATE_KEYS)
        path: Path_ = ("state", "parts")
        values = self.value(path, table, list, [])
        if len(values) > MAX_USER_PARTS:
            raise self.fail(path, f"{len(values)} parts; at most {MAX_USER_PARTS}")
        for value in values:
            if not isinstance(value, str):
                raise self.fail(path, f'each part is a "module:NAME" string, not {_kind(value)}')
            try:
                split_path(value)
            except PartLoadError as e:
                raise self.fail(path, str(e)) from None
            if values.count(value) > 1:
                raise self.fail(path, f"{value!r} appears twice")
        return tuple(values)

    def tls(self, document: dict[str, Any]) -> TlsFiles | None:
        """[tls]: present, TLS is on. Paths are resolved here and the CA is checked (every
        reader needs it); a node's own certificate and key are read where that node runs
        (`raftcluster.config.tls.node_tls`), a client's where it runs."""
        if "tls" not in document:
            return None
        table = self.table(document, "tls", required=False)
        self.known_keys(("tls",), table, TLS_KEYS)
        names = {k.name: self.value(("tls", k.name), table, str, k.default) for k in TLS_KEYS}
        for name in ("ca_file", "cert_file", "key_file"):
            if not names[name]:
                raise self.fail(("tls", name), "empty; it names a file")
        if bool(names["client_cert_file"]) != bool(names["client_key_file"]):
            raise self.fail(
                ("tls", "client_key_file"), "client_cert_file and client_key_file go together"
            )
        ca = self.resolve(names["ca_file"])
        problem = check_ca(ca)
        if problem is not None:
            raise self.fail(("tls", "ca_file"), f"{ca}: {problem}")
        client_cert, client_key = names["client_cert_file"], names["client_key_file"]
        return TlsFiles(
            ca_file=ca,
            cert_file=str(self.resolve(names["cert_file"])),
            key_file=str(self.resolve(names["key_file"])),
            client_cert_file=self.resolve(client_cert) if client_cert else None,
            client_key_file=self.resolve(client_key) if client_key else None,
        )

    def check_timing(self, timing: Timing) -> None:
        if timing.election_timeout_ms < 2 * timing.heartbeat_interval_ms:
            raise self.fail(
                ("timing", "election_timeout_ms"),
                f"{timing.election_timeout_ms} must be at least twice heartbeat_interval_ms "
                f"({timing.heartbeat_interval_ms}), or followers campaign between heartbeats",
            )
        if timing.idle_timeout_ms <= 2 * timing.keepalive_interval_ms:
            raise self.fail(
                ("timing", "idle_timeout_ms"),
                f"{timing.idle_timeout_ms} must exceed twice keepalive_interval_ms "
                f"({timing.keepalive_interval_ms}), or idle links are closed between keepalives",
            )

    def check_frames(self, limits: NodeLimits) -> None:
        """Every kind of traffic fits in a frame (`raftcluster.config.frames`): else a
        follower needing a snapshot, say, would never catch up. Names both settings."""
        max_entries = RaftConfig(node_id=1).max_entries_per_msg
        needs = frame_needs(limits.max_snapshot_chunk_bytes, limits.max_append_bytes, max_entries)
        for need in needs:
            if need.frame_bytes > limits.max_frame_bytes:
                raise self.fail(
                    ("limits", "max_frame_bytes"),
                    f"{limits.max_frame_bytes} is smaller than {need.what} sized by "
                    f"{need.setting}: {need.frame_bytes} bytes; raise limits.max_frame_bytes "
                    "or lower the other",
                )

    def check_groups(self, groups: Groups, timing: Timing) -> Groups:
        """The timing rule (docs/groups-node.md): a node declared down has surely fenced.
        `node_down_after_ms` 0 becomes the rule's minimum, rounded up to 100 ms."""
        if groups.fence_after_ms < 2 * groups.heartbeat_interval_ms:
            raise self.fail(
                ("groups", "fence_after_ms"),
                f"{groups.fence_after_ms} must be at least twice [groups] heartbeat_interval_ms "
                f"({groups.heartbeat_interval_ms}), or one lost heartbeat fences a healthy node",
            )
        minimum = min_node_down_after_ms(
            fence_after_ms=groups.fence_after_ms,
            election_timeout_ms=timing.election_timeout_ms,
            kill_ms=groups.kill_ms,
            heartbeat_interval_ms=groups.heartbeat_interval_ms,
            max_drift_ppm=groups.max_drift_ppm,
        )
        if groups.node_down_after_ms == 0:
            return attrs.evolve(groups, node_down_after_ms=-(-minimum // 100) * 100)
        if groups.node_down_after_ms < minimum:
            raise self.fail(
                ("groups", "node_down_after_ms"),
                f"{groups.node_down_after_ms} is below the minimum {minimum} the timing rule "
                f"allows: ceil((fence_after_ms {groups.fence_after_ms} + [timing] "
                f"election_timeout_ms {timing.election_timeout_ms} + kill_ms {groups.kill_ms}) "
                f"x (1e6 + max_drift_ppm {groups.max_drift_ppm}) / (1e6 - "
                f"{groups.max_drift_ppm})) + heartbeat_interval_ms "
                f"{groups.heartbeat_interval_ms}; a node declared down sooner may still run its "
                "groups (docs/groups-node.md); 0 picks the minimum",
            )
        return groups

    # -- [[nodes]] -----------------------------------------------------------------------

    def nodes(self, document: dict[str, Any]) -> tuple[NodeEntry, ...]:
        tables = document.get("nodes")
        if tables is None:
            raise self.fail(("nodes",), "missing; the file needs one [[nodes]] table per node")
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self.fail(("nodes",), "must be an array of tables ([[nodes]])")
        if not 1 <= len(tables) <= MAX_NODES:
            raise self.fail(("nodes",), f"{len(tables)} nodes; a cluster has 1..{MAX_NODES}")
        entries: list[NodeEntry] = []
        seen_addresses: dict[Address, int] = {}
        seen_dirs: dict[Path, int] = {}
        for index, table in enumerate(tables):
            entry = self.node(index, table)
            if any(e.id == entry.id for e in entries):
                raise self.fail(("nodes", index, "id"), f"node id {entry.id} appears twice")
            for address in entry.addresses:
                if address in seen_addresses:
                    other = seen_addresses[address]
                    raise self.fail(
                        ("nodes", index, "addresses"), f"{address} is node {other}'s address too"
                    )
                seen_addresses[address] = entry.id
            if entry.data_dir in seen_dirs:
                raise self.fail(
                    ("nodes", index, "data_dir"),
                    f"{entry.data_dir} is node {seen_dirs[entry.data_dir]}'s data directory too",
                )
            seen_dirs[entry.data_dir] = entry.id
            entries.append(entry)
        return tuple(entries)

    def node(self, index: int, table: dict[str, Any]) -> NodeEntry:
        base: Path_ = ("nodes", index)
        self.known_keys(base, table, NODE_KEYS)
        node_id = self.value(base + ("id",), table, int, None)
        id_key = NODE_KEYS[0]
        if not id_key.lo <= node_id <= id_key.hi:
            raise self.fail(base + ("id",), f"{node_id} is outside {id_key.lo}..{id_key.hi}")
        addresses = self.addresses(base + ("addresses",), table)
        data_dir = self.value(base + ("data_dir",), table, str, f"node-{node_id}")
        if not data_dir:
            raise self.fail(base + ("data_dir",), "empty")
        incarnation = self.value(base + ("incarnation",), table, int, 0)
        inc_key = NODE_KEYS[3]
        if not inc_key.lo <= incarnation <= inc_key.hi:
            raise self.fail(
                base + ("incarnation",), f"{incarnation} is outside {inc_key.lo}..{inc_key.hi}"
            )
        return NodeEntry(node_id, addresses, self.resolve(data_dir), incarnation)

    def addresses(self, path: Path_, table: dict[str, Any]) -> tuple[Address, ...]:
        values = self.value(path, table, list, None)
        if not 1 <= len(values) <= MAX_LINKS:
            raise self.fail(path, f"{len(values)} addresses; a node has 1..{MAX_LINKS}")
        out: list[Address] = []
        for value in values:
            if not isinstance(value, str):
                raise self.fail(path, f'each address is a "host:port" string, not {_kind(value)}')
            try:
                address = Address.parse(value)
            except InvalidArgument as e:
                raise self.fail(path, f"{value!r}: {e.reason}") from None
            if address.port == 0:
                raise self.fail(path, f"{value!r}: a node needs a fixed port (not 0)")
            if address in out:
                raise self.fail(path, f"{value!r} appears twice")
            out.append(address)
        return tuple(out)


def _kind(value: object) -> str:
    return _kind_name(type(value))


def _kind_name(kind: type) -> str:
    names = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return names.get(kind, kind.__name__)


def _list(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names)
