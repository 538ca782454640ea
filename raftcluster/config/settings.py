"""From a cluster file to the settings of one of its nodes."""

from __future__ import annotations

import secrets

from raftcluster.config.errors import ConfigError
from raftcluster.config.schema import ClusterFile
from raftcluster.config.tls import client_tls, node_tls
from raftcluster.groups.settings import GroupsSettings
from raftcluster.groups.timing import GroupTiming
from raftcluster.loading import PartLoadError, load_parts
from raftcluster.node.config import ReplicaConfig
from raftcluster.node.settings import NodeSettings
from raftcluster.raft.config import RaftConfig
from raftcluster.raft.types import Member
from raftcluster.storage.wal import WalOptions
from raftcluster.transport.config import Address, ClientConfig, Limits, TlsConfig
from raftcluster.transport.credentials import ClientKey
from statemachine.part import PartSpec


def node_settings(cluster: ClusterFile, node_id: int, *, join: bool = False) -> NodeSettings:
    """The settings node `node_id` of `cluster` runs with. Every node of the file is a
    founding voter, recorded with its addresses in the founding configuration (a node
    bootstraps it only from a data directory `init` prepared); with `join` the node joins
    the running cluster instead, with the file's incarnation for it. Imports the user
    parts of [state] parts (`cluster_parts`). Raises ConfigError when the file has no
    such node or a part does not load."""
    entry = cluster.find(node_id)
    if entry is None:
        ids = ", ".join(str(i) for i in cluster.node_ids)
        raise ConfigError(cluster.path, 0, "nodes", f"no node {node_id} (the nodes are {ids})")
    timing, limits = cluster.timing, cluster.limits
    raft = RaftConfig(
        node_id=node_id,
        peers=cluster.node_ids,  # type: ignore[arg-type]  # mypy and attrs' converter=tuple
        members=tuple(Member(n.id, tuple(map(str, n.addresses))) for n in cluster.nodes),
        incarnation=entry.incarnation,
        election_timeout_ms=timing.election_timeout_ms,
        heartbeat_interval_ms=timing.heartbeat_interval_ms,
        commit_notice_delay_ms=timing.commit_notice_delay_ms,
        max_snapshot_chunk_bytes=limits.max_snapshot_chunk_bytes,
        max_bytes_per_msg=limits.max_append_bytes,
    )
    replica = ReplicaConfig(
        raft=raft,
        snapshot_every_entries=limits.snapshot_every_entries,
        max_pending_requests=limits.max_pending_requests,
        request_timeout_ms=timing.request_timeout_ms,
        read_timeout_ms=timing.read_timeout_ms,
        session_expiry_interval_ms=timing.session_expiry_interval_ms,
    )
    return NodeSettings(
        cluster_id=cluster.cluster_id,
        secret=cluster.secret,
        listen=entry.addresses,
        peers={n.id: n.addresses for n in cluster.nodes if n.id != node_id},
        data_dir=entry.data_dir,
        replica=replica,
        limits=transport_limits(cluster),
        wal=WalOptions(max_segment_bytes=limits.max_segment_bytes),
        allow_fault_injection=cluster.allow_fault_injection,
        join=join,
        client_secret=cluster.client_secret,
        client_keys_file=cluster.client_keys_file,
        groups=GroupsSettings(
            timing=group_timing(cluster),
            fence_command=cluster.fencing.command,
            fence_timeout_ms=cluster.fencing.timeout_ms,
        ),
        parts=cluster_parts(cluster),
        tls=node_tls(cluster, node_id),
    )


def cluster_parts(cluster: ClusterFile) -> tuple[PartSpec, ...]:
    """The user parts [state] parts names, imported and checked (`load_parts`); raises
    ConfigError naming the file, the key and the path that failed, and why."""
    try:
        return load_parts(cluster.parts)
    except PartLoadError as e:
        raise ConfigError(cluster.path, 0, "state.parts", str(e)) from None


def transport_limits(cluster: ClusterFile) -> Limits:
    """The transport limits the file sets (the same for nodes and clients)."""
    timing, limits = cluster.timing, cluster.limits
    return Limits(
        max_frame_bytes=limits.max_frame_bytes,
        max_client_connections=limits.max_client_connections,
        keepalive_interval_ms=timing.keepalive_interval_ms,
        idle_timeout_ms=timing.idle_timeout_ms,
        connect_timeout_ms=timing.connect_timeout_ms,
        handshake_timeout_ms=timing.handshake_timeout_ms,
    )


def client_transport_config(
    cluster: ClusterFile,
    client_id: int | None = None,
    *,
    key: ClientKey | None = None,
    tls: TlsConfig | None = None,
) -> ClientConfig:
    """How a client of `cluster` authenticates (a random client id unless given): with
    the client secret, or with the named client `key` (`read_key_file`); over TLS when the
    file has [tls], with `tls` (a key file's) or else [tls] client_cert_file. Raises
    ConfigError for a file loaded without a client secret, or unusable TLS files."""
    if key is None:
        if cluster.client_secret is None:
            raise ConfigError(cluster.path, 0, "cluster.client_secret_file", "no client secret")
        key = ClientKey("", cluster.client_secret)
    return ClientConfig(
        cluster_id=cluster.cluster_id,
        client_id=client_id if client_id is not None else secrets.randbits(62) + 1,
        secret=key.secret,
        key_name=key.name,
        limits=transport_limits(cluster),
        tls=tls if tls is not None or cluster.tls is None else client_tls(cluster),
    )


def endpoints(cluster: ClusterFile) -> dict[int, tuple[Address, ...]]:
    """Each node's id and addresses."""
    return {n.id: n.addresses for n in cluster.nodes}


def group_timing(cluster: ClusterFile) -> GroupTiming:
    """The cluster service's times: [groups], with [timing]'s election timeout (the loader
    has checked the timing rule, so this never raises for a loaded file)."""
    groups = cluster.groups
    return GroupTiming(
        heartbeat_interval_ms=groups.heartbeat_interval_ms,
        fence_after_ms=groups.fence_after_ms,
        node_down_after_ms=groups.node_down_after_ms,
        election_timeout_ms=cluster.timing.election_timeout_ms,
        kill_ms=groups.kill_ms,
        max_drift_ppm=groups.max_drift_ppm,
        tick_interval_ms=groups.tick_interval_ms,
        report_retry_ms=groups.report_retry_ms,
    )
