"""The cluster file: what `raftcluster init` writes and every node and client reads.

    load_cluster(path) -> ClusterFile      a file, or a directory holding cluster.toml
    node_settings(cluster, node_id)        -> NodeSettings, to run that node
    group_timing(cluster)                  -> GroupTiming, the cluster service's times
    init_cluster(directory, nodes=3)       write cluster.toml and the secret file
    read_secret(path) -> bytes             a secret file, checked (mode 0600, 16..1024 bytes)

Errors are `ConfigError`s naming the file, the line and the key. docs/config.md lists
every key with its default and meaning.
"""

from raftcluster.config.errors import ConfigError
from raftcluster.config.init import init_cluster
from raftcluster.config.loader import CLUSTER_FILE, cluster_file_path, load_cluster
from raftcluster.config.schema import ALL_KEYS, ClusterFile, NodeEntry, NodeLimits, Timing
from raftcluster.config.secret import read_secret
from raftcluster.config.settings import (
    client_transport_config,
    endpoints,
    group_timing,
    node_settings,
    transport_limits,
)

__all__ = [
    "ALL_KEYS",
    "CLUSTER_FILE",
    "ClusterFile",
    "ConfigError",
    "NodeEntry",
    "NodeLimits",
    "Timing",
    "client_transport_config",
    "cluster_file_path",
    "endpoints",
    "group_timing",
    "init_cluster",
    "load_cluster",
    "node_settings",
    "read_secret",
    "transport_limits",
]
