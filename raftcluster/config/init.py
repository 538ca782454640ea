"""`raftcluster init`: write a cluster file and a secret file for a local cluster.

The file lists every node with one address on 127.0.0.1 (free ports, or consecutive
ports from `base_port`) and a data directory next to the file, and every timing and
limit setting, commented, with its default and meaning. The secret file (the nodes')
and the client secret file (the clients') each get 32 random bytes, mode 0600. Each
node's data directory is created and marked as prepared to found the new cluster
(`BOOTSTRAP`, raftcluster/node/identity.py): a node founds a cluster only from such a
directory that has never run. An existing cluster is never overwritten unless `force` is
given, which also wipes the data directories (and the client keys) of the cluster it
replaces.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path

from raftcluster.config.errors import ConfigError
from raftcluster.config.loader import CLUSTER_FILE, load_cluster
from raftcluster.config.schema import (
    CLUSTER_KEYS,
    FENCING_KEYS,
    GROUP_KEYS,
    LIMIT_KEYS,
    MAX_NODES,
    STATE_KEYS,
    TIMING_KEYS,
    TLS_KEYS,
    ClusterFile,
    Key,
)
from raftcluster.config.secret import write_secret
from raftcluster.node.identity import prepare_bootstrap
from raftcluster.transport.config import Address

LOCALHOST = "127.0.0.1"
SECRET_FILE = "secret"
CLIENT_SECRET_FILE = "client-secret"
CLIENT_KEYS_FILE = "client-keys.toml"


def init_cluster(
    directory: str | Path,
    *,
    nodes: int = 3,
    base_port: int | None = None,
    force: bool = False,
    cluster_id: str | None = None,
    settings: Mapping[str, int | bool | str] | None = None,
) -> ClusterFile:
    """Write `directory`/cluster.toml, `directory`/secret and `directory`/client-secret;
    return the loaded file.

    `settings` sets keys of the [cluster], [timing], [limits] and [groups] sections by their dotted
    names (``{"timing.election_timeout_ms": 500, "cluster.allow_fault_injection": True}``);
    the others are written commented out, with their defaults.

    Raises ConfigError: a cluster already there (without `force`), a node count out of
    range, a port of `base_port..` in use or out of range, a setting that is not one.
    """
    root = Path(directory).absolute()
    file = root / CLUSTER_FILE
    if not 1 <= nodes <= MAX_NODES:
        raise ConfigError(file, 0, "", f"--nodes {nodes}: a cluster has 1..{MAX_NODES} nodes")
    if file.exists() and not force:
        raise ConfigError(
            file, 0, "",
            "a cluster file is already there; use --force to replace the cluster "
            "(its data directories are wiped)",
        )  # fmt: skip
    chosen = dict(settings or {})
    known = {
        k.dotted for k in CLUSTER_KEYS[2:] + TIMING_KEYS + LIMIT_KEYS + GROUP_KEYS + FENCING_KEYS
    }
    for name in chosen:
        if name not in known:
            raise ConfigError(file, 0, name, f"not a setting init can write ({_list(known)})")
    ports = _ports(file, nodes, base_port)
    root.mkdir(parents=True, exist_ok=True)
    if force:
        _wipe(root, file, nodes)
    name = cluster_id or f"rc-{secrets.token_hex(4)}"
    addresses = [(i, Address(LOCALHOST, port)) for i, port in enumerate(ports, 1)]
    text = render(name, addresses, chosen)
    for name in (SECRET_FILE, str(chosen.get("cluster.client_secret_file", CLIENT_SECRET_FILE))):
        secret = root / name
        with contextlib.suppress(FileNotFoundError):
            secret.unlink()
        write_secret(secret)
    if force:
        with contextlib.suppress(FileNotFoundError):  # the replaced cluster's client keys
            (root / str(chosen.get("cluster.client_keys_file", CLIENT_KEYS_FILE))).unlink()
    tmp = file.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(file)
    cluster = load_cluster(file)
    for entry in cluster.nodes:  # only these directories may found the new cluster
        prepare_bootstrap(entry.data_dir, cluster.cluster_id, entry.id)
    return cluster


def _ports(file: Path, count: int, base_port: int | None) -> list[int]:
    if base_port is None:
        return free_ports(count)
    last = base_port + count - 1
    if base_port < 1 or last > 65535:
        raise ConfigError(file, 0, "", f"--base-port {base_port}: ports must be in 1..65535")
    for port in range(base_port, last + 1):
        if not port_is_free(LOCALHOST, port):
            raise ConfigError(
                file, 0, "", f"{LOCALHOST}:{port} is already in use; choose another --base-port"
            )
    return list(range(base_port, last + 1))


def free_ports(count: int) -> list[int]:
    """`count` distinct ports the system reports free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind((LOCALHOST, 0))
        return [s.getsockname()[1] for s in sockets]


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind `host`:`port` now (with SO_REUSEADDR, as nodes do)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wipe(root: Path, file: Path, nodes: int) -> None:
    """Remove the data directories of the cluster being replaced (only inside `root`)."""
    doomed = {root / f"node-{i}" for i in range(1, nodes + 1)}
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        old = tomllib.loads(file.read_text(encoding="utf-8"))
        for table in old.get("nodes", []):
            if isinstance(table, dict) and isinstance(table.get("data_dir"), str):
                doomed.add((root / table["data_dir"]).absolute())
    for path in sorted(doomed):
        if path.is_dir() and root in path.parents:
            shutil.rmtree(path)


