"""The client side: `connect` gives a `Client` (api.py) of a cluster; `connect_sync` a
`SyncClient` for code that does not run trio (sync.py). Underneath, `core.ClientCore`
(sans-IO) holds the session and retry logic that the trio runner (runner.py) and the
simulator's workloads both drive."""

from raftcluster.client import txn
from raftcluster.client.api import Client
from raftcluster.client.cluster_status import ClusterStatus, NodeReport
from raftcluster.client.connect import ClientOptions, connect
from raftcluster.client.core import ClientConfig, ClientCore, Completion, Send
from raftcluster.client.events import GroupEvents
from raftcluster.client.group_file import GroupEntry, GroupFile, GroupFileError, load_group_file
from raftcluster.client.groups import ApplyResult, Groups
from raftcluster.client.nodes import MemberStatus, Nodes
from raftcluster.client.txn import TxnBuilder
from raftcluster.client.watch import Watch, WatchCursor

__all__ = [
    "ApplyResult",
    "Client",
    "ClientConfig",
    "ClientCore",
    "ClientOptions",
    "ClusterStatus",
    "Completion",
    "GroupEntry",
    "GroupEvents",
    "GroupFile",
    "GroupFileError",
    "Groups",
    "MemberStatus",
    "Nodes",
    "NodeReport",
    "Send",
    "TxnBuilder",
    "Watch",
    "WatchCursor",
    "connect",
    "load_group_file",
    "txn",
]
