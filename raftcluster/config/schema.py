"""What a cluster file holds, as frozen values: `ClusterFile` and its sections.

The numeric settings are attrs fields whose metadata carries their range and their
meaning, so the loader, `raftcluster init` (which writes each one, commented, with its
default) and docs/config.md (checked by a test) all read the same list. Their defaults
are those of the classes they end up in (`RaftConfig`, `ReplicaConfig`, the transport's
`Limits`, `WalOptions`), so a file that sets nothing runs the library's defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from raftcluster.groups.timing import GroupTiming
from raftcluster.node.config import ReplicaConfig
from raftcluster.raft.config import RaftConfig
from raftcluster.raft.messages import MAX_SNAPSHOT_CHUNK_BYTES
from raftcluster.storage.wal import WalOptions
from raftcluster.transport.config import MAX_CLUSTER_ID_CHARS, MAX_LINKS, Address, Limits
from statemachine.codec import int_range

MAX_NODES = 64
MAX_NODE_ID = 2**63 - 1


def _default(cls: type, name: str) -> int:
    value = getattr(attrs.fields(cls), name).default
    assert isinstance(value, int), (cls, name)
    return value


def setting(cls: type, name: str, lo: int, hi: int, doc: str, default: int | None = None) -> Any:
    """A numeric setting with the default of `cls.name` (or `default`), accepted in lo..hi."""
    default = _default(cls, name) if default is None else default
    assert lo <= default <= hi, (name, default)
    return attrs.field(
        default=default, validator=int_range(lo, hi), metadata={"lo": lo, "hi": hi, "doc": doc}
    )


@attrs.frozen(kw_only=True)
class Timing:
    """[timing]: every time the node waits for, in milliseconds."""

    election_timeout_ms: int = setting(
        RaftConfig, "election_timeout_ms", 10, 600_000,
        "a follower that hears from no leader for a random time in [T, 2T) campaigns; a "
        "leader that hears from no quorum for T steps down. At least twice the heartbeat.",
        default=500,  # a LAN's (the Raft core's own default is 1000)
    )  # fmt: skip
    heartbeat_interval_ms: int = setting(
        RaftConfig, "heartbeat_interval_ms", 1, 60_000,
        "how often the leader tells followers it is alive (and confirms reads)",
    )  # fmt: skip
    commit_notice_delay_ms: int = setting(
        RaftConfig, "commit_notice_delay_ms", 0, 60_000,
        "how long a leader waits for an append to carry a new commit index before it "
        "sends one for it alone (followers apply up to this much later; 0: at once)",
    )  # fmt: skip
    request_timeout_ms: int = setting(
        ReplicaConfig, "request_timeout_ms", 10, 3_600_000,
        "how long a node waits for a write to be applied before answering TIMED_OUT "
        "(the write may still be applied)",
    )  # fmt: skip
    read_timeout_ms: int = setting(
        ReplicaConfig, "read_timeout_ms", 10, 3_600_000,
        "how long a linearizable read may wait for its ReadIndex and apply",
    )  # fmt: skip
    session_expiry_interval_ms: int = setting(
        ReplicaConfig, "session_expiry_interval_ms", 10, 3_600_000,
        "how often the leader proposes the expiry of client sessions past their deadline",
    )  # fmt: skip
    keepalive_interval_ms: int = setting(
        Limits, "keepalive_interval_ms", 10, 60_000,
        "silence on a connection after which a keepalive is sent",
    )  # fmt: skip
    idle_timeout_ms: int = setting(
        Limits, "idle_timeout_ms", 30, 600_000,
        "silence after which a connection is declared dead and redialed "
        "(more than twice the keepalive interval)",
    )  # fmt: skip
    connect_timeout_ms: int = setting(
        Limits, "connect_timeout_ms", 10, 600_000, "one TCP connect to a peer"
    )
    handshake_timeout_ms: int = setting(
        Limits, "handshake_timeout_ms", 10, 600_000,
        "the whole authentication handshake of a new connection",
    )  # fmt: skip


@attrs.frozen(kw_only=True)
class NodeLimits:
    """[limits]: the bounds on memory, disk and network use."""

    snapshot_every_entries: int = setting(
        ReplicaConfig, "snapshot_every_entries", 1, 100_000_000,
        "take a state machine snapshot (and compact the log) after this many applied entries",
    )  # fmt: skip
    max_pending_requests: int = setting(
        ReplicaConfig, "max_pending_requests", 1, 1_000_000,
        "client requests a node holds at once; more are refused with OVERLOADED",
    )  # fmt: skip
    max_frame_bytes: int = setting(
        Limits, "max_frame_bytes", 1 << 20, 1 << 31,
        "the largest network frame; the same on every node and client",
    )  # fmt: skip
    max_client_connections: int = setting(
        Limits, "max_client_connections", 1, 1_000_000, "client connections a node accepts"
    )
    max_segment_bytes: int = setting(
        WalOptions, "max_segment_bytes", 4 << 20, 1 << 40,
        "size at which the write-ahead log starts a new segment file",
    )  # fmt: skip
    max_snapshot_chunk_bytes: int = setting(
        RaftConfig, "max_snapshot_chunk_bytes", 1024, MAX_SNAPSHOT_CHUNK_BYTES,
        "one InstallSnapshot chunk's bytes; with its frame's overhead it must fit in "
        "max_frame_bytes (the loader checks)",
    )  # fmt: skip
    max_append_bytes: int = setting(
        RaftConfig, "max_bytes_per_msg", 1024, 1 << 30,
        "entry bytes one AppendEntries carries at most (always at least one entry); with "
        "its frame's overhead it must fit in max_frame_bytes (the loader checks)",
    )  # fmt: skip


@attrs.frozen(kw_only=True)
class Groups:
    """[groups]: the cluster service's times, in milliseconds (docs/groups-node.md). With
    [timing]'s election_timeout_ms they must satisfy the timing rule (`GroupTiming`)."""

    heartbeat_interval_ms: int = setting(
        GroupTiming, "heartbeat_interval_ms", 1, 600_000,
        "how often every node tells every peer it is alive; the leader's acks renew its lease",
    )  # fmt: skip
    fence_after_ms: int = setting(
        GroupTiming, "fence_after_ms", 2, 3_600_000,
        "a node's lease: it stops its groups (and its watchdog kills what is left) this long "
        "after the send of the last heartbeat a leader acked. At least twice the heartbeat",
    )  # fmt: skip
    node_down_after_ms: int = setting(
        GroupTiming, "node_down_after_ms", 0, 86_400_000,
        "silence after which the leader declares a node down and its groups fail over; at "
        "least the timing rule's minimum (docs/groups-node.md). 0: that minimum, rounded up "
        "to 100 ms (1300 with the other defaults)",
        default=0,
    )  # fmt: skip
    kill_ms: int = setting(
        GroupTiming, "kill_ms", 0, 600_000,
        "the time a node's watchdog needs to kill every resource once the lease ends",
    )  # fmt: skip
    max_drift_ppm: int = setting(
        GroupTiming, "max_drift_ppm", 0, 500_000,
        "the most two nodes' clocks may differ in rate, in parts per million",
    )  # fmt: skip
    tick_interval_ms: int = setting(
        GroupTiming, "tick_interval_ms", 1, 3_600_000,
        "how often the leader proposes GroupsTick (failback windows, stable timers, failure "
        "expiry)",
    )  # fmt: skip
    report_retry_ms: int = setting(
        GroupTiming, "report_retry_ms", 1, 3_600_000,
        "how often a node proposes a group report again until the state shows it",
    )  # fmt: skip


