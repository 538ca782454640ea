"""Which cluster a command talks to: `--cluster DIR` or `--endpoints host:port,...`.

`--cluster DIR` reads DIR/cluster.toml (node ids, addresses, cluster id, secret file).
`--endpoints` names nodes directly; the cluster id and the client secret then come from
`--cluster-id` and `--secret-file` (the cluster's client-secret file). `--key-file`
proves a named client key instead of the client secret, with either. Over TLS the
client presents the certificate the cluster file's [tls] client_cert_file names, or the
key file's [tls] table; `--tls-ca --tls-cert --tls-key` name the files instead (and are
how `--endpoints` with `--secret-file` speaks TLS). Commands that talk to a cluster
(`status`, and the client commands built on it) share these options.
"""

from __future__ import annotations

import argparse
import secrets
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import attrs

from raftcluster.client.api import Client
from raftcluster.client.connect import ClientOptions, connect
from raftcluster.client.probe import Target
from raftcluster.config import (
    ClusterFile,
    client_transport_config,
    load_cluster,
    read_secret,
)
from raftcluster.config.client_keys import read_key_file
from raftcluster.config.tls import TlsFileError, tls_from_files
from raftcluster.transport import Address, TlsConfig
from raftcluster.transport import ClientConfig as TransportClientConfig
from statemachine.errors import ClusterError, InvalidArgument

CONNECT_TIMEOUT_MS = 5_000  # a client command's connect: at most this, within its timeout


class UsageError(ClusterError):
    """The command line does not say which cluster to reach, or says it wrongly."""


@attrs.frozen
class ClusterTarget:
    targets: tuple[Target, ...]
    transport: TransportClientConfig
    cluster: ClusterFile | None  # when found through --cluster
    key_file: Path | None = None  # a named client key's file (--key-file), else the secret
    tls: TlsConfig | None = attrs.field(default=None, eq=False)  # --tls-*: overrides the files'


def add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which cluster")
    group.add_argument(
        "--cluster", metavar="DIR",
        help="the directory `raftcluster init` wrote (or its cluster.toml)",
    )  # fmt: skip
    group.add_argument(
        "--endpoints", metavar="HOST:PORT,...",
        help="node addresses, comma-separated (with --secret-file and --cluster-id)",
    )  # fmt: skip
    group.add_argument(
        "--secret-file", type=Path, metavar="PATH",
        help="the client secret (the cluster's client-secret file), with --endpoints",
    )  # fmt: skip
    group.add_argument(
        "--key-file", type=Path, metavar="PATH",
        help="prove this named client key (`raftcluster client add`) instead of the client "
        "secret; with --endpoints it also names the cluster id",
    )  # fmt: skip
    group.add_argument("--cluster-id", metavar="ID", help="the cluster id, with --endpoints")
    group.add_argument("--tls-ca", type=Path, metavar="PATH", help="TLS: the cluster's CA")
    group.add_argument(
        "--tls-cert", type=Path, metavar="PATH",
        help="TLS: the certificate to present (CN client-NAME of a client key, or a node's)",
    )  # fmt: skip
    group.add_argument("--tls-key", type=Path, metavar="PATH", help="TLS: its private key")


def resolve(args: argparse.Namespace) -> ClusterTarget:
    """The nodes and credentials the options name. Raises UsageError or ConfigError."""
    target = _resolve(args)
    tls = _tls_options(args)
    if tls is None:
        return target
    return attrs.evolve(target, transport=attrs.evolve(target.transport, tls=tls), tls=tls)


def _tls_options(args: argparse.Namespace) -> TlsConfig | None:
    given: list[Path | None] = [
        getattr(args, f"tls_{name}", None) for name in ("ca", "cert", "key")
    ]
    if not any(given):
        return None
    ca, cert, key = given
    if ca is None or cert is None or key is None:
        raise UsageError("--tls-ca, --tls-cert and --tls-key go together")
    try:
        return tls_from_files(ca.absolute(), cert.absolute(), key.absolute())
    except TlsFileError as e:
        raise UsageError(f"--tls-{e.which}: {e}") from None


def _resolve(args: argparse.Namespace) -> ClusterTarget:
    if bool(args.cluster) == bool(args.endpoints):
        raise UsageError("say which cluster: --cluster DIR, or --endpoints HOST:PORT,...")
    key_file = getattr(args, "key_file", None)
    key = None if key_file is None else read_key_file(key_file.absolute())
    if key is not None and args.secret_file is not None:
        raise UsageError("--key-file or --secret-file, not both")
    if args.cluster:
        cluster = load_cluster(args.cluster)
        targets = tuple(Target(n.id, n.addresses) for n in cluster.nodes)
        if key is not None and key.cluster_id != cluster.cluster_id:
            raise UsageError(f"--key-file is a key of cluster {key.cluster_id!r}, not this one")
        if key is None:
            config = client_transport_config(cluster)
        else:
            config = client_transport_config(cluster, key=key.key, tls=key.tls)
        return ClusterTarget(targets, config, cluster, key_file)
    targets = tuple(Target(0, (address,)) for address in parse_endpoints(args.endpoints))
    if key is not None:
        transport = TransportClientConfig(
            cluster_id=args.cluster_id or key.cluster_id, client_id=secrets.randbits(62) + 1,
            secret=key.key.secret, key_name=key.key.name, tls=key.tls,
        )  # fmt: skip
        return ClusterTarget(targets, transport, None, key_file)
    if args.secret_file is None or not args.cluster_id:
        raise UsageError("--endpoints needs --secret-file PATH (or --key-file) and --cluster-id ID")
    transport = TransportClientConfig(
        cluster_id=args.cluster_id,
        client_id=secrets.randbits(62) + 1,
        secret=read_secret(args.secret_file.absolute()),
    )
    return ClusterTarget(targets, transport, None)


def parse_endpoints(text: str) -> list[Address]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            address = Address.parse(part)
        except InvalidArgument as e:
            raise UsageError(f"--endpoints: {e.reason}") from None
        if address.port == 0:
            raise UsageError(f"--endpoints: {part!r} needs a port")
        out.append(address)
    if not out:
        raise UsageError("--endpoints: no address given")
    return out


def open_client(target: ClusterTarget, timeout_ms: int) -> AbstractAsyncContextManager[Client]:
    """``async with open_client(target, timeout_ms) as client``: `raftcluster.connect` to
    the cluster `target` names, trying for `timeout_ms` per request (and at most 5 s to
    connect). Raises what `connect` raises."""
    options = ClientOptions(
        connect_timeout_ms=min(CONNECT_TIMEOUT_MS, timeout_ms), request_timeout_ms=timeout_ms
    )
    if target.cluster is not None:
        return connect(target.cluster, options=options, key_file=target.key_file, tls=target.tls)
    return connect(
        endpoints=[a for t in target.targets for a in t.addresses],
        secret=None if target.key_file is not None else target.transport.secret,
        cluster_id=target.transport.cluster_id,
        options=options,
        key_file=target.key_file,
        tls=target.transport.tls,
    )
