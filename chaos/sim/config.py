"""`SimConfig`: one simulation's seed, size, length and timing settings, with defaults."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from chaos.sim.faults import NetworkConditions
from statemachine.codec import int_range, positive
from statemachine.errors import InvalidArgument
from statemachine.part import PartSpec

optional_positive = attrs.validators.optional(positive)


def _as_parts(parts: Iterable[PartSpec | str]) -> tuple[PartSpec | str, ...]:
    if isinstance(parts, str | PartSpec):
        raise InvalidArgument("SimConfig.parts", "expected a list of parts or import paths")
    return tuple(parts)


@attrs.frozen
class SimConfig:
    seed: int = attrs.field(validator=int_range(0, 2**63 - 1))
    nodes: int = attrs.field(default=5, validator=int_range(1, 64))
    # Faults are injected for this long (virtual time), then everything heals.
    duration_ms: int = attrs.field(default=60_000, validator=int_range(0))
    # After healing, a leader, a committed write and identical replicas within this bound.
    heal_timeout_ms: int = attrs.field(default=30_000, validator=positive)
    # After healing the workload goes on until each kind of operation it issues succeeded
    # once (the stats check, chaos.checker.stats), at most this long after the probe write
    # committed (and 5 s before the heal timeout); then it stops and the replicas converge.
    after_heal_ms: int = attrs.field(default=10_000, validator=int_range(0))
    # The engine's own settings (docs/engine.md): None draws each from the seed, within its
    # legal range (chaos/sim/settings.py); a value fixes it.
    election_timeout_ms: int | None = attrs.field(default=None, validator=optional_positive)
    heartbeat_interval_ms: int | None = attrs.field(default=None, validator=optional_positive)
    pre_vote: bool | None = None
    check_quorum: bool = True
    snapshot_every_entries: int | None = attrs.field(default=None, validator=optional_positive)
    max_entries_per_msg: int | None = attrs.field(default=None, validator=optional_positive)
    max_inflight_msgs: int | None = attrs.field(default=None, validator=optional_positive)
    commit_notice_delay_ms: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(int_range(0))
    )
    max_snapshot_chunk_bytes: int | None = attrs.field(default=None, validator=optional_positive)
    max_fsync_ms: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(int_range(0, 10_000))
    )
    session_expiry_interval_ms: int = attrs.field(default=1_000, validator=positive)
    # Node clocks: a fixed offset in [0, skew] and a rate error in [-drift, drift] ppm.
    max_clock_skew_ms: int = attrs.field(default=2_000, validator=int_range(0))
    # Client clocks: the same, with this bound on the offset (None: max_clock_skew_ms).
    max_client_clock_skew_ms: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(int_range(0))
    )
    max_drift_ppm: int = attrs.field(default=200, validator=int_range(0, 200_000))
    # The network between faults (and after healing).
    base_network: NetworkConditions = NetworkConditions(0.0, 0.0, 1, 10)
    # Clients.
    session_ttl_ms: int = attrs.field(default=10_000, validator=positive)
    client_attempt_timeout_ms: int = attrs.field(default=1_000, validator=positive)
    client_op_timeout_ms: int = attrs.field(default=5_000, validator=positive)
    # Messages sent within one virtual second, at most (0: 20,000 per node): beyond it the
    # run stops with a "message storm" violation (a feedback loop between nodes: a
    # liveness bug, and a run that would otherwise take hours of wall time). A busy
    # 3-node cluster peaks near 16,000 (4 clients with 16 writes in flight each).
    max_messages_per_s: int = attrs.field(default=0, validator=int_range(0))

    @property
    def message_budget_per_s(self) -> int:
        return self.max_messages_per_s or 20_000 * self.nodes

    # Keep trace records in memory (the hash is computed either way).
    keep_trace: bool = False
    # The user's parts, registered on every node beside the built-in ones: `PartSpec`s or
    # import paths ("bank:BANK", loaded by raftcluster.loading when the run starts).
    parts: tuple[PartSpec | str, ...] = attrs.field(default=(), converter=_as_parts)
