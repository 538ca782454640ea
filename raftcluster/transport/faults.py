"""The fault layer: message loss, delay and blocking per peer, for the chaos harness.

Off by default. The live mode of the chaos harness (issue 5) sets it at runtime on
each node process, for instance through an RPC of its own:

    transport.faults.set(2, PeerFaults(drop_probability=0.2, delay_ms=30))
    transport.faults.set(3, PeerFaults(blocked=True))   # one direction of a partition
    transport.faults.clear()                            # heal everything

It acts on this node's *outgoing* payload frames to the given peer: raft messages,
RPC requests and RPC responses. A blocked or dropped raft message is counted in the
peer's `dropped_by_faults`; a dropped RPC request or response makes the caller see
`RpcTimeout`, exactly as a lost packet would. Keepalives and handshakes are left
alone, so connections stay up and the fault is pure message loss on a live link;
partitioning two nodes both ways means setting `blocked` on both. A delay holds the
frame back on its link for `delay_ms` without reordering the link's frames (FIFO),
so lowering the delay never lets later frames overtake earlier ones.

All randomness comes from the injected `random.Random`, drawn only while a drop
probability strictly between 0 and 1 is set, so a seeded run is reproducible.
"""

from __future__ import annotations

import random

import attrs

from statemachine.errors import InvalidArgument

MAX_FAULT_DELAY_MS = 60_000


def _probability(instance: PeerFaults, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InvalidArgument("PeerFaults.drop_probability", f"{value} is outside 0..1")


def _delay(instance: PeerFaults, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= MAX_FAULT_DELAY_MS:
        raise InvalidArgument("PeerFaults.delay_ms", f"{value} is outside 0..{MAX_FAULT_DELAY_MS}")


@attrs.frozen(kw_only=True)
class PeerFaults:
    drop_probability: float = attrs.field(default=0.0, validator=_probability)
    delay_ms: int = attrs.field(default=0, validator=_delay)
    blocked: bool = False

    @property
    def active(self) -> bool:
        return self.blocked or self.drop_probability > 0.0 or self.delay_ms > 0


NO_FAULTS = PeerFaults()


@attrs.frozen
class Verdict:
    """What to do with one outgoing frame: deliver after `delay_ms`, or drop."""

    deliver: bool
    delay_ms: int = 0


_DELIVER_NOW = Verdict(True)
_DROP = Verdict(False)


class FaultLayer:
    """Per-peer faults on the send path, settable while the transport runs."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._faults: dict[int, PeerFaults] = {}

    def set(self, peer_id: int, faults: PeerFaults) -> None:
        if faults.active:
            self._faults[peer_id] = faults
        else:
            self._faults.pop(peer_id, None)

    def clear(self, peer_id: int | None = None) -> None:
        """Heal one peer, or every peer when `peer_id` is None."""
        if peer_id is None:
            self._faults.clear()
        else:
            self._faults.pop(peer_id, None)

    def get(self, peer_id: int) -> PeerFaults:
        return self._faults.get(peer_id, NO_FAULTS)

    def active(self) -> dict[int, PeerFaults]:
        return dict(self._faults)

    def decide(self, peer_id: int) -> Verdict:
        faults = self._faults.get(peer_id)
        if faults is None:
            return _DELIVER_NOW
        if faults.blocked or faults.drop_probability >= 1.0:
            return _DROP
        if faults.drop_probability > 0.0 and self._rng.random() < faults.drop_probability:
            return _DROP
        return Verdict(True, faults.delay_ms) if faults.delay_ms else _DELIVER_NOW
