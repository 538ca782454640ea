"""The blocking twin of `Membership`, for `SyncClient`:

    with raftcluster.connect_sync(cluster="mycluster") as client:
        client.membership.add(4, ["10.0.0.4:7000"], voter=True)

Each method runs the matching coroutine on the sync client's trio thread and blocks the
calling thread until it finishes: the same arguments, results and errors. Closing the
client cancels the calls under way (ClientClosed).
"""

from __future__ import annotations

from collections.abc import Sequence

from raftcluster.client.membership import Changed, Membership, MembershipView
from raftcluster.client.sync_groups import Portal


class SyncMembership:
    """`client.membership`, blocking (see `Membership`)."""

    def __init__(self, portal: Portal, membership: Membership) -> None:
        self._portal = portal
        self._membership = membership

    def list(self) -> MembershipView:
        return self._portal.run(self._membership.list)

    def add(
        self,
        node_id: int,
        addresses: Sequence[str],
        *,
        voter: bool = False,
        incarnation: int | None = None,
    ) -> Changed:
        return self._portal.run(
            self._membership.add, node_id, addresses, voter=voter, incarnation=incarnation
        )

    def promote(self, node_id: int) -> Changed:
        return self._portal.run(self._membership.promote, node_id)

    def remove(self, node_id: int) -> Changed:
        return self._portal.run(self._membership.remove, node_id)

    def replace(self, node_id: int, addresses: Sequence[str] | None = None) -> Changed:
        return self._portal.run(self._membership.replace, node_id, addresses)

    def transfer_leadership(self, to: int | None = None) -> int:
        return self._portal.run(self._membership.transfer_leadership, to)
