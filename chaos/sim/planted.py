"""Planted bugs in our own engine, to prove the checkers can fail.

Each `Plant` swaps a part of the engine under test for a deliberately broken one, inside
the simulator only (raftcluster itself never contains them). A campaign over a planted
engine must fail within a bounded number of seeds, caught by the right checker
(tests/sim/test_planted.py); the same seeds pass on the real engine.

- `deposed-read`: a leader serves linearizable reads from its own state at once, without
  the ReadIndex round that confirms a majority still follows it. A leader cut off from
  the others keeps answering while a new leader commits writes: stale reads, which the
  linearizability check finds. It runs with check-quorum off: with it, a cut-off leader
  steps down about when its successor is elected (both wait one election timeout), which
  hides the stale reads in nearly every schedule (none in 12 seeds of
  isolate-leader,clock-skew,pause).
- `lying-fsync`: a disk whose sync returns without making anything durable (a write-back
  cache that ignores flushes); writes reach the platter only when 64 have piled up, and a
  crash loses whatever is still cached. Nodes acknowledge, vote and commit on writes they
  then forget: acknowledged writes lost, or an invariant of the log broken.

`raftcluster chaos run --plant NAME` runs a seed with one (for showing the checkers fail;
never a test of the real engine).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import attrs

from chaos.sim.disk import SimDisk
from raftcluster.node.protocol import Consistency, Query
from raftcluster.node.replica import Replica
from raftcluster.raft.ready import Role

WRITE_BACK_WRITES = 64  # writes the lying disk's cache holds before it really writes


class ReadsWithoutQuorum(Replica):
    """Serves linearizable reads at once when it believes it leads (no ReadIndex)."""

    def _query(self, client: Hashable, request_id: int, request: Query) -> None:
        if request.consistency == Consistency.LINEARIZABLE and self.core.role == Role.LEADER:
            self._reply(client, request_id, self._read_now(request))
            return
        super()._query(client, request_id, request)


class LyingDisk(SimDisk):
    """`sync()` lies until `WRITE_BACK_WRITES` writes are pending; a crash loses them all."""

    def sync(self) -> None:
        if not self.armed and self.pending_writes < WRITE_BACK_WRITES:
            return  # "done", says the disk
        super().sync()

    def crash(self, keep_writes: int = 0, *, torn: bool = False) -> None:
        super().crash(0)  # the cache dies with the power, whatever the platter had begun


@attrs.frozen
class Plant:
    name: str
    description: str
    replica_class: type[Replica] = Replica
    disk_class: type[SimDisk] = SimDisk
    # SimConfig fields the plant runs with (to let its bug show).
    config: dict[str, Any] = attrs.field(factory=dict)


PLANTS: dict[str, Plant] = {
    "deposed-read": Plant(
        "deposed-read",
        "a leader serves linearizable reads without a ReadIndex quorum round",
        replica_class=ReadsWithoutQuorum,
        config={"check_quorum": False},
    ),
    "lying-fsync": Plant(
        "lying-fsync", "a disk whose sync makes nothing durable until 64 writes pile up",
        disk_class=LyingDisk,
    ),
}  # fmt: skip
