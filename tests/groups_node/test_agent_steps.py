"""When the node agent needs a step after a cycle (`NodeAgent.needs_step`): the trio node
steps its cluster service after a cycle only then, so a kv write costs the service
nothing, while a change of the groups part, or an ack held back until this node applied
as far as its leader, still reaches the agent.

One replica (a single voter, the test harness's in-memory cluster) with an agent
attached, as a node has; its writes go through sessions as a client's do.
"""

from __future__ import annotations

from raftcluster.groups.agent import NodeAgent
from raftcluster.groups.heartbeat import NodeHeartbeatAck
from raftcluster.groups.timing import GroupTiming
from raftcluster.groups.updates import MemoryCursor
from statemachine.codec import Message
from statemachine.groups.messages import JoinNode, ListNodes, NodeList
from statemachine.kv import Put
from statemachine.sessions import OpenSession, SessionRequest
from tests.node.harness import LocalCluster


def test_a_kv_write_needs_no_step_a_groups_change_and_a_released_ack_do() -> None:
    cluster = LocalCluster(1)
    leader = cluster.elect()
    replica = cluster.replicas[leader]
    agent = NodeAgent(leader, 1, GroupTiming(), cluster.now_ms, MemoryCursor())
    agent.attach(replica)
    assert agent.needs_step()  # never stepped: it has not read the state yet
    agent.step(cluster.now_ms)
    assert not agent.needs_step()
    session: int = cluster.write(leader, OpenSession(0, 60_000)).session  # type: ignore[attr-defined]
    seq = 0

    def write(command: Message) -> None:
        nonlocal seq
        seq += 1
        cluster.write(leader, SessionRequest(session, seq, seq - 1, command))

    write(Put(b"k", b"v"))
    assert not agent.needs_step()  # the groups part did not change
    write(JoinNode(leader, cluster.now_ms, 1))
    assert agent.needs_step()
    agent.step(cluster.now_ms)
    assert not agent.needs_step()
    assert leader in agent.members()  # read again after the change
    listing = replica.state.read(ListNodes())
    assert isinstance(listing, NodeList) and [n.node for n in listing.nodes] == [leader]

    # An ack from a leader that had applied one entry more than this node has: held
    # back until this node applies that far, then the step must run to renew the lease.
    cluster.run(max(0, agent.lease.next_wake_ms() - cluster.now_ms))
    beat = agent.step(cluster.now_ms).heartbeat  # the heartbeat the leader acks
    assert beat is not None
    ahead = replica.applied_index + 1
    agent.ack_in(NodeHeartbeatAck(leader, replica.core.term, beat.sent_ms, ahead))
    lease_until_ms = agent.lease.lease_until_ms  # (from the acks of its own heartbeats)
    agent.step(cluster.now_ms)
    assert agent.lease.held_for_index == ahead
    assert (
        agent.lease.lease_until_ms == lease_until_ms < beat.sent_ms + GroupTiming().fence_after_ms
    )
    assert not agent.needs_step()
    write(Put(b"k", b"w"))  # a kv write, but it brings the applied index there
    assert replica.applied_index >= ahead and agent.needs_step()
    agent.step(cluster.now_ms)
    assert agent.lease.held_for_index is None
    assert agent.lease.lease_until_ms == beat.sent_ms + GroupTiming().fence_after_ms
    assert not agent.needs_step()
