"""Raft consensus as a synchronous core with no I/O (see `core` for the contract).

config.RaftConfig       settings and their defaults
core.RaftCore           the node: tick/step/propose/read_index/... in, ready()/advance() out
ready                   Ready, SoftState, ReadState, LogPosition, Role, Status
messages                the wire messages (codec tags 1010-1099)
types                   Entry, HardState, ConfState, ConfChange, Snapshot (shared with storage)
errors                  NotLeader, RequestDropped, ConfChangeRejected
membership              one-server-at-a-time configuration changes
describe                one-line text for entries, messages and Readies
"""

from raftcluster.raft.config import RaftConfig
from raftcluster.raft.core import RaftCore
from raftcluster.raft.errors import ConfChangeRejected, NotLeader, RaftError, RequestDropped
from raftcluster.raft.ready import LogPosition, ReadState, Ready, Role, SoftState, Status
from raftcluster.raft.types import (
    ConfChange,
    ConfChangeOp,
    ConfState,
    DurableState,
    Entry,
    EntryKind,
    HardState,
    Snapshot,
    SnapshotMeta,
)

__all__ = [
    "ConfChange",
    "ConfChangeOp",
    "ConfChangeRejected",
    "ConfState",
    "DurableState",
    "Entry",
    "EntryKind",
    "HardState",
    "LogPosition",
    "NotLeader",
    "RaftConfig",
    "RaftCore",
    "RaftError",
    "ReadState",
    "Ready",
    "RequestDropped",
    "Role",
    "SoftState",
    "Snapshot",
    "SnapshotMeta",
    "Status",
]
