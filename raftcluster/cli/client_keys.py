"""`raftcluster client add|revoke|list|init-secret`: the cluster's client credentials.

    raftcluster client add NAME [--read-only] [--out FILE] --cluster DIR [--json]
    raftcluster client revoke NAME --cluster DIR [--json]
    raftcluster client list --cluster DIR [--json]
    raftcluster client init-secret --cluster DIR [--json]

`add` writes the key into the cluster's key file (which every node reads, and re-reads
when it changes) and the client's own key file (`--out`, default DIR/client-NAME.key,
mode 0600), which a client passes as `--key-file`. `revoke` removes it: every node
refuses it at the next handshake and closes its open connections within a second.
`init-secret` writes the client secret of a cluster made before client credentials
(nodes must restart to read it). These commands edit files; copy the key file to
every node's machine where the nodes do not share DIR (docs/security.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from raftcluster.cli.output import add_json_flag, emit
from raftcluster.config import ConfigError, load_cluster
from raftcluster.config.client_keys import add_key, read_keys, revoke_key, write_key_file
from raftcluster.config.loader import cluster_file_path
from raftcluster.config.secret import write_secret


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "client",
        help="add, revoke and list named client keys",
        description="Manage the cluster's client credentials (docs/security.md).",
    )
    commands = parser.add_subparsers(dest="client_command", metavar="ACTION", required=True)
    add = commands.add_parser("add", help="add a named client key and write its key file")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--read-only", action="store_true", help="the key may only read")
    add.add_argument(
        "--out", type=Path, metavar="FILE",
        help="where to write the client's key file (default DIR/client-NAME.key)",
    )  # fmt: skip
    revoke = commands.add_parser("revoke", help="revoke a named client key")
    revoke.add_argument("name", metavar="NAME")
    listing = commands.add_parser("list", help="list the named client keys (not their secrets)")
    init = commands.add_parser(
        "init-secret", help="write the client secret of a cluster made before client keys"
    )
    for sub, run in ((add, _add), (revoke, _revoke), (listing, _list), (init, _init_secret)):
        sub.add_argument("--cluster", metavar="DIR", required=True, help="the cluster directory")
        add_json_flag(sub)
        sub.set_defaults(run=run)


def _add(args: argparse.Namespace) -> int:
    cluster = load_cluster(args.cluster)
    out = args.out if args.out is not None else cluster.path.parent / f"client-{args.name}.key"
    if out.exists():
        raise ConfigError(out, 0, "", "already exists; choose another --out")
    key = add_key(cluster, args.name, read_only=args.read_only)
    write_key_file(out.absolute(), cluster.cluster_id, key)
    data = {"name": key.name, "read_only": key.read_only, "key_file": str(out.absolute()),
            "keys_file": str(cluster.client_keys_file)}  # fmt: skip

    def human(d: dict[str, Any]) -> str:
        rights = "read-only" if d["read_only"] else "read-write"
        return (
            f"added client key {d['name']!r} ({rights}) to {d['keys_file']}\n"
            f"wrote {d['key_file']} (mode 0600): give it to the client, which passes "
            f"--key-file {d['key_file']}"
        )

    emit(args, data, human)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    cluster = load_cluster(args.cluster)
    key = revoke_key(cluster, args.name)
    data = {"name": key.name, "keys_file": str(cluster.client_keys_file)}
    emit(args, data, lambda d: f"revoked client key {d['name']!r} (in {d['keys_file']})")
    return 0


def _list(args: argparse.Namespace) -> int:
    cluster = load_cluster(args.cluster)
    assert cluster.client_keys_file is not None
    keys = read_keys(cluster.client_keys_file)
    data = {"keys": [{"name": k.name, "read_only": k.read_only} for _, k in sorted(keys.items())]}

    def human(d: dict[str, Any]) -> str:
        if not d["keys"]:
            return "no named client keys"
        return "\n".join(
            f"{k['name']}  {'read-only' if k['read_only'] else 'read-write'}" for k in d["keys"]
        )

    emit(args, data, human)
    return 0


def _init_secret(args: argparse.Namespace) -> int:
    directory = cluster_file_path(args.cluster).absolute().parent
    path = directory / "client-secret"
    if path.exists():
        raise ConfigError(path, 0, "", "a client secret is already there")
    write_secret(path)
    load_cluster(args.cluster)  # the file now loads (or says what else is wrong)
    emit(args, {"client_secret_file": str(path)}, lambda d: f"wrote {d['client_secret_file']}")
    return 0