@attrs.frozen(kw_only=True)
class Fencing:
    """[fencing]: the fencing agent the leader runs before it declares a node down."""

    command: tuple[str, ...] = ()  # argv (the file's string, split as a shell would); () none
    timeout_ms: int = 10_000


@attrs.frozen(kw_only=True)
class TlsFiles:
    """[tls]: mutual TLS under the secret handshake (docs/security.md). Absolute paths;
    `cert_file` and `key_file` may hold "{id}", which stands for the node's id. The files
    themselves are read where they are used (`raftcluster.config.tls`): a node's on its
    own machine, a client's on the client's."""

    ca_file: Path
    cert_file: str  # a path, with "{id}" for the node id
    key_file: str
    client_cert_file: Path | None = None  # what a client reading the cluster file presents
    client_key_file: Path | None = None

    def node_cert(self, node_id: int) -> Path:
        return Path(self.cert_file.replace("{id}", str(node_id)))

    def node_key(self, node_id: int) -> Path:
        return Path(self.key_file.replace("{id}", str(node_id)))


@attrs.frozen
class NodeEntry:
    """One [[nodes]] table: a node's id, its addresses and its data directory."""

    id: int
    addresses: tuple[Address, ...]  # raft and client RPC; several addresses: bonded links
    data_dir: Path  # absolute
    # The incarnation `member add` / `member replace` recorded for a node that joins a
    # running cluster (`node run --join`); 0 for a founding member.
    incarnation: int = 0


@attrs.frozen
class ClusterFile:
    """A loaded cluster file. Paths are absolute (relative ones are taken from the file's
    directory). `secret` is read from `secret_file` and checked when the file is loaded."""

    path: Path
    cluster_id: str
    secret_file: Path
    secret: bytes = attrs.field(repr=False)
    allow_fault_injection: bool
    timing: Timing
    limits: NodeLimits
    nodes: tuple[NodeEntry, ...]
    groups: Groups = attrs.field(factory=Groups)
    fencing: Fencing = attrs.field(factory=Fencing)
    parts: tuple[str, ...] = ()  # [state] parts: import paths of user parts, "module:NAME"
    # Client credentials (docs/security.md): the client secret clients prove instead of
    # the cluster secret, and the file of named client keys every node reads.
    client_secret_file: Path | None = None
    client_secret: bytes | None = attrs.field(default=None, repr=False)
    client_keys_file: Path | None = None
    tls: TlsFiles | None = None  # [tls]: None, no TLS

    @property
    def node_ids(self) -> tuple[int, ...]:
        return tuple(n.id for n in self.nodes)

    def find(self, node_id: int) -> NodeEntry | None:
        for entry in self.nodes:
            if entry.id == node_id:
                return entry
        return None


