"""`LeaseKeeper`: a node's side of self-fencing, as a sans-IO core.

Inputs (the node's own clock, in ms):
    tick(now_ms) -> NodeHeartbeat | None   the heartbeat due now, if one is: the shell
                                           sends it to every peer (and to itself if it
                                           leads)
    acked(ack, now_ms, applied_index)      a leader's ack arrived: the new lease end, if
        -> int | None                      it extends the lease and this node's state
                                           has applied as far as the leader's had
    applied(applied_index, now_ms)         the node's state applied further: the lease
        -> int | None                      end an ack held back, once it may count
    lease_until_ms                         the node may run resources until then
    next_wake_ms()                         when `tick` next has something to do

The lease is anchored at the send time of the newest heartbeat a leader acked: it ends
`fence_after_ms` after that send on this node's clock, whatever the ack's delay. An ack
for a heartbeat this keeper never sent (another incarnation's, a forged or duplicated
one) or older than the newest acked is ignored. The shell passes every new lease end to
the `ResourceController` (`lease()`), which stops the node's groups before it ends and
tells the watchdog.

Clock steps: if `now_ms` goes backwards, the lease and every heartbeat still unacked are
voided (a lease measured on a clock that stepped back would last longer in real time
than the timing rule allows); a new heartbeat goes out at once.
"""

from __future__ import annotations

from raftcluster.groups.heartbeat import NodeHeartbeat, NodeHeartbeatAck
from raftcluster.groups.timing import GroupTiming


class LeaseKeeper:
    def __init__(self, node: int, incarnation: int, timing: GroupTiming, now_ms: int) -> None:
        self.node = node
        self.incarnation = incarnation
        self.timing = timing
        self.lease_until_ms = 0  # no lease until a leader acks a heartbeat
        self._next_send_ms = now_ms  # the first heartbeat goes out at once
        self._sent: list[int] = []  # send times not yet acked, ascending
        self._anchor_ms = -1  # the send time of the newest acked heartbeat
        self._now_ms = now_ms
        # An ack whose leader had applied further than this node: (index, lease end).
        self._held: tuple[int, int] | None = None

    def tick(self, now_ms: int) -> NodeHeartbeat | None:
        self._observe(now_ms)
        if now_ms < self._next_send_ms:
            return None
        self._next_send_ms = now_ms + self.timing.heartbeat_interval_ms
        if not self._sent or self._sent[-1] < now_ms:
            self._sent.append(now_ms)
        # An ack for a heartbeat older than one lease is worth nothing: forget those.
        horizon = now_ms - self.timing.fence_after_ms
        while self._sent and self._sent[0] <= horizon:
            self._sent.pop(0)
        assert self._sent == sorted(set(self._sent))
        return NodeHeartbeat(self.node, self.incarnation, now_ms)

    def acked(self, ack: NodeHeartbeatAck, now_ms: int, applied_index: int = 0) -> int | None:
        self._observe(now_ms)
        if ack.node != self.node or ack.sent_ms not in self._sent:
            return None  # not ours, not sent by this incarnation, already used or too old
        assert ack.sent_ms > self._anchor_ms
        self._anchor_ms = ack.sent_ms
        self._sent = [s for s in self._sent if s > ack.sent_ms]
        until = ack.sent_ms + self.timing.fence_after_ms
        if applied_index < ack.applied_index:  # not before this node's state caught up
            self._held = (ack.applied_index, until)
            return None
        self._held = None
        return self._extend(until)

    @property
    def held_for_index(self) -> int | None:
        """The applied index a held-back ack waits for (`applied` releases it), or None."""
        return self._held[0] if self._held is not None else None

    def applied(self, applied_index: int, now_ms: int) -> int | None:
        self._observe(now_ms)
        held = self._held
        if held is None or applied_index < held[0]:
            return None
        self._held = None
        return self._extend(held[1])

    def _extend(self, until: int) -> int | None:
        if until <= self.lease_until_ms:
            return None
        self.lease_until_ms = until
        return until

    def next_wake_ms(self) -> int:
        return self._next_send_ms

    def _observe(self, now_ms: int) -> None:
        if now_ms < self._now_ms:  # the clock stepped back: trust nothing measured on it
            self.lease_until_ms = min(self.lease_until_ms, now_ms)
            self._sent.clear()
            self._held = None
            self._anchor_ms = -1
            self._next_send_ms = now_ms
        self._now_ms = now_ms
