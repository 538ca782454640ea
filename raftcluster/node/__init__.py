"""The node core (sans-IO): a Raft core, its storage and the cluster state as one object.

replica.Replica     tick / receive / client_request in; prepare / persist / complete out
cycle.CycleCore     the cycle policy around a Replica: what goes before the fsync, what
                    after, which answers are released, what is answered on stop
config.ReplicaConfig settings and their defaults
protocol            the client protocol (codec tags 2100-2199)
services            leader services (session expiry) and quorum contact
pending             requests held until they can be answered

The trio runtime drives a `Replica` on real storage and the network:
runtime.run(settings)   async with: a started `Node`; leaving the block stops it
runtime.Node            serve() / stop() / info(); settings.NodeSettings says what it runs
driver.Driver           the trio shell around one CycleCore (awaits, worker thread, timers)
admin                   the admin protocol (node info, fault injection; tags 2200-2299)

The trio runtime and the simulator (`chaos.sim`) drive the same `CycleCore`.
"""

from raftcluster.node.config import ReplicaConfig
from raftcluster.node.replica import AppliedEvent, Output, Replica, Reply, Work
from raftcluster.node.runtime import Node, run
from raftcluster.node.services import LeaderService, SessionExpiry
from raftcluster.node.settings import NodeSettings

__all__ = [
    "AppliedEvent",
    "LeaderService",
    "Node",
    "NodeSettings",
    "Output",
    "Replica",
    "ReplicaConfig",
    "Reply",
    "SessionExpiry",
    "Work",
    "run",
]
