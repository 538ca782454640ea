"""The simulated network: delays, loss, duplication, reordering, damage, cuts.

Every message is an `Envelope` scheduled for delivery at a time drawn from the current
`NetworkConditions`; equal times deliver in send order. A message is lost when drawn to
be, or when its link is cut at send time or at delivery time (a partition that starts
while it is in flight loses it). Only node-to-node messages are duplicated: the client
RPC channel does not duplicate requests (the client core relies on that). A partition
also cuts each client from the nodes across it from its home node (`homes`), so a
client next to a cut-off leader can reach nothing else.

A crashed node's connections close (`close_links`): each peer it is not cut from gets a
`LinkClosed` after everything the node sent it before, as TCP delivers a close after the
data; a cut link carries none, so a partition never looks like a crash.
"""

from __future__ import annotations

import heapq
import random
from typing import Any

import attrs

from chaos.sim.faults import (
    CutLinks,
    Degrade,
    Fault,
    HealNetwork,
    NetworkConditions,
    Partition,
    SlowLinks,
)


@attrs.define(eq=False)
class Envelope:
    """(Not frozen, though nothing changes one once sent, a damaged copy being another:
    one is built for every message, and a frozen class's `__init__` costs three times
    as much. Compared by identity.)"""

    src: int
    dst: int
    payload: Any  # what the engine sent (ours: the frame's bytes and the frame)
    sent_ms: int
    # Set when the network damaged this copy: it arrives cut at this fraction of its length.
    damage: float | None = None


@attrs.frozen
class LinkClosed:
    """The payload of an envelope that stands for a close: `node`'s process is gone and
    its kernel closed its connection to the envelope's destination."""

    node: int


@attrs.define
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0  # drawn to be dropped
    cut: int = 0  # dropped by a cut link
    duplicated: int = 0
    damaged: int = 0  # delivered cut short (the receiver must refuse it)
    to_down_node: int = 0  # arrived at a node that was not running
    slowed: int = 0  # sent over a slow link (with its extra delay)
    reordered: int = 0  # delivered after a message sent later on the same link
    links_closed: int = 0  # closes of a crashed node's connections sent to its peers


