"""Errors of the node runtime (`raftcluster.node.runtime`), rooted at `ClusterError`."""

from __future__ import annotations

from statemachine.errors import ClusterError


class NodeError(ClusterError):
    """A node cannot start or go on: the message says why and what to do."""


class PortInUse(NodeError):
    """Another process already listens on one of the node's addresses."""

    def __init__(self, node_id: int, address: str) -> None:
        super().__init__(
            f"node {node_id} cannot listen on {address}: the address is already in use "
            "(is this node already running, or another program on that port?)"
        )
        self.node_id = node_id
        self.address = address


class DataDirMismatch(NodeError):
    """The data directory belongs to another node or another cluster."""


class DataDirLost(NodeError):
    """A member's data directory is empty or lost, and the node was not asked to join:
    starting afresh under the same identity could vote twice in one term. The message
    says how to bring the node back (docs/operations.md, "Replace a failed machine")."""

    def __init__(self, node_id: int, data_dir: str, what: str) -> None:
        super().__init__(
            f"node {node_id} refuses to start: its data directory {data_dir} {what}. A member "
            "that lost its data must not start afresh under the same identity (it could vote "
            "a second time in a term it already voted in). Bring it back with `raftcluster "
            f"member replace {node_id} [--address HOST:PORT] --write-config FILE` (it is "
            "removed, then added again with a fresh identity) and start it with `raftcluster "
            f"node run --config FILE --id {node_id} --join`; or restore the directory from a "
            "backup taken after the node last ran. A new cluster's directories are prepared "
            "by `raftcluster init`; a new machine joins with `raftcluster member add ... "
            "--write-config FILE` and `node run --join`. See docs/operations.md."
        )
        self.node_id = node_id
        self.data_dir = data_dir
