"""Everything one node process needs to run: `NodeSettings`.

Built from a cluster file by `raftcluster.config.node_settings(cluster, node_id)`, or
directly (tests, embedding). Frozen and validated by the classes it holds (`ReplicaConfig`,
the transport's `Limits` and `TransportConfig`, `WalOptions`).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from raftcluster.groups.settings import GroupsSettings
from raftcluster.node.config import ReplicaConfig
from raftcluster.storage.wal import WalOptions
from raftcluster.transport.config import Address, Limits, TransportConfig
from raftcluster.transport.credentials import ClientKeys


def _freeze_peers(value: Mapping[int, Any]) -> Mapping[int, tuple[Address, ...]]:
    return types.MappingProxyType({int(k): tuple(v) for k, v in value.items()})


@attrs.frozen(kw_only=True)
class NodeSettings:
    cluster_id: str
    secret: bytes = attrs.field(repr=False)
    listen: tuple[Address, ...]  # port 0: any free port
    # The other founding members' addresses (`replica.raft.peers` names the voters).
    peers: Mapping[int, tuple[Address, ...]] = attrs.field(converter=_freeze_peers)
    data_dir: Path = attrs.field(converter=Path)
    replica: ReplicaConfig
    limits: Limits = Limits()
    wal: WalOptions = WalOptions()
    allow_fault_injection: bool = False
    # What clients prove (docs/security.md): the client secret (None: none) and the file
    # of named client keys (None: none), re-read when it changes.
    client_secret: bytes | None = attrs.field(default=None, repr=False)
    client_keys_file: Path | None = None
    # The cluster service (resource groups): None runs none (an embedded node, tests).
    groups: GroupsSettings | None = None

    @property
    def node_id(self) -> int:
        return self.replica.node_id

    def transport_config(self, clients: ClientKeys | None = None) -> TransportConfig:
        """With `clients` the credentials clients may prove. Raises InvalidArgument for an
        unusable secret, cluster id or address list."""
        return TransportConfig(
            cluster_id=self.cluster_id,
            node_id=self.node_id,
            secret=self.secret,
            listen=self.listen,  # type: ignore[arg-type]  # mypy and attrs' converter=tuple
            peers=self.peers,
            limits=self.limits,
            clients=clients,
        )
