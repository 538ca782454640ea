"""What `Client.status()` returns: each node's own view (`GetStatus`), or why it did not
answer, and what follows from them (the leader, whether a quorum answered)."""

from __future__ import annotations

import attrs

from raftcluster.node.protocol import NodeStatus
from raftcluster.raft.quorum import majority


@attrs.frozen
class NodeReport:
    """Node `node_id`'s answer, or `error` saying why there was none."""

    node_id: int
    status: NodeStatus | None = None
    error: str = ""

    @property
    def reachable(self) -> bool:
        return self.status is not None


@attrs.frozen
class ClusterStatus:
    nodes: tuple[NodeReport, ...]

    @property
    def leader(self) -> int:
        """A node that says it leads (the highest term wins), or 0."""
        leaders = [r.status for r in self.nodes if r.status and r.status.role == "leader"]
        return max(leaders, key=lambda s: s.term).node_id if leaders else 0

    @property
    def term(self) -> int:
        """The highest term any node answered with."""
        return max((r.status.term for r in self.nodes if r.status), default=0)

    @property
    def voters(self) -> tuple[int, ...]:
        """The voters, as the node with the highest applied index knows them."""
        known = [r.status for r in self.nodes if r.status]
        if not known:
            return tuple(r.node_id for r in self.nodes)
        return max(known, key=lambda s: s.applied_index).voters

    @property
    def quorum(self) -> bool:
        """Whether a majority of the voters answered (writes and linearizable reads can
        then be served, once one of them leads)."""
        voters = self.voters
        answered = sum(1 for r in self.nodes if r.reachable and r.node_id in voters)
        return bool(voters) and answered >= majority(len(voters))
