"""raftcluster: a cluster service on one Raft log.

The public surface is re-exported here; the modules behind it are private to the
package and may move.
"""

from statemachine.errors import (
    ClusterError,
    Compacted,
    DecodeError,
    FutureRevision,
    InvalidArgument,
    LimitExceeded,
    Rejected,
    SessionError,
)

__all__ = [
    "ClusterError",
    "Compacted",
    "DecodeError",
    "FutureRevision",
    "InvalidArgument",
    "LimitExceeded",
    "Rejected",
    "SessionError",
]
__version__ = "0.1.0"
