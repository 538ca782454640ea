"""A data directory's identity and lifecycle: which node of which cluster it belongs to,
and whether the node may found a new cluster from it.

Files in a data directory:
    BOOTSTRAP   written by `raftcluster init` (`prepare_bootstrap`): this directory is
                prepared to found a new cluster and has never run. Removed once the node's
                log holds its first synced state (`founded`).
    IDENTITY    written when the node first starts: {"cluster_id", "node_id",
                "incarnation"}; checked on every later start, so a directory is never used
                by another node or under a re-initialised cluster.
    wal/        the write-ahead log and snapshots (raftcluster/storage).

A node bootstraps a new cluster only from a directory that `init` prepared and that has
never run (etcd's `--initial-cluster-state new`); a node that joins a running cluster
(`join`: etcd's `existing`) starts from an empty directory and never bootstraps. Any
other empty directory, or one whose log is gone while its IDENTITY remains, belongs to a
member that lost its data: the node refuses to start (`DataDirLost`), because starting
afresh under the same identity could vote twice in one term. Identity: the node id and
the incarnation the log records for it (`raftcluster.raft.types.Member`); a joining node
takes the incarnation `member add` / `member replace` recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import attrs

from raftcluster.node.errors import DataDirLost, DataDirMismatch

IDENTITY_FILE = "IDENTITY"
BOOTSTRAP_FILE = "BOOTSTRAP"
WAL_DIR = "wal"
MAX_IDENTITY_BYTES = 4096


@attrs.frozen
class Claimed:
    """What `claim` found: the WAL directory, the node's incarnation, and how it may start."""

    wal: Path
    incarnation: int
    founding: bool  # prepared by init and never ran: bootstrap the founding configuration
    joining: bool  # joins now from an empty directory: may start with an empty log


def prepare_bootstrap(data_dir: Path, cluster_id: str, node_id: int) -> None:
    """Mark `data_dir` (created if needed) as prepared to found cluster `cluster_id`
    (what `raftcluster init` does for each node). Blocking (file I/O)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    _write(data_dir / BOOTSTRAP_FILE, {"cluster_id": cluster_id, "node_id": node_id})


def claim(
    data_dir: Path, cluster_id: str, node_id: int, *, join: bool = False, incarnation: int = 0
) -> Claimed:
    """Check or write `data_dir`'s identity; say how the node may start.

    Raises DataDirMismatch when the directory belongs to another node or cluster, or
    holds an unreadable identity; DataDirLost when it holds no identity and was neither
    prepared by init nor is joined now (`join`, with the non-zero `incarnation` the
    joining node was added with). Blocking (file I/O): run it in a worker thread.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / IDENTITY_FILE
    marker = data_dir / BOOTSTRAP_FILE
    mine: dict[str, object] = {"cluster_id": cluster_id, "node_id": node_id}
    if path.exists():
        found = _read(path)
        if {k: found.get(k) for k in mine} != mine:
            raise DataDirMismatch(
                f"data directory {data_dir} belongs to node {found.get('node_id')} of cluster "
                f"{found.get('cluster_id')!r}, not node {node_id} of cluster {cluster_id!r}: "
                "check the cluster file's data_dir"
            )
        stored = found.get("incarnation", 0)
        if not isinstance(stored, int) or isinstance(stored, bool) or stored < 0:
            raise DataDirMismatch(f"{path} holds an unreadable incarnation {stored!r}")
        return Claimed(data_dir / WAL_DIR, stored, founding=marker.exists(), joining=False)
    if marker.exists():
        prepared = _read(marker)
        if prepared != mine:
            raise DataDirMismatch(
                f"data directory {data_dir} was prepared for node {prepared.get('node_id')} of "
                f"cluster {prepared.get('cluster_id')!r}, not node {node_id} of cluster "
                f"{cluster_id!r}: check the cluster file's data_dir"
            )
        _write(path, {**mine, "incarnation": 0})
        return Claimed(data_dir / WAL_DIR, 0, founding=True, joining=False)
    if join:
        if incarnation <= 0:
            raise DataDirLost(
                node_id,
                str(data_dir),
                "is empty, and the cluster file gives this node no incarnation to join with "
                "(use the file `member add --write-config` or `member replace --write-config` "
                "wrote)",
            )
        _write(path, {**mine, "incarnation": incarnation})
        return Claimed(data_dir / WAL_DIR, incarnation, founding=False, joining=True)
    what = "holds no identity" if any(data_dir.iterdir()) else "is empty"
    raise DataDirLost(node_id, str(data_dir), what)


def check_log(claimed: Claimed, data_dir: Path, node_id: int, log_is_empty: bool) -> None:
    """After the log was loaded: an empty log is a start only for a founding or joining
    node; for any other it was lost (DataDirLost). A founding node whose log is not empty
    has run: its BOOTSTRAP marker goes. Blocking (file I/O)."""
    if log_is_empty and not (claimed.founding or claimed.joining):
        raise DataDirLost(node_id, str(data_dir), "holds an identity but no log")
    if claimed.founding and not log_is_empty:
        founded(data_dir)


def founded(data_dir: Path) -> None:
    """The node's log holds its first synced state: the directory is no longer one that
    never ran, so it may never bootstrap again. Idempotent. Blocking (file I/O)."""
    with contextlib.suppress(FileNotFoundError):
        (data_dir / BOOTSTRAP_FILE).unlink()
        _sync_dir(data_dir)


def _read(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_IDENTITY_BYTES + 1)
        value = json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataDirMismatch(f"{path} is unreadable ({e}); remove it only if the directory "
                              "is this node's") from None  # fmt: skip
    if not isinstance(value, dict) or len(data) > MAX_IDENTITY_BYTES:
        raise DataDirMismatch(f"{path} does not hold a node identity")
    return value


def _write(path: Path, identity: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(identity, f)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
