"""Raft core throughput: committed proposals per wall second through three cores in one
process, with messages handed over directly (no network, no disk): the cost of the
protocol logic alone, the ceiling for any shell built on it."""

from __future__ import annotations

import random
import time

from bench.table import Row
from raftcluster.raft.config import RaftConfig
from raftcluster.raft.core import RaftCore
from raftcluster.raft.ready import Role
from raftcluster.raft.types import DurableState

IDS = (1, 2, 3)


def _cluster() -> dict[int, RaftCore]:
    cores = {
        i: RaftCore(RaftConfig(node_id=i, peers=IDS), DurableState(), random.Random(i)) for i in IDS
    }
    cores[1].campaign()
    _pump(cores)
    assert cores[1].role == Role.LEADER
    return cores


def _pump(cores: dict[int, RaftCore]) -> int:
    """Handle every Ready and deliver every message until quiet; returns entries applied."""
    applied = 0
    busy = True
    while busy:
        busy = False
        for core in cores.values():
            if not core.has_ready():
                continue
            busy = True
            rd = core.ready()
            for m in rd.messages:
                cores[m.dst].step(m)
            applied += len(rd.committed_entries)
            core.advance(rd)
    return applied


def _committed_per_second(batch: int, total: int) -> float:
    cores = _cluster()
    leader = cores[1]
    payload = [b"x" * 64] * batch
    start = time.perf_counter()
    done = 0
    while done < total:
        leader.propose_batch(payload)
        _pump(cores)
        done += batch
    elapsed = time.perf_counter() - start
    assert leader.commit_index >= done
    return done / elapsed


def run(quick: bool) -> list[Row]:
    total = 2_000 if quick else 20_000
    return [
        Row(
            "raft core: commits/s, 1 per round",
            _committed_per_second(1, total // 4),
            "proposals/s",
            note="3 cores, direct delivery, no disk",
        ),
        Row(
            "raft core: commits/s, batches of 100",
            _committed_per_second(100, total * 5),
            "proposals/s",
            note="3 cores, direct delivery, no disk",
        ),
    ]
