"""The transport follows the membership the log records.

Once a cluster has started, its log (and a snapshot's configuration) is the authority on
who the members are and where they listen, not the cluster file: every node's transport
connects to members as they are added (or their addresses change) and drops those
removed. `follow_membership` is called with the configuration in force (the latest in the
log, committed or not: a leader replicates to a new learner from the moment it appends
the entry) whenever it changes, and once at start (restored from the log or snapshot).

A configuration that records no member addresses (one founded without them, as tests
and embedded clusters may be) leaves the transport's peers as the settings gave them.
"""

from __future__ import annotations

import logging

from raftcluster.raft.types import ConfState
from raftcluster.transport import Transport
from raftcluster.transport.config import Address
from statemachine.errors import InvalidArgument

log = logging.getLogger("raftcluster.node")


def follow_membership(transport: Transport, conf: ConfState, node_id: int) -> None:
    """Make `transport`'s peers those `conf` records: add or re-address each member with
    recorded addresses, remove peers that are no longer members. Never raises: an address
    the transport refuses is logged and skipped (the member stays unreachable)."""
    if not conf.members:
        return
    members = set(conf.voters) | set(conf.learners)
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
    for peer in sorted(transport.peer_ids - members):
        transport.remove_peer(peer)
        log.info("node %d: node %d is no longer a member: link closed", node_id, peer)
