"""Everything one node process needs to run: `NodeSettings`.

Built from a cluster file by `raftcluster.config.node_settings(cluster, node_id)`, or
directly (tests, embedding). Frozen and validated by the classes it holds (`ReplicaConfig`,
the transport's `Limits` and `TransportConfig`, `WalOptions`).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from raftcluster.groups.settings import GroupsSettings
from raftcluster.node.config import ReplicaConfig
from raftcluster.storage.wal import WalOptions
from raftcluster.transport.config import Address, Limits, TlsConfig, TransportConfig
from raftcluster.transport.credentials import ClientKeys
from statemachine.cluster import ClusterState
from statemachine.errors import InvalidArgument
from statemachine.part import PartSpec
from statemachine.partset import PartSet


def _tuple_of_parts(value: Iterable[PartSpec]) -> tuple[PartSpec, ...]:
    return tuple(value)


def _check_parts(instance: Any, attribute: Any, parts: tuple[PartSpec, ...]) -> None:
    """The parts must register together beside the built-in ones (InvalidArgument if not)."""
    for spec in parts:
        if not isinstance(spec, PartSpec):
            raise InvalidArgument("NodeSettings.parts", f"{spec!r} is not a PartSpec")
    ClusterState(parts=parts)


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
    # Join a running cluster (`node run --join`): never bootstrap one, start from an empty
    # data directory, with `replica.raft.incarnation` as the one `member add` recorded.
    join: bool = False
    # What clients prove (docs/security.md): the client secret (None: none) and the file
    # of named client keys (None: none), re-read when it changes.
    client_secret: bytes | None = attrs.field(default=None, repr=False)
    client_keys_file: Path | None = None
    # The cluster service (resource groups): None runs none (an embedded node, tests).
    groups: GroupsSettings | None = None
    # The user parts the state machine runs beside the built-in ones (the same on every
    # node: nodes whose part sets differ refuse each other at the handshake).
    parts: tuple[PartSpec, ...] = attrs.field(
        default=(), converter=_tuple_of_parts, validator=_check_parts
    )
    # TLS (a cluster file's [tls]: mutual, certificates naming identities), for the node's
    # transport and its own client (the cluster service); None: none.
    tls: TlsConfig | None = None

    @property
    def node_id(self) -> int:
        return self.replica.node_id

    def new_state(self) -> ClusterState:
        """A fresh state machine with this node's parts."""
        return ClusterState(parts=self.parts)

    def part_set(self) -> PartSet:
        """The part set (built-in parts and `parts`): what peers must match."""
        return self.new_state().part_set

    def transport_config(
        self, clients: ClientKeys | None = None, *, member_incarnation: int = 0
    ) -> TransportConfig:
        """With `clients` the credentials clients may prove, and the node's
        `member_incarnation` (what its data directory records). Raises InvalidArgument for
        an unusable secret, cluster id or address list."""
        return TransportConfig(
            cluster_id=self.cluster_id,
            node_id=self.node_id,
            secret=self.secret,
            listen=self.listen,  # type: ignore[arg-type]  # mypy and attrs' converter=tuple
            peers=self.peers,
            limits=self.limits,
            parts=self.part_set(),
            clients=clients,
            tls=self.tls,
            member_incarnation=member_incarnation,
        )