def render(
    cluster_id: str, nodes: list[tuple[int, Address]], settings: Mapping[str, int | bool | str]
) -> str:
    """The text of a cluster file: the given nodes, `settings` set, every other setting
    commented out with its default."""
    out = [
        "# A raftcluster cluster file, written by `raftcluster init`.",
        "# Every node and client of the cluster reads it; docs/config.md describes each key.",
        "# Relative paths are relative to this file's directory.",
        "",
        "[cluster]",
        f'id = "{cluster_id}"',
        f'secret_file = "{SECRET_FILE}"  # 32 random bytes, mode 0600: keep it that way',
        *_settings(CLUSTER_KEYS[2:], settings),
        "# Times in milliseconds; the values commented out are the defaults.",
        "[timing]",
        *_settings(TIMING_KEYS, settings),
        "[limits]",
        *_settings(LIMIT_KEYS, settings),
        "# The cluster service (docs/groups-node.md): with [timing] election_timeout_ms,",
        "# node_down_after_ms must meet the timing rule's minimum.",
        "[groups]",
        *_settings(GROUP_KEYS, settings),
        "[fencing]",
        *_settings(FENCING_KEYS, settings),
        "# Your own state machine parts (docs/statemachine.md), the same on every node.",
        "[state]",
        *_settings(STATE_KEYS, settings),
        '# Mutual TLS under the secret handshake (docs/security.md, "TLS identities"): off',
        "# unless the [tls] line is uncommented. Certificates: CN node-<id> for nodes, CN",
        "# client-<NAME> for clients, all signed by ca_file.",
        "# [tls]",
        *_settings(TLS_KEYS, {}),
    ]
    for node_id, address in nodes:
        out += [
            "[[nodes]]",
            f"id = {node_id}",
            f'addresses = ["{address}"]  # peers and clients; several: bonded links',
            f'data_dir = "node-{node_id}"',
            "",
        ]
    return "\n".join(out)


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, 86)]


def _settings(keys: tuple[Key, ...], chosen: Mapping[str, int | bool | str]) -> list[str]:
    out = []
    for key in keys:
        out += _comment(key.doc[0].upper() + key.doc[1:].rstrip(".") + ".")
        if key.dotted in chosen:
            out.append(f"{key.name} = {_toml(chosen[key.dotted])}")
        else:
            out.append(f"# {key.name} = {_toml(key.default)}")
        out.append("")
    return out


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _list(names: set[str]) -> str:
    return ", ".join(sorted(names))
