"""The simulator's speed: what a seed costs in wall time.

- committed proposals per wall second through a 3-node simulated cluster (no faults,
  clients keeping writes in flight): the whole node core (Raft, storage, state machine,
  sessions, client core) plus the simulator's own bookkeeping and checks;
- virtual seconds simulated per wall second for 5 idle nodes (heartbeats and timers
  only) and 5 busy nodes (10 clients in a tight loop), and for the default seed run
  (5 nodes, random faults, the kv workload), which is what a campaign pays per seed;
- virtual seconds per wall second for a 5-node campaign (`chaos run --seeds 1..3
  --report DIR`: random nemesis, kv workload, in this process), counting everything a
  campaign does per seed: the run, the linearizability check and the report directory.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.table import Row
from chaos.campaign.campaign import run_campaign
from chaos.campaign.spec import RunSpec
from chaos.checker import CheckResult, Event
from chaos.sim import KvWorkload, RandomFaults, ScriptedFaults, SimConfig, SimResult, Simulator
from chaos.sim.nemesis import Nemesis
from chaos.sim.workload import ClientHandle, Workload
from raftcluster.client.core import Completion
from statemachine.kv import Put


class _Idle:
    """No clients at all."""

    name = "idle"
    clients = 0

    def setup(self, rng: random.Random, cores: Sequence[ClientHandle]) -> None:
        pass

    def next_ms(self) -> int | None:
        return None

    def act(self, now_ms: int) -> None:
        pass

    def completed(self, client: int, done: Completion, now_ms: int) -> None:
        pass

    def stop(self, now_ms: int) -> None:
        pass

    def history(self) -> tuple[Event, ...]:
        return ()

    def check(self, timeout_s: float) -> CheckResult | None:
        return None


class _Pipelined(_Idle):
    """Clients that keep `depth` writes in flight each, as fast as they are answered."""

    name = "pipelined"

    def __init__(self, clients: int, depth: int) -> None:
        self.clients = clients
        self.depth = depth
        self._cores: Sequence[ClientHandle] = ()
        self._inflight: list[int] = []
        self._stopped = False
        self._due: int | None = 0

    def setup(self, rng: random.Random, cores: Sequence[ClientHandle]) -> None:
        self._cores = cores
        self._inflight = [0] * len(cores)

    def next_ms(self) -> int | None:
        return None if self._stopped else self._due

    def act(self, now_ms: int) -> None:
        self._due = None
        for i, core in enumerate(self._cores):
            while self._inflight[i] < self.depth:
                core.write(Put(b"k%d" % i, b"v" * 64), now_ms)
                self._inflight[i] += 1

    def completed(self, client: int, done: Completion, now_ms: int) -> None:
        self._inflight[client] -= 1
        if not self._stopped:
            self._due = now_ms  # refill at once

    def stop(self, now_ms: int) -> None:
        self._stopped = True


def _run(config: SimConfig, nemesis: Nemesis, workload: Workload) -> tuple[SimResult, float]:
    started = time.perf_counter()
    result = Simulator(config, nemesis, workload, check_timeout_s=None).run()  # the loop only
    elapsed = time.perf_counter() - started
    assert result.ok, result.violation or result.error
    return result, elapsed


def run(quick: bool) -> list[Row]:
    logging.getLogger("raftcluster.storage").setLevel(logging.ERROR)
    seconds = 5 if quick else 30
    rows = []
    config = SimConfig(seed=1, nodes=3, duration_ms=seconds * 1000)
    result, wall = _run(config, ScriptedFaults([]), _Pipelined(clients=4, depth=16))
    rows.append(
        Row(
            "sim: committed proposals per wall s, 3 nodes",
            result.counters.proposals_committed / wall,
            "proposals/s",
            note=f"no faults, 4 clients x 16 in flight; {result.counters.proposals_committed} "
            "committed",
        )
    )
    cases: list[tuple[str, int, Nemesis, Workload, str]] = [
        ("5 idle nodes", 60, ScriptedFaults([]), _Idle(), "no clients, no faults"),
        ("5 busy nodes", seconds, ScriptedFaults([]), KvWorkload(clients=10, max_think_ms=10),
         "10 kv clients, 10 ms think time, no faults"),
        ("5 nodes, random faults, kv", 60, RandomFaults(), KvWorkload(),
         "the default seed run (chaos run --nodes 5 --duration 60)"),
    ]  # fmt: skip
    for name, virtual_s, nemesis, workload, note in cases:
        config = SimConfig(seed=1, nodes=5, duration_ms=(virtual_s if not quick else 5) * 1000)
        result, wall = _run(config, nemesis, workload)
        rows.append(
            Row(f"sim: virtual s per wall s, {name}", result.end_ms / 1000 / wall, "x", note=note)
        )
    rows.append(_seeds(quick))
    rows.append(_campaign(quick))
    return rows


def _seeds(quick: bool) -> Row:
    """The default seed run over several seeds: each draws its own engine settings, so one
    seed says little about what a campaign pays per seed."""
    seeds, seconds = (2, 5) if quick else (5, 60)
    virtual = wall = 0.0
    for seed in range(1, seeds + 1):
        config = SimConfig(seed=seed, nodes=5, duration_ms=seconds * 1000)
        result, elapsed = _run(config, RandomFaults(), KvWorkload())
        virtual += result.end_ms / 1000
        wall += elapsed
    return Row(
        f"sim: virtual s per wall s, 5 nodes, random faults, kv, seeds 1..{seeds}",
        virtual / wall,
        "x",
        note=f"the default seed run over {seeds} seeds (each draws its own settings)",
    )


def _campaign(quick: bool) -> Row:
    seeds, seconds = (1, 5) if quick else (3, 60)
    specs = [RunSpec(seed=seed, nodes=5, duration_s=seconds) for seed in range(1, seeds + 1)]
    with tempfile.TemporaryDirectory() as report:
        started, cpu = time.perf_counter(), time.process_time()
        result = run_campaign(specs, report_dir=Path(report))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    virtual = result.totals()["virtual_s"]
    return Row(
        "sim: virtual s per wall s, 5-node campaign",
        virtual / wall,
        "x",
        note=f"chaos run --seeds 1..{seeds} --nodes 5 --duration {seconds} --report DIR "
        f"(random, kv; run, check and report): {virtual:.0f} virtual s in {wall:.1f} s "
        f"({cpu:.1f} s of CPU: the machine is shared)",
        failed=bool(result.failed),
    )
