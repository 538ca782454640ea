"""The cluster file for a node that joins a running cluster (`member add --write-config`).

It is the running cluster's file with its settings unchanged, every file it names (the
secret files, the client key file, the [tls] files) named by its absolute path (the new
file may live elsewhere), and one [[nodes]] table per member as the log records them now (their
addresses from the log; each data directory as the source file gives it, else
`node-<id>` beside the new file), the new node's with the incarnation its addition
recorded. The new node starts with `raftcluster node run --config FILE --id ID --join`;
clients may use the file too (it lists every member).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from raftcluster.config.errors import ConfigError
from raftcluster.config.loader import cluster_file_path, load_cluster
from raftcluster.config.schema import ClusterFile, TlsFiles


def _line(key: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{key}\s*=.*$", re.M)


def write_member_file(
    source: ClusterFile,
    path: str | Path,
    members: Mapping[int, Sequence[str]],
    new_node: int,
    incarnation: int,
) -> ClusterFile:
    """Write the cluster file for `new_node` at `path` (a file, or a directory to hold
    cluster.toml); `members` maps every member (the new one included) to its addresses.
    Returns it loaded (so it is checked). Raises ConfigError."""
    target = cluster_file_path(path).absolute()
    text = source.path.read_text(encoding="utf-8")
    kept = _without_tables(text, ("[[nodes]]", "[tls]"))
    files = {
        "secret_file": source.secret_file,
        "client_secret_file": source.client_secret_file,
        "client_keys_file": source.client_keys_file,
    }
    for key, file in files.items():
        if file is None:
            continue
        kept, found = _line(key).subn(f"{key} = {_quoted(file)}", kept, count=1)
        if not found:
            kept = kept.replace("[cluster]\n", f"[cluster]\n{key} = {_quoted(file)}\n", 1)
    if source.tls is not None:
        kept = kept.rstrip() + "\n\n" + _tls_table(source.tls) + "\n"
    tables = []
    for node_id in sorted(members):
        entry = source.find(node_id)
        data_dir = entry.data_dir if entry is not None else target.parent / f"node-{node_id}"
        addresses = ", ".join(f'"{a}"' for a in members[node_id])
        lines = ["[[nodes]]", f"id = {node_id}", f"addresses = [{addresses}]"]
        lines.append(f'data_dir = "{data_dir}"')
        if node_id == new_node:
            lines.append(f"incarnation = {incarnation}  # recorded when it was added")
        tables.append("\n".join(lines))
    out = kept.rstrip() + "\n\n" + "\n\n".join(tables) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(out, encoding="utf-8")
    tmp.replace(target)
    written = load_cluster(target)
    if written.find(new_node) is None:
        raise ConfigError(target, 0, "nodes", f"node {new_node} is missing")
    return written


def _quoted(path: object) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tls_table(tls: TlsFiles) -> str:
    """[tls] with absolute paths (cert_file and key_file keep their "{id}")."""
    lines = ["[tls]", f"ca_file = {_quoted(tls.ca_file)}", f"cert_file = {_quoted(tls.cert_file)}",
             f"key_file = {_quoted(tls.key_file)}"]  # fmt: skip
    if tls.client_cert_file is not None and tls.client_key_file is not None:
        lines += [f"client_cert_file = {_quoted(tls.client_cert_file)}",
                  f"client_key_file = {_quoted(tls.client_key_file)}"]  # fmt: skip
    return "\n".join(lines)


def _without_tables(text: str, headers: tuple[str, ...]) -> str:
    """`text` without the tables whose header is one of `headers` (each runs to the next
    table header)."""
    out = []
    inside = False
    for line in text.splitlines():
        header = line.strip()
        if header.startswith("["):
            inside = header.replace(" ", "").startswith(headers)
        if not inside:
            out.append(line)
    return "\n".join(out) + "\n"
