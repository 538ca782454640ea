"""The transport follows the membership the log records.

Once a cluster has started, its log (and a snapshot's configuration) is the authority on
who the members are and where they listen, not the cluster file: every node's transport
connects to members as they are added (or their addresses change) and drops those
removed. `follow_membership` is called whenever the configuration in force changes (the
latest in the log, committed or not: a leader replicates to a new learner from the moment
it appends the entry), and once at start (restored from the log or snapshot), with the
members whose removal was just applied.

Additions follow the configuration in force; a peer is dropped only when its removal is
applied, it is not a member of the configuration in force, and it is not the leader this
node follows: a node replaying an old stretch of the log (a new member catching up)
meets removals that later entries undo, and must keep hearing the leader meanwhile.

A configuration that records no member addresses (one founded without them, as tests
and embedded clusters may be) leaves the transport's peers as the settings gave them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from raftcluster.raft.types import ConfState
from raftcluster.transport import Transport
from raftcluster.transport.config import Address
from statemachine.errors import InvalidArgument

log = logging.getLogger("raftcluster.node")


def follow_membership(
    transport: Transport,
    conf: ConfState,
    node_id: int,
    removed: Iterable[int] = (),
    leader: int = 0,
) -> None:
    """Add or re-address each member `conf` records addresses for; drop the `removed`
    peers (whose removal was applied) that are not members of `conf` nor the `leader`.
    Never raises: an address the transport refuses is logged and skipped (the member
    stays unreachable)."""
    members = set(conf.voters) | set(conf.learners)
    for peer in sorted(set(removed) - members - {leader, node_id}):
        if peer in transport.peer_ids:
            transport.remove_peer(peer)
            log.info("node %d: node %d is no longer a member: link closed", node_id, peer)
    for member in conf.members:
        if member.node_id == node_id or not member.addresses:
            continue
        try:
            addresses = tuple(Address.parse(a) for a in member.addresses)
            known = member.node_id in transport.peer_ids
            transport.set_peer(member.node_id, addresses)
        except InvalidArgument as e:
            log.error("node %d: cannot reach node %d at %s: %s", node_id, member.node_id,
                      ", ".join(member.addresses), e)  # fmt: skip
            continue
        if not known:
            log.info("node %d: member %d added at %s", node_id, member.node_id,
                     ", ".join(member.addresses))  # fmt: skip
