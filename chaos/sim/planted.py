"""Planted bugs in our own engine, to prove the checkers can fail.

Each `Plant` runs our engine with one deliberately broken part, through the engine's
public ways in (`ReplicaHooks`, a disk option), inside the simulator only: raftcluster
itself never contains them. A campaign over a planted engine must fail within a bounded
number of seeds, caught by the right checker (tests/sim/test_planted.py); the same seeds
pass on the real engine. (Bugs planted in the real code itself, the way a reviewer would
plant them, are tests/sim/test_mutants.py's business.)

- `deposed-read`: a leader serves linearizable reads from its own state at once, without
  the ReadIndex round that confirms a majority still follows it. A leader cut off from
  the others keeps answering while a new leader commits writes: stale reads, which the
  linearizability check finds. It runs with check-quorum off: with it, a cut-off leader
  steps down about when its successor is elected (both wait one election timeout), which
  hides the stale reads in nearly every schedule.
- `lying-fsync`: a disk whose fsync returns without making anything durable (a write-back
  cache that ignores flushes); writes reach the platter only when 64 syncs have piled
  up, and a crash loses whatever is still cached. Nodes acknowledge, vote and commit on
  writes they then forget: acknowledged writes lost, or an invariant of the log broken.

- `wiped-rebootstraps`: a node whose data directory was lost starts again from the
  cluster file as a founding member (the old advice "empty the directory and let it
  rejoin"): it bootstraps the founding configuration at term 1, under its old identity,
  and may vote a second time in a term it already voted in, or vote for a candidate that
  lacks entries it had acknowledged. With `replace-disk`, Raft's safety checks find it
  (two leaders in one term, or a committed entry lost).

`raftcluster chaos run --plant NAME` runs a seed with one (for showing the checkers fail;
never a test of the real engine).
"""

from __future__ import annotations

from typing import Any

import attrs

from chaos.sim.raftcluster_engine import RaftclusterEngine
from raftcluster.node.protocol import ClientReply, Consistency, Query
from raftcluster.node.replica import Replica, ReplicaHooks
from raftcluster.raft.ready import Role


def _reads_without_quorum(replica: Replica, query: Query) -> ClientReply | None:
    """Serves linearizable reads at once when it believes it leads (no ReadIndex)."""
    if query.consistency == Consistency.LINEARIZABLE and replica.core.role == Role.LEADER:
        return replica.read_now(query)
    return None


@attrs.frozen
class Plant:
    name: str
    description: str
    hooks: ReplicaHooks | None = None
    lying_fsync: bool = False
    wiped_rebootstraps: bool = False
    # SimConfig fields the plant runs with (to let its bug show).
    config: dict[str, Any] = attrs.field(factory=dict)

    def engine(self) -> RaftclusterEngine:
        return RaftclusterEngine(
            hooks=self.hooks,
            lying_fsync=self.lying_fsync,
            wiped_rebootstraps=self.wiped_rebootstraps,
        )


PLANTS: dict[str, Plant] = {
    "deposed-read": Plant(
        "deposed-read",
        "a leader serves linearizable reads without a ReadIndex quorum round",
        hooks=ReplicaHooks(before_read=_reads_without_quorum),
        config={"check_quorum": False},
    ),
    "lying-fsync": Plant(
        "lying-fsync", "a disk whose fsync makes nothing durable until 64 syncs pile up",
        lying_fsync=True,
    ),
    "wiped-rebootstraps": Plant(
        "wiped-rebootstraps",
        "a node whose data directory was lost bootstraps the founding configuration again",
        wiped_rebootstraps=True,
    ),
}  # fmt: skip
