"""`raftcluster init DIR --nodes 3 [--base-port P] [--force] [--json]`.

Writes DIR/cluster.toml (every node on 127.0.0.1 with a data directory in DIR, every
setting commented with its default) and DIR/secret (32 random bytes, mode 0600).
Refuses to replace an existing cluster without --force.
"""

from __future__ import annotations

import argparse
from typing import Any

from raftcluster.cli.output import add_json_flag, emit
from raftcluster.config import init_cluster


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "init",
        help="write a cluster file and a secret for a local cluster",
        description="Write DIR/cluster.toml and DIR/secret for a cluster on 127.0.0.1.",
    )
    parser.add_argument("directory", metavar="DIR", help="where to write the cluster")
    parser.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    parser.add_argument(
        "--base-port", type=int, default=None, metavar="P",
        help="give the nodes ports P, P+1, ... (default: free ports chosen by the system)",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true",
        help="replace an existing cluster in DIR, wiping its data directories",
    )  # fmt: skip
    add_json_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cluster = init_cluster(
        args.directory, nodes=args.nodes, base_port=args.base_port, force=args.force
    )
    data = {
        "cluster_file": str(cluster.path),
        "secret_file": str(cluster.secret_file),
        "cluster_id": cluster.cluster_id,
        "nodes": [
            {"id": n.id, "addresses": [str(a) for a in n.addresses], "data_dir": str(n.data_dir)}
            for n in cluster.nodes
        ],
    }

    def human(d: dict[str, Any]) -> str:
        lines = [f"wrote {d['cluster_file']} (cluster {d['cluster_id']})",
                 f"wrote {d['secret_file']} (mode 0600: keep it private)"]  # fmt: skip
        for n in d["nodes"]:
            lines.append(f"  node {n['id']}: {', '.join(n['addresses'])}  data in {n['data_dir']}")
        lines.append(f"start it with: raftcluster up {args.directory}")
        return "\n".join(lines)

    emit(args, data, human)
    return 0