# -- the keys, for the loader, `init` and the docs test ----------------------------------


@attrs.frozen
class Key:
    """One key of the file: where it lives, its type, its default (None: required)."""

    section: str  # "cluster", "timing", "limits", "groups", "fencing", "state", "tls", "nodes"
    name: str
    kind: type  # int, bool, str or list (of strings)
    default: object
    doc: str
    lo: int = 0
    hi: int = 0

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"


CLUSTER_KEYS = (
    Key("cluster", "id", str, None,
        f"the cluster's name, 1..{MAX_CLUSTER_ID_CHARS} characters of letters, digits, "
        "'.', '_' and '-'; every node and client must use the same"),
    Key("cluster", "secret_file", str, "secret",
        "the file holding the cluster secret (16..1024 random bytes, mode 0600); relative "
        "to the cluster file's directory"),
    Key("cluster", "allow_fault_injection", bool, False,
        "let holders of the secret set message loss, delay and blocking between nodes "
        "through the admin RPC (the chaos harness's live mode); never in production"),
    Key("cluster", "client_secret_file", str, "client-secret",
        "the file holding the client secret (16..1024 random bytes, mode 0600), which "
        "clients prove instead of the cluster secret; relative to the cluster file's "
        "directory"),
    Key("cluster", "client_keys_file", str, "client-keys.toml",
        "the file of named client keys (`raftcluster client add`), which every node reads "
        "and re-reads when it changes; absent: no named keys"),
)  # fmt: skip

MAX_INCARNATION = (1 << 62) - 1
NODE_KEYS = (
    Key("nodes", "id", int, None, "the node's id, a positive integer unique in the file",
        1, MAX_NODE_ID),
    Key("nodes", "addresses", list, None,
        f"\"host:port\" addresses the node listens on for peers and clients, 1..{MAX_LINKS}; "
        "with several, peers keep one link per address (channel bonding)"),
    Key("nodes", "data_dir", str, None,
        "the node's data directory (its log, snapshots and identity); relative to the "
        "cluster file's directory; default node-<id>"),
    Key("nodes", "incarnation", int, 0,
        "the incarnation recorded when the node was added to a running cluster (written "
        "by member add --write-config); 0 for a founding member", 0, MAX_INCARNATION),
)  # fmt: skip


def _setting_keys(section: str, cls: type) -> tuple[Key, ...]:
    return tuple(
        Key(section, f.name, int, f.default, f.metadata["doc"], f.metadata["lo"], f.metadata["hi"])
        for f in attrs.fields(cls)
    )


TIMING_KEYS = _setting_keys("timing", Timing)
LIMIT_KEYS = _setting_keys("limits", NodeLimits)
GROUP_KEYS = _setting_keys("groups", Groups)
FENCING_KEYS = (
    Key("fencing", "command", str, "",
        "a fencing agent (STONITH): the leader runs `command <node id>` before it declares a "
        "silent node down, and does so only if it exits 0 (else the node's groups stay and a "
        "NodeFenceFailed event is recorded); empty: none"),
    Key("fencing", "timeout_ms", int, 10_000,
        "how long the fencing agent may run; past it, it is killed and counts as failed",
        1, 3_600_000),
)  # fmt: skip
STATE_KEYS = (
    Key("state", "parts", list, [],
        "the user parts every node runs beside the built-in ones, as import paths "
        "\"module:NAME\" naming a PartSpec, a list of them or a function returning them; "
        "the modules must be importable by the nodes (installed, or on PYTHONPATH)"),
)  # fmt: skip
TLS_KEYS = (
    Key("tls", "ca_file", str, "tls/ca.crt",
        "the CA certificate (PEM) that signs every node's and every client's certificate; "
        "both ends of every connection must present a certificate it signed"),
    Key("tls", "cert_file", str, "tls/node-{id}.crt",
        "this node's certificate (PEM), whose subject CN is node-<id>; \"{id}\" stands for "
        "the node's id"),
    Key("tls", "key_file", str, "tls/node-{id}.key",
        "this node's private key (PEM, mode 0600); \"{id}\" stands for the node's id"),
    Key("tls", "client_cert_file", str, "",
        "the certificate (PEM) a client that reads this file presents (the CLI's --cluster, "
        "raftcluster.connect(cluster=...)): CN client-<NAME> for a named client key NAME, or "
        "a node's node-<id>; empty: such a client cannot connect"),
    Key("tls", "client_key_file", str, "",
        "the private key (PEM, mode 0600) of client_cert_file"),
)  # fmt: skip
ALL_KEYS = (
    CLUSTER_KEYS
    + TIMING_KEYS
    + LIMIT_KEYS
    + GROUP_KEYS
    + FENCING_KEYS
    + STATE_KEYS
    + TLS_KEYS
    + NODE_KEYS
)
SECTIONS = ("cluster", "timing", "limits", "groups", "fencing", "state", "tls", "nodes")
