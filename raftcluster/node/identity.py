"""The identity file of a data directory: which cluster and which node it belongs to.

A node writes `IDENTITY` into its data directory the first time it starts and checks it
on every later start, so a data directory is never used by another node or under a
re-initialised cluster (whose founding configuration would disagree with the log).
The write-ahead log lives next to it, in `wal/`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from raftcluster.node.errors import DataDirMismatch

IDENTITY_FILE = "IDENTITY"
WAL_DIR = "wal"
MAX_IDENTITY_BYTES = 4096


def claim(data_dir: Path, cluster_id: str, node_id: int) -> Path:
    """Create `data_dir` if needed, check or write its identity; return the WAL directory.

    Raises DataDirMismatch when the directory belongs to another node or cluster, or
    holds an unreadable identity. Blocking (file I/O): run it in a worker thread.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / IDENTITY_FILE
    mine = {"cluster_id": cluster_id, "node_id": node_id}
    if path.exists():
        found = _read(path)
        if found != mine:
            raise DataDirMismatch(
                f"data directory {data_dir} belongs to node {found.get('node_id')} of cluster "
                f"{found.get('cluster_id')!r}, not node {node_id} of cluster {cluster_id!r}: "
                "check the cluster file's data_dir, or remove the directory to start afresh"
            )
    else:
        _write(path, mine)
    return data_dir / WAL_DIR


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
    tmp = path.with_name(IDENTITY_FILE + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(identity, f)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
