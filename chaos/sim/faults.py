"""Faults as plain values: what a nemesis asks the simulator to do.

A nemesis returns a sequence of these from `fire`; the simulator applies them in order
and counts them by `kind`. Every fault names the nodes it touches, so the trace and the
report can show them.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Fault:
    @property
    def kind(self) -> str:
        return _KINDS[type(self)]


@attrs.frozen
class Partition(Fault):
    """Cut every link between nodes of different groups (in both directions). Nodes
    in no group are cut from everyone. Replaces the current node cuts."""

    groups: tuple[tuple[int, ...], ...]


@attrs.frozen
class CutLinks(Fault):
    """Cut these directed links (src, dst) in addition to the current cuts."""

    links: tuple[tuple[int, int], ...]


@attrs.frozen
class HealNetwork(Fault):
    """Remove every cut between nodes."""


@attrs.frozen
class Crash(Fault):
    """Power off `node`. With `during_sync`, the crash happens at its next sync (losing
    the unsynced part of that write batch, as the seed decides); otherwise now."""

    node: int
    during_sync: bool = False


@attrs.frozen
class Restart(Fault):
    """Start `node` again from its disk (crashing it first if it is running)."""

    node: int


@attrs.frozen
class Pause(Fault):
    """Stop `node` for `duration_ms` (a GC pause, a stopped VM): no timers, and messages
    for it wait in its socket buffers until it resumes."""

    node: int
    duration_ms: int


@attrs.frozen
class ClockJump(Fault):
    """`node`'s clock jumps forward by `forward_ms`."""

    node: int
    forward_ms: int


@attrs.frozen
class ClockDrift(Fault):
    """`node`'s clock runs `drift_ppm` parts per million fast (negative: slow)."""

    node: int
    drift_ppm: int


@attrs.frozen
class NetworkConditions(Fault):
    """Per-message fault rates and delays for the whole network, from now on."""

    loss: float = 0.0  # probability a message is dropped
    duplicate: float = 0.0  # probability a node-to-node message is delivered twice
    min_delay_ms: int = 1
    max_delay_ms: int = 10  # delays are uniform in [min, max]: wider means more reordering
    # Probability a message arrives cut short (a damaged frame): the receiver's decoder must
    # refuse it, and it is lost (chaos/sim/wire.py).
    truncate: float = 0.0


@attrs.frozen
class SlowLinks(Fault):
    """These directed links (src, dst) add `extra_ms` to every message's delay, from now
    on; replaces the slow links set before (an empty tuple: none)."""

    links: tuple[tuple[int, int], ...]
    extra_ms: int = 0


@attrs.frozen
class ChangeMembership(Fault):
    """Ask the cluster's leader, as an administrator would, for one membership step:
    `op` is "remove", "add-learner" or "promote". The request travels like a client's
    (it may be lost) and goes through the Replica's own membership path; the leader may
    refuse it (a change still uncommitted, a learner not caught up...)."""

    op: str
    node: int


@attrs.frozen
class Degrade(Fault):
    """Worsen the network on behalf of `source`, on top of the current conditions and of
    every other source's: losses and duplications combine as independent chances, the
    largest delay wins. `conditions` None withdraws `source`'s part. (Named nemeses use
    this, so that `loss,duplicate,reorder` combined all act at once.)"""

    source: str
    conditions: NetworkConditions | None


DISK_FAULTS = ("eio-write", "eio-sync", "enospc-write", "enospc-sync", "bit-flip", "zero-sector")


@attrs.frozen
class DiskFault(Fault):
    """Something goes wrong with `node`'s disk (`what`):
    - "eio-write", "eio-sync", "enospc-write", "enospc-sync": its next write or fsync
      fails; the node stops, as a real node does after a failed write (`StorageFailed`);
    - "bit-flip", "zero-sector": a bit or a 512-byte sector of its synced data is
      damaged (a latent sector error), found when the node next starts: it recovers
      everything it synced, or refuses to start naming the file and the offset;
    - "lost": its data directory is gone (every file), as when a disk is replaced."""

    node: int
    what: str = attrs.field(
        validator=attrs.validators.in_((*DISK_FAULTS, "lost")),
    )


_KINDS: dict[type, str] = {
    Partition: "partition",
    CutLinks: "link-cut",
    HealNetwork: "heal",
    Crash: "crash",
    Restart: "restart",
    Pause: "pause",
    ClockJump: "clock-jump",
    ClockDrift: "clock-drift",
    NetworkConditions: "network",
    SlowLinks: "slow-links",
    Degrade: "degrade",
    ChangeMembership: "membership",
    DiskFault: "disk",
}

FAULT_KINDS: tuple[str, ...] = tuple(_KINDS.values())
