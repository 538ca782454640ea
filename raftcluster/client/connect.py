"""`raftcluster.connect(...)`: find the cluster, authenticate, and hand out a `Client`.

    async with raftcluster.connect(cluster="mycluster") as client:        # the cluster file
        ...
    async with raftcluster.connect(endpoints=["10.0.0.1:7001", "10.0.0.2:7001"],
                                   secret_file="secret", cluster_id="rc-5f2a9c1e") as client:
        ...

With the cluster file the client knows every node's id and addresses. With endpoints it
learns each node's id from the handshake when it connects; endpoints that do not answer
then are left out for the life of the client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import attrs
import trio

from raftcluster.client.api import Client
from raftcluster.client.core import ClientConfig
from raftcluster.client.links import FATAL_REFUSALS, Links
from raftcluster.client.runner import CoreRunner
from raftcluster.config import ClusterFile, client_transport_config, load_cluster, read_secret
from raftcluster.config import endpoints as cluster_endpoints
from raftcluster.config.client_keys import KeyFileContent, read_key_file
from raftcluster.errors import Unavailable
from raftcluster.transport import Address, HandshakeFailed, PeerUnreachable, TlsConfig, connect_rpc
from raftcluster.transport import ClientConfig as TransportClientConfig
from raftcluster.transport.scope import Unwrapped
from statemachine.codec import int_range, positive
from statemachine.errors import InvalidArgument

log = logging.getLogger("raftcluster.client")


@attrs.frozen
class ClientOptions:
    """How patient a client is. Times in milliseconds."""

    # Entering `connect` waits this long for a first node to authenticate us.
    connect_timeout_ms: int = attrs.field(default=5_000, validator=positive)
    # A call's deadline unless it gives its own `timeout_ms`.
    request_timeout_ms: int = attrs.field(default=10_000, validator=positive)
    # One attempt on one node before retrying the same request elsewhere.
    attempt_timeout_ms: int = attrs.field(default=1_000, validator=positive)
    # The session lives this long past its last keepalive (sent every third of it).
    session_ttl_ms: int = attrs.field(default=30_000, validator=int_range(1_000, 3_600_000))
    # Writes sent and not yet answered; more wait in the client (below the state
    # machine's 128 kept replies per session).
    max_inflight_writes: int = attrs.field(default=64, validator=int_range(1, 100))
    # How long one watch long poll waits on a node before asking again.
    watch_wait_ms: int = attrs.field(default=5_000, validator=int_range(1, 60_000))


@attrs.frozen
class _Plan:
    endpoints: dict[int, tuple[Address, ...]]
    transport: TransportClientConfig


def connect(
    cluster: str | os.PathLike[str] | ClusterFile | None = None,
    *,
    endpoints: Sequence[str | Address] | None = None,
    secret: bytes | None = None,
    secret_file: str | os.PathLike[str] | None = None,
    cluster_id: str | None = None,
    options: ClientOptions | None = None,
    rng: random.Random | None = None,
    key_file: str | os.PathLike[str] | None = None,
    tls: TlsConfig | None = None,
) -> AbstractAsyncContextManager[Client]:
    """``async with connect(...) as client``: a `Client` of one cluster.

    Name the cluster with `cluster` (the directory `raftcluster init` wrote, its
    cluster.toml, or a loaded `ClusterFile`), or with `endpoints` ("host:port" strings)
    plus `cluster_id` and the client secret (`secret` bytes or `secret_file`: the
    cluster's client-secret file, never the nodes' secret). `key_file` (a named client
    key's file, from `raftcluster client add`) replaces the client secret either way;
    with `endpoints` it also names the cluster id. Over TLS the client presents the
    certificate of the key file's [tls] table, else (with `cluster`) the cluster file's
    [tls] client_cert_file (docs/security.md); `tls` (`raftcluster.config.tls.
    tls_from_files(ca, cert, key)`) overrides both.

    Entering dials every node at once and returns as soon as one authenticates the
    client. It raises `ConfigError` (a bad cluster or secret file), `InvalidArgument`,
    `AuthenticationFailed` (the nodes refuse our secret), `HandshakeFailed` (another
    cluster id, say) and `Unavailable` (no node answered within `connect_timeout_ms`;
    each node's problem is named). Leaving closes the session (within a second, best
    effort) and every connection. Cancellation of the entry or the block closes the
    connections at once; the session then expires on its own after its ttl.
    """
    options = options or ClientOptions()
    rng = rng or _fresh_rng()
    key = None if key_file is None else read_key_file(Path(key_file).absolute())
    if tls is not None and key is not None:
        key = attrs.evolve(key, tls=tls)
    opened = _open(cluster, endpoints, secret, secret_file, cluster_id, options, rng, key, tls)
    return Unwrapped(opened)


def _fresh_rng() -> random.Random:
    return random.Random(secrets.randbits(64))


@contextlib.asynccontextmanager
async def _open(
    cluster: str | os.PathLike[str] | ClusterFile | None,
    endpoints: Sequence[str | Address] | None,
    secret: bytes | None,
    secret_file: str | os.PathLike[str] | None,
    cluster_id: str | None,
    options: ClientOptions,
    rng: random.Random,
    key: KeyFileContent | None,
    tls: TlsConfig | None = None,
) -> AsyncIterator[Client]:
    if (cluster is None) == (endpoints is None):
        raise InvalidArgument("connect", "name the cluster: cluster=DIR, or endpoints=[...]")
    if key is not None and (secret is not None or secret_file is not None):
        raise InvalidArgument("connect", "a key file or a secret, not both")
    if cluster is not None:
        if secret is not None or secret_file is not None or cluster_id is not None:
            raise InvalidArgument("connect", "the cluster file names the secret and cluster id")
        plan = _from_cluster(cluster, key, tls)
    else:
        assert endpoints is not None
        if key is not None:
            transport = TransportClientConfig(
                cluster_id=cluster_id or key.cluster_id, client_id=rng.getrandbits(62) + 1,
                secret=key.key.secret, key_name=key.key.name, tls=key.tls,
            )  # fmt: skip
        else:
            transport = attrs.evolve(_transport(secret, secret_file, cluster_id, rng), tls=tls)
        plan = await _discover(_addresses(endpoints), transport, options.connect_timeout_ms)
    core = ClientConfig(
        nodes=tuple(plan.endpoints),
        session_ttl_ms=options.session_ttl_ms,
        attempt_timeout_ms=options.attempt_timeout_ms,
        op_timeout_ms=options.request_timeout_ms,
        max_inflight_writes=options.max_inflight_writes,
    )
    async with CoreRunner.open(plan.endpoints, plan.transport, core, rng) as runner:
        await runner.reach_any(timeout_ms=options.connect_timeout_ms)
        async with trio.open_nursery() as nursery:
            nodes = {node: (node, addresses) for node, addresses in plan.endpoints.items()}
            client = Client(
                runner,
                Links(nursery, plan.transport, nodes),
                request_timeout_ms=options.request_timeout_ms,
                attempt_timeout_ms=options.attempt_timeout_ms,
                watch_wait_ms=options.watch_wait_ms,
            )
            try:
                yield client
            finally:
                client._closed = True
                nursery.cancel_scope.cancel()


def _from_cluster(
    cluster: str | os.PathLike[str] | ClusterFile,
    key: KeyFileContent | None,
    tls: TlsConfig | None = None,
) -> _Plan:
    loaded = cluster if isinstance(cluster, ClusterFile) else load_cluster(Path(cluster))
    if key is not None and key.cluster_id != loaded.cluster_id:
        why = f"the key is for cluster {key.cluster_id!r}, not {loaded.cluster_id!r}"
        raise InvalidArgument("key_file", why)
    if key is None:
        config = client_transport_config(loaded, tls=tls)
    else:
        config = client_transport_config(loaded, key=key.key, tls=key.tls)
    return _Plan(cluster_endpoints(loaded), config)


def _transport(
    secret: bytes | None,
    secret_file: str | os.PathLike[str] | None,
    cluster_id: str | None,
    rng: random.Random,
) -> TransportClientConfig:
    if not cluster_id:
        raise InvalidArgument("cluster_id", "endpoints need the cluster id too")
    if (secret is None) == (secret_file is None):
        raise InvalidArgument("secret", "endpoints need the secret: secret=... or secret_file=...")
    if secret is None:
        assert secret_file is not None
        secret = read_secret(Path(secret_file).absolute())
    return TransportClientConfig(
        cluster_id=cluster_id, client_id=rng.getrandbits(62) + 1, secret=secret
    )


def _addresses(endpoints: Sequence[str | Address]) -> list[Address]:
    if isinstance(endpoints, str):
        raise InvalidArgument("endpoints", "a list of 'host:port' strings, not one string")
    out = [e if isinstance(e, Address) else Address.parse(e) for e in endpoints]
    if not out:
        raise InvalidArgument("endpoints", "no address given")
    for address in out:
        if address.port == 0:
            raise InvalidArgument("endpoints", f"{address} needs a port")
    return out


async def _discover(
    addresses: list[Address], transport: TransportClientConfig, timeout_ms: int
) -> _Plan:
    """Each endpoint's node id, learned from its handshake (all at once, within
    `timeout_ms`). Raises a wrong secret's or cluster's refusal, or Unavailable when
    no endpoint answers. Cancellation closes every connection it opened."""
    found: dict[int, list[Address]] = {}
    problems: list[str] = []
    fatal: list[HandshakeFailed] = []

    async def one(address: Address) -> None:
        try:
            async with connect_rpc(address, transport) as connection:
                found.setdefault(connection.node_id, []).append(address)
        except HandshakeFailed as e:
            problems.append(f"{address}: {e}")
            if e.reason in FATAL_REFUSALS:
                fatal.append(e)
        except PeerUnreachable as e:
            problems.append(str(e))

    with trio.move_on_after(timeout_ms / 1000):
        async with trio.open_nursery() as nursery:
            for address in addresses:
                nursery.start_soon(one, address)
    if fatal:
        raise fatal[0]
    if not found:
        what = "; ".join(problems) or f"no answer within {timeout_ms} ms"
        raise Unavailable(f"no endpoint reachable: {what}")
    if problems:
        log.warning("endpoints left out (they did not answer): %s", "; ".join(problems))
    return _Plan({node: tuple(addrs) for node, addrs in sorted(found.items())}, transport)
