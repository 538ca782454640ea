"""The node core (sans-IO): a Raft core, its storage and the cluster state as one object.

replica.Replica     tick / receive / client_request in; prepare / persist / complete out
config.ReplicaConfig settings and their defaults
protocol            the client protocol (codec tags 2100-2199)
services            leader services (session expiry) and quorum contact
pending             requests held until they can be answered

The trio runtime and the simulator (`chaos.sim`) drive the same `Replica`.
"""

from raftcluster.node.config import ReplicaConfig
from raftcluster.node.replica import AppliedEvent, Output, Replica, Reply, Work
from raftcluster.node.services import LeaderService, SessionExpiry

__all__ = [
    "AppliedEvent",
    "LeaderService",
    "Output",
    "Replica",
    "ReplicaConfig",
    "Reply",
    "SessionExpiry",
    "Work",
]
