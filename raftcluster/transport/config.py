"""What a transport needs to know: who it is, whom it talks to, the secret, the limits.

All values are frozen and validated when built, so a bad configuration fails at
start-up with the name of the field, never later on the network.
"""

from __future__ import annotations

import enum
import ssl
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from raftcluster.transport.backoff import Backoff
from statemachine.errors import InvalidArgument
from statemachine.partset import NO_PARTS, PartSet

if TYPE_CHECKING:
    from raftcluster.transport.credentials import ClientKeys

MIN_SECRET_BYTES = 16
MAX_SECRET_BYTES = 1024
MAX_CLUSTER_ID_CHARS = 64
MAX_LINKS = 8  # addresses (links) per peer
MIB = 1024 * 1024


@attrs.frozen
class Address:
    """A TCP endpoint. Port 0 in a listen address asks the system for a free port."""

    host: str
    port: int

    def __attrs_post_init__(self) -> None:
        if not self.host:
            raise InvalidArgument("Address.host", "empty host")
        if not 0 <= self.port <= 65535:
            raise InvalidArgument("Address.port", f"{self.port} is outside 0..65535")

    @classmethod
    def parse(cls, text: str) -> Address:
        """``"host:port"`` (``"[::1]:7000"`` for IPv6) -> Address."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise InvalidArgument("address", f"{text!r} is not host:port")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class BondMode(enum.Enum):
    """How traffic to a peer uses its links (docs/transport.md, bonding).

    ACTIVE_BACKUP: everything rides the lowest-numbered live link; the others stay
    connected as standbys and take over as soon as it fails.
    BALANCE_FLOW: each flow (the raft channel's `flow` argument, each RPC call) is
    hashed onto the live links, so a flow stays in order on one link while distinct
    flows spread; a failed link's flows move to the remaining ones.
    """

    ACTIVE_BACKUP = "active-backup"
    BALANCE_FLOW = "balance-flow"


def _positive(field: str, value: int) -> None:
    if value <= 0:
        raise InvalidArgument(field, f"{value} must be positive")


@attrs.frozen(kw_only=True)
class Limits:
    """Every bound the transport enforces. Times are milliseconds, sizes bytes."""

    max_frame_bytes: int = 8 * MIB  # one frame's body; checked on the length prefix
    handshake_timeout_ms: int = 5000  # whole handshake (TLS included), not per message
    max_pending_handshakes: int = 64  # unauthenticated connections at once; more are closed
    keepalive_interval_ms: int = 200  # send a keepalive after this long without writing
    idle_timeout_ms: int = 1500  # close a connection after this long without reading
    write_timeout_ms: int = 5000  # close a connection whose peer does not read
    connect_timeout_ms: int = 2000  # one TCP connect
    raft_queue_frames: int = 4096  # per peer; more raft messages are dropped and counted
    raft_queue_bytes: int = 64 * MIB  # per peer, same
    inbox_frames: int = 8192  # received raft messages not yet taken by the runtime
    max_concurrent_requests: int = 64  # RPC handlers running per connection
    max_pending_calls: int = 1024  # outgoing RPCs awaiting an answer, per peer
    max_client_connections: int = 1024  # client connections to this node
    write_batch_bytes: int = 256 * 1024  # frames coalesced into one write
    # Frames of one read handed out before other tasks get a turn: the answers among them
    # reach their callers, who can send their next requests while the rest are handled
    # (64 answers in one read otherwise keep client and node taking turns, each idle).
    read_batch_frames: int = 32

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(Limits):
            _positive(f"Limits.{field.name}", getattr(self, field.name))
        if self.idle_timeout_ms <= 2 * self.keepalive_interval_ms:
            raise InvalidArgument(
                "Limits.idle_timeout_ms", "must exceed twice keepalive_interval_ms"
            )
        if self.max_frame_bytes > 1 << 31:
            raise InvalidArgument("Limits.max_frame_bytes", "must fit in 31 bits")


@attrs.frozen(kw_only=True)
class TlsConfig:
    """Optional TLS under the secret handshake.

    `server` is used when accepting, `client` when dialing; `server_hostname` is what
    the dialer checks the certificate against (None when `client.check_hostname` is off).
    TLS adds confidentiality and certificate-based identity; the cluster-secret
    handshake runs inside it regardless, so TLS never replaces the secret.

    `check_names`: the certificates name identities (`raftcluster.transport.certnames`:
    CN `node-<id>` or `client-<NAME>`), and the handshake refuses a peer whose certificate
    does not name the identity it claims (CERT_MISMATCH). It needs certificates on both
    sides (mutual TLS: `server` must require client certificates). Off only for contexts
    whose certificates name no identity (hostname-only TLS).
    """

    server: ssl.SSLContext | None = attrs.field(default=None, eq=False)
    client: ssl.SSLContext | None = attrs.field(default=None, eq=False)
    server_hostname: str | None = None
    check_names: bool = True


def _check_secret(instance: Any, attribute: attrs.Attribute[Any], value: bytes) -> None:
    if not isinstance(value, bytes):
        raise InvalidArgument("secret", "must be bytes")
    if not MIN_SECRET_BYTES <= len(value) <= MAX_SECRET_BYTES:
        raise InvalidArgument(
            "secret", f"{len(value)} bytes; need {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES}"
        )


def _check_cluster_id(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not 0 < len(value) <= MAX_CLUSTER_ID_CHARS:
        raise InvalidArgument("cluster_id", f"need 1..{MAX_CLUSTER_ID_CHARS} characters")


def _check_node_id(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 < value < 2**63:
        raise InvalidArgument(attribute.name, f"{value} must be a positive 63-bit integer")


def check_links(node_id: int, addresses: tuple[Address, ...]) -> None:
    if not 0 < len(addresses) <= MAX_LINKS:
        raise InvalidArgument(f"peers[{node_id}]", f"need 1..{MAX_LINKS} addresses (links)")


def _freeze_peers(value: Mapping[int, Any]) -> Mapping[int, tuple[Address, ...]]:
    frozen = {int(k): tuple(v) for k, v in value.items()}
    return types.MappingProxyType(frozen)


def _check_peers(
    instance: Any, attribute: attrs.Attribute[Any], value: Mapping[int, tuple[Address, ...]]
) -> None:
    for node_id, addresses in value.items():
        _check_node_id(instance, attrs.fields(TransportConfig).node_id, node_id)
        check_links(node_id, addresses)
        if node_id == instance.node_id:
            raise InvalidArgument(f"peers[{node_id}]", "a node is not its own peer")


@attrs.frozen(kw_only=True)
class TransportConfig:
    """A node's transport: identity, listen addresses, peers' links, secret and limits."""

    cluster_id: str = attrs.field(validator=_check_cluster_id)
    node_id: int = attrs.field(validator=_check_node_id)
    secret: bytes = attrs.field(repr=False, validator=_check_secret)
    listen: tuple[Address, ...] = attrs.field(converter=tuple)
    peers: Mapping[int, tuple[Address, ...]] = attrs.field(
        factory=dict, converter=_freeze_peers, validator=_check_peers
    )
    limits: Limits = Limits()
    backoff: Backoff = Backoff()
    bond_mode: BondMode = BondMode.ACTIVE_BACKUP
    tls: TlsConfig | None = None
    accept_clients: bool = True
    # The node's state machine parts: peers whose part set differs are refused (and
    # refuse this node) at the handshake. A bare transport has none.
    parts: PartSet = NO_PARTS
    # The credentials clients prove (never the cluster secret); None: no client can
    # authenticate. See `raftcluster.transport.credentials`.
    clients: ClientKeys | None = attrs.field(default=None, eq=False)
    # The node's member incarnation (`raftcluster.raft.types.Member`), told in every
    # handshake; peers refuse it if their configuration records another (STALE_MEMBER).
    member_incarnation: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self) -> None:
        if not self.listen:
            raise InvalidArgument("listen", "need at least one listen address")


@attrs.frozen(kw_only=True)
class ClientConfig:
    """A client's side of the transport: it proves a client credential and uses RPC only.

    `secret` is the cluster's client secret (`key_name` "") or the secret of the named
    client key `key_name`; never the cluster secret, which nodes refuse from a client."""

    cluster_id: str = attrs.field(validator=_check_cluster_id)
    client_id: int = attrs.field(validator=_check_node_id)
    secret: bytes = attrs.field(repr=False, validator=_check_secret)
    key_name: str = ""
    limits: Limits = Limits()
    tls: TlsConfig | None = None
