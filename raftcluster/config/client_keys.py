"""Named client keys: the file every node reads, and the key file each client holds.

The cluster's keys live in one TOML file (`cluster.client_keys_file`, default
DIR/client-keys.toml, mode 0600) that `raftcluster client add NAME [--read-only]` and
`client revoke NAME` rewrite atomically:

    [[keys]]
    name = "backup"
    secret = "9f2c..."          # hex, 32 random bytes
    read_only = true

Why a file and not the log: a node must check a client's credential in the handshake,
before it can know whether it leads or has applied anything, and a revocation must take
effect on every node even while the cluster has no quorum (the time one wants to shut a
leaked key out). The file is distributed with cluster.toml and the secrets, like them.

A node holds a `ClientKeyFile`: `lookup(name)` (the transport's `ClientKeys`) re-reads
the file when its identity (inode, size, mtime) changed, so a revoked key is refused at
the next handshake; `refresh()` does the same on a timer so the node can close the
connections a revoked key still holds (`Transport.revalidate_clients`). A file that
cannot be read or is not valid leaves no named key usable (it fails closed) and is
logged; the client secret is unaffected.

`add` also writes the client's own key file (name, secret, rights, the cluster id), which
the client passes as `--key-file` (or `raftcluster.connect(..., key_file=...)`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path

import attrs

from raftcluster.config.errors import ConfigError
from raftcluster.config.private_file import UnusableFile, read_small_file
from raftcluster.config.schema import ClusterFile
from raftcluster.config.secret import SECRET_BYTES
from raftcluster.config.tls import key_file_tls
from raftcluster.transport.config import MAX_SECRET_BYTES, MIN_SECRET_BYTES, TlsConfig
from raftcluster.transport.credentials import CLIENT_SECRET_NAME, ClientKey, check_key_name
from statemachine.errors import InvalidArgument

log = logging.getLogger("raftcluster.config")

MAX_KEYS = 1024  # named keys per cluster: bounds the file and every node's table
MAX_KEYS_FILE_BYTES = 1 << 20


@attrs.frozen
class KeyFileContent:
    """A client's key file: which cluster it is for, the key, and the client's TLS (its
    [tls] table: ca_file, cert_file, key_file; None: no table)."""

    cluster_id: str
    key: ClientKey
    tls: TlsConfig | None = attrs.field(default=None, eq=False)


def read_keys(path: Path) -> dict[str, ClientKey]:
    """The named keys in the cluster's key file (empty if it does not exist).
    Raises ConfigError naming the file and the problem."""
    try:
        text = _read_private(path)
    except FileNotFoundError:
        return {}
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, 0, "", f"not valid TOML: {e}") from None
    tables = document.get("keys", [])
    if set(document) - {"keys"} or not isinstance(tables, list):
        raise ConfigError(path, 0, "", "the file holds [[keys]] tables only")
    if len(tables) > MAX_KEYS:
        raise ConfigError(path, 0, "keys", f"{len(tables)} keys; at most {MAX_KEYS}")
    keys: dict[str, ClientKey] = {}
    for index, table in enumerate(tables):
        key = _key(path, f"keys[{index}]", table)
        if key.name in keys:
            raise ConfigError(path, 0, f"keys[{index}].name", f"{key.name!r} appears twice")
        keys[key.name] = key
    return keys


def write_keys(path: Path, keys: Mapping[str, ClientKey]) -> None:
    """Replace the cluster's key file with `keys` (atomically, mode 0600, synced)."""
    lines = [
        "# Named client keys, written by `raftcluster client add` and `client revoke`.",
        "# Every node reads this file (and re-reads it when it changes). Mode 0600.",
        "",
    ]
    for name in sorted(keys):
        key = keys[name]
        read_only = "true" if key.read_only else "false"
        lines += ["[[keys]]", f'name = "{name}"', f'secret = "{key.secret.hex()}"',
                  f"read_only = {read_only}", ""]  # fmt: skip
    _write_private(path, "\n".join(lines))


def add_key(cluster: ClusterFile, name: str, *, read_only: bool = False) -> ClientKey:
    """Add the named key to `cluster`'s key file and return it. Raises ConfigError (a
    bad name, a name already used, too many keys, an unreadable key file)."""
    path = _keys_path(cluster)
    try:
        check_key_name(name)
    except InvalidArgument as e:
        raise ConfigError(path, 0, "name", e.reason) from None
    keys = read_keys(path)
    if name in keys:
        raise ConfigError(path, 0, "name", f"a client key named {name!r} exists; revoke it first")
    if len(keys) >= MAX_KEYS:
        raise ConfigError(path, 0, "keys", f"the cluster has {MAX_KEYS} keys already")
    key = ClientKey(name, secrets.token_bytes(SECRET_BYTES), read_only)
    keys[name] = key
    write_keys(path, keys)
    return key


def revoke_key(cluster: ClusterFile, name: str) -> ClientKey:
    """Remove the named key from `cluster`'s key file; return it. ConfigError if absent."""
    path = _keys_path(cluster)
    keys = read_keys(path)
    key = keys.pop(name, None)
    if key is None:
        known = ", ".join(sorted(keys)) or "none"
        raise ConfigError(path, 0, "name", f"no client key named {name!r} (the keys: {known})")
    write_keys(path, keys)
    return key