class Network:
    def __init__(self, rng: random.Random, conditions: NetworkConditions) -> None:
        self.rng = rng
        self.conditions = conditions
        self.cuts: set[tuple[int, int]] = set()  # directed (src, dst)
        # Clients live next to a node (client id -> node): a partition puts each on its
        # node's side, cut from the nodes of the other sides (as Jepsen's clients are).
        self.homes: dict[int, int] = {}
        self.slow: dict[tuple[int, int], int] = {}  # directed (src, dst) -> extra delay
        self.degraded: dict[str, NetworkConditions] = {}  # by source, on top of `conditions`
        # Per link, the send time of the latest message delivered (to count reordering).
        self._last_sent: dict[tuple[int, int], int] = {}
        self.stats = NetworkStats()
        self._queue: list[tuple[int, int, Envelope]] = []
        self._seq = 0

    def apply(self, fault: Fault, nodes: tuple[int, ...]) -> bool:
        """Carry out `fault` if it is a network fault (True), else leave it (False). Both
        engines (ours and pysyncobj's) share this, so a nemesis means the same on each."""
        if isinstance(fault, Partition):
            side = {n: i for i, group in enumerate(fault.groups) for n in group}
            self.cuts = {
                (a, b) for a in nodes for b in nodes
                if a != b and (a not in side or b not in side or side[a] != side[b])
            }  # fmt: skip
            for client, home in self.homes.items():
                for node in nodes:
                    if (home, node) in self.cuts:
                        self.cuts |= {(client, node), (node, client)}
        elif isinstance(fault, CutLinks):
            self.cuts |= set(fault.links)
        elif isinstance(fault, HealNetwork):
            self.cuts = set()
        elif isinstance(fault, Degrade):
            if fault.conditions is None:
                self.degraded.pop(fault.source, None)
            else:
                self.degraded[fault.source] = fault.conditions
        elif isinstance(fault, SlowLinks):
            self.slow = {link: fault.extra_ms for link in fault.links if fault.extra_ms > 0}
        elif isinstance(fault, NetworkConditions):
            self.conditions = fault
        else:
            return False
        return True

    def heal(self, base: NetworkConditions) -> None:
        """Every link up, no slow or degraded link, the base conditions back."""
        self.cuts = set()
        self.slow = {}
        self.degraded = {}
        self.conditions = base

    def send(self, envelope: Envelope, may_duplicate: bool) -> list[int]:
        """Schedule `envelope`; returns the delivery times (empty if it was dropped)."""
        stats = self.stats
        stats.sent += 1
        link = (envelope.src, envelope.dst)
        if link in self.cuts:
            stats.cut += 1
            return []
        c = self.effective() if self.degraded else self.conditions
        rng = self.rng
        if c.loss and rng.random() < c.loss:
            stats.lost += 1
            return []
        copies = 2 if may_duplicate and c.duplicate and rng.random() < c.duplicate else 1
        stats.duplicated += copies - 1
        extra = self.slow.get(link, 0) if self.slow else 0
        stats.slowed += extra > 0
        # The draw of randrange(spread) (which draws what randint(low, low + spread - 1)
        # does), written out as `random.Random` makes it: getrandbits of the spread's bit
        # length until below it (two calls fewer per message).
        low, spread = c.min_delay_ms, c.max_delay_ms - c.min_delay_ms + 1
        bits, getrandbits = spread.bit_length(), rng.getrandbits
        times = []
        for _ in range(copies):
            delay = getrandbits(bits)
            while delay >= spread:
                delay = getrandbits(bits)
            at = envelope.sent_ms + extra + low + delay
            copy = envelope
            if c.truncate and rng.random() < c.truncate:
                copy = attrs.evolve(envelope, damage=rng.random())
                stats.damaged += 1
            self._seq += 1
            heapq.heappush(self._queue, (at, self._seq, copy))
            times.append(at)
        return times

    def close_links(self, node: int, peers: list[int], now_ms: int) -> None:
        """`node` crashed: schedule a `LinkClosed` to each of `peers` it is not cut from,
        after the last envelope it sent that peer (a close comes after the data) and no
        sooner than the quickest delivery. Draws nothing from the generator."""
        least = self.effective().min_delay_ms
        for peer in peers:
            link = (node, peer)
            if link in self.cuts:
                continue
            at = now_ms + least + self.slow.get(link, 0)
            for due, _, envelope in self._queue:
                if (envelope.src, envelope.dst) == link and due > at:
                    at = due
            self.stats.links_closed += 1
            self._seq += 1
            heapq.heappush(
                self._queue, (at, self._seq, Envelope(node, peer, LinkClosed(node), now_ms))
            )

    def effective(self) -> NetworkConditions:
        """`conditions` worsened by every source in `degraded`."""
        c = self.conditions
        if not self.degraded:
            return c
        kept, single, whole = 1 - c.loss, 1 - c.duplicate, 1 - c.truncate
        delay = c.max_delay_ms
        for d in self.degraded.values():
            kept, single = kept * (1 - d.loss), single * (1 - d.duplicate)
            whole *= 1 - d.truncate
            delay = max(delay, d.max_delay_ms)
        return NetworkConditions(
            1 - kept, 1 - single, c.min_delay_ms, max(delay, c.min_delay_ms), 1 - whole
        )

    def next_ms(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now_ms: int) -> Envelope | None:
        """The next envelope due at or before `now_ms` that gets through, if any."""
        while self._queue and self._queue[0][0] <= now_ms:
            envelope = heapq.heappop(self._queue)[2]
            if (envelope.src, envelope.dst) in self.cuts:
                self.stats.cut += 1
                continue
            link = (envelope.src, envelope.dst)
            last = self._last_sent.get(link, 0)
            if envelope.sent_ms < last:
                self.stats.reordered += 1
            else:
                self._last_sent[link] = envelope.sent_ms
            return envelope
        return None

    def in_flight(self) -> int:
        return len(self._queue)
