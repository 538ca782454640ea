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