def write_key_file(path: Path, cluster_id: str, key: ClientKey) -> None:
    """Write a client's key file (mode 0600); it must not exist yet."""
    if path.exists():
        raise ConfigError(path, 0, "", "already exists; choose another --out")
    read_only = "true" if key.read_only else "false"
    _write_private(
        path,
        f'# A raftcluster client key. Keep it private (mode 0600).\ncluster = "{cluster_id}"\n'
        f'name = "{key.name}"\nsecret = "{key.secret.hex()}"\nread_only = {read_only}\n',
    )


def read_key_file(path: Path) -> KeyFileContent:
    """A client's key file (from `write_key_file`). Raises ConfigError."""
    try:
        text = _read_private(path)
    except FileNotFoundError:
        why = "key file not found (`raftcluster client add` writes one)"
        raise ConfigError(path, 0, "", why) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, 0, "", f"not valid TOML: {e}") from None
    cluster_id = document.pop("cluster", None)
    if not isinstance(cluster_id, str):
        raise ConfigError(path, 0, "cluster", "missing: the key file names its cluster")
    tls_table = document.pop("tls", None)
    tls = None if tls_table is None else key_file_tls(path, tls_table)
    return KeyFileContent(cluster_id, _key(path, "", document), tls)


class ClientKeyFile:
    """The credentials a node accepts from clients: the client secret and the named keys
    of the key file, re-read when the file changes (see the module docstring)."""

    def __init__(self, client_secret: bytes | None, path: Path | None) -> None:
        self._client_secret = client_secret
        self._path = path
        self._identity: tuple[int, int, int] | None = None
        self._keys: dict[str, ClientKey] = {}
        # Counts the changes of the keys, whoever noticed them (a handshake or the timer),
        # so a watcher can tell whether it must revalidate the open connections.
        self.generation = 0
        self.refresh()

    def lookup(self, name: str) -> ClientKey | None:
        if name == CLIENT_SECRET_NAME:
            secret = self._client_secret
            return None if secret is None else ClientKey(CLIENT_SECRET_NAME, secret)
        self.refresh()
        return self._keys.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._keys))

    def refresh(self) -> bool:
        """Re-read the key file if it changed; whether the keys changed."""
        if self._path is None:
            return False
        try:
            info = os.stat(self._path)
            identity: tuple[int, int, int] | None = (info.st_ino, info.st_size, info.st_mtime_ns)
        except FileNotFoundError:
            identity = None
        except OSError as e:
            return self._replace({}, f"cannot stat {self._path}: {e.strerror}")
        if identity == self._identity:
            return False
        self._identity = identity
        try:
            keys = read_keys(self._path)
        except ConfigError as e:
            return self._replace({}, str(e))
        return self._replace(keys, None)

    def _replace(self, keys: dict[str, ClientKey], problem: str | None) -> bool:
        if problem is not None:
            log.error("client keys: %s; no named client key is accepted until it is fixed",
                      problem)  # fmt: skip
        changed = keys != self._keys
        self._keys = keys
        self.generation += changed
        return changed


def _keys_path(cluster: ClusterFile) -> Path:
    if cluster.client_keys_file is None:
        raise ConfigError(cluster.path, 0, "cluster.client_keys_file", "not set")
    return cluster.client_keys_file


def _key(path: Path, where: str, table: object) -> ClientKey:
    prefix = f"{where}." if where else ""
    if not isinstance(table, dict) or set(table) - {"name", "secret", "read_only"}:
        raise ConfigError(path, 0, where, "a key has name, secret and read_only only")
    name, secret_hex, read_only = table.get("name"), table.get("secret"), table.get("read_only")
    if not isinstance(name, str):
        raise ConfigError(path, 0, prefix + "name", "missing or not a string")
    try:
        check_key_name(name)
    except InvalidArgument as e:
        raise ConfigError(path, 0, prefix + "name", e.reason) from None
    if not isinstance(read_only, bool):
        raise ConfigError(path, 0, prefix + "read_only", "must be true or false")
    try:
        secret = bytes.fromhex(secret_hex) if isinstance(secret_hex, str) else b""
    except ValueError:
        secret = b""
    if not MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES:
        raise ConfigError(
            path, 0, prefix + "secret",
            f"must be {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} bytes, in hex",
        )  # fmt: skip
    return ClientKey(name, secret, read_only)


def _read_private(path: Path) -> str:
    """The text of a file only its owner may read. FileNotFoundError if absent."""
    try:
        data = read_small_file(path, MAX_KEYS_FILE_BYTES, what="the file", owner_only=True)
    except UnusableFile as e:
        raise ConfigError(path, 0, "", e.reason) from None
    if len(data) > MAX_KEYS_FILE_BYTES:
        raise ConfigError(path, 0, "", f"larger than {MAX_KEYS_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, 0, "", "not UTF-8 text") from None


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: a temporary file (mode 0600), synced, renamed."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
