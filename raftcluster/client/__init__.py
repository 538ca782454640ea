"""The client side: `connect` gives a `Client` (api.py) of a cluster; `connect_sync` a
`SyncClient` for code that does not run trio (sync.py). Underneath, `core.ClientCore`
(sans-IO) holds the session and retry logic that the trio runner (runner.py) and the
simulator's workloads both drive."""

from raftcluster.client import txn
from raftcluster.client.api import Client
from raftcluster.client.cluster_status import ClusterStatus, NodeReport
from raftcluster.client.connect import ClientOptions, connect
from raftcluster.client.core import ClientConfig, ClientCore, Completion, Send
from raftcluster.client.txn import TxnBuilder
from raftcluster.client.watch import Watch, WatchCursor

__all__ = [
    "Client",
    "ClientConfig",
    "ClientCore",
    "ClientOptions",
    "ClusterStatus",
    "Completion",
    "NodeReport",
    "Send",
    "TxnBuilder",
    "Watch",
    "WatchCursor",
    "connect",
    "txn",
]
