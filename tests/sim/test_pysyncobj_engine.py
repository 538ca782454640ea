"""pysyncobj 0.3.17 as a chaos target: its faults found from pinned seeds.

Each finding is pinned to a seed found by a sweep (docs/chaos-pysyncobj.md gives the
sweep and the commands); the same nemesis seeds pass on our own engine.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest
from pysyncobj import syncobj as pysyncobj_module

from chaos.checker import Operation, history_from_events
from chaos.sim import SimConfig, SimResult, simulate
from chaos.sim.applied_checks import AppliedLogChecks
from chaos.sim.catalog import make_nemesis
from chaos.sim.events import LeaderSeen
from chaos.sim.faults import Fault, HealNetwork, NetworkConditions, Partition
from chaos.sim.nemesis import ClusterView, RandomFaults
from chaos.sim.pysyncobj_engine import PysyncobjSettings, simulate_pysyncobj
from chaos.sim.workload import Workload
from raftcluster.cli import main
from statemachine.errors import InvalidArgument


class IsolateLeaderOnce:
    """One partition of the leader from everyone else, then healing."""

    name = "isolate-leader-once"

    def __init__(self, at_ms: int = 5_000, for_ms: int = 10_000) -> None:
        self._times = (at_ms, at_ms + for_ms)
        self._fired = 0
        self._nodes: tuple[int, ...] = ()
        self.isolated = 0

    def setup(self, rng: random.Random, nodes: tuple[int, ...], base: NetworkConditions) -> None:
        self._nodes = nodes

    def next_ms(self) -> int | None:
        return self._times[self._fired] if self._fired < len(self._times) else None

    def fire(self, now_ms: int, view: ClusterView) -> Sequence[Fault]:
        self._fired += 1
        if self._fired == 2:
            return [HealNetwork()]
        assert view.leader, "a leader is elected within the first 5 s"
        self.isolated = view.leader
        rest = tuple(n for n in self._nodes if n != view.leader)
        return [Partition(((view.leader,), rest))]


def config(seed: int, duration_ms: int = 20_000) -> SimConfig:
    return SimConfig(seed=seed, nodes=3, duration_ms=duration_ms)


def findings(result: SimResult) -> dict[str, int]:
    assert result.error is None, result.error
    return dict(result.violation["findings"]) if result.violation else {}


def first(result: SimResult, kind: str) -> dict[str, object]:
    assert result.violation is not None
    found: dict[str, object] = result.violation["first"][kind]
    return found


def blocked_operation(result: SimResult) -> Operation:
    lin = result.linearizability
    assert lin is not None and lin.witness is not None
    history = history_from_events(result.history, source="test")
    return history.operations[lin.witness.blocked]


def blocked_operation_f(result: SimResult) -> str:
    return blocked_operation(result).f


LOST_WRITE_SEED = 428  # IsolateLeaderOnce, 3 nodes, 20 s
STALE_READ_SEED = 99  # IsolateLeaderOnce, 3 nodes, 20 s
NEW_LEADER_STALE_READ_SEED = 1  # IsolateLeaderOnce, 3 nodes, 20 s
TRUNCATION_SEED = 0  # RandomFaults, 3 nodes, 30 s
CLI_LOST_WRITE_SEED = 9  # RandomFaults, 3 nodes, 30 s
EXCEPTION_SEED = 581  # RandomFaults, 5 nodes, 120 s
LOST_UNAPPLIED_SEED = 314  # RandomFaults, 5 nodes, 120 s


def test_a_deposed_leader_acknowledges_writes_that_are_lost() -> None:
    nemesis = IsolateLeaderOnce()
    result = simulate_pysyncobj(config(LOST_WRITE_SEED), nemesis)
    assert "acknowledged-write-lost" in findings(result)
    lost = first(result, "acknowledged-write-lost")
    assert lost["acknowledged_by"] == nemesis.isolated  # the deposed leader said "ok"
    # The clients' history alone shows it: the write was acknowledged, never seen again.
    assert result.linearizability is not None
    assert result.linearizability.verdict.value == "illegal"
    assert blocked_operation(result).key == lost["key"]  # a read of the lost write's key
    assert "stale-read" not in findings(result)


def test_without_log_compaction_the_same_partition_loses_nothing() -> None:
    """The lost write comes in through the snapshot path (compaction at 50 entries)."""
    settings = PysyncobjSettings(log_compaction_min_entries=1_000_000)
    result = simulate_pysyncobj(config(LOST_WRITE_SEED), IsolateLeaderOnce(), settings=settings)
    assert result.ok, result.violation
    assert result.counters.snapshots_taken == 0


def test_a_partitioned_leader_serves_stale_reads() -> None:
    nemesis = IsolateLeaderOnce()
    result = simulate_pysyncobj(config(STALE_READ_SEED), nemesis)
    assert set(findings(result)) == {"stale-read"}
    stale = first(result, "stale-read")
    assert stale["nodes"] == [nemesis.isolated]
    assert stale["value"] != stale["acknowledged"]
    assert result.linearizability is not None
    assert result.linearizability.verdict.value == "illegal"
    assert blocked_operation_f(result) == "get"
    assert blocked_operation(result).output == stale["value"]  # the witness is that read


def test_a_new_leader_serves_stale_reads_before_it_commits_in_its_term() -> None:
    """The node that wins the election reads from what it has applied, which may lack a
    write the old leader acknowledged just before the partition."""
    nemesis = IsolateLeaderOnce()
    run = SimConfig(seed=NEW_LEADER_STALE_READ_SEED, nodes=3, duration_ms=20_000, keep_trace=True)
    result = simulate_pysyncobj(run, nemesis)
    assert set(findings(result)) == {"stale-read"}
    stale = first(result, "stale-read")
    elected = [e for e in result.trace if isinstance(e, LeaderSeen) and e.time_ms >= 5_000]
    assert elected and elected[0].node != nemesis.isolated
    assert stale["nodes"] == [elected[0].node]
    assert cast(int, stale["applied_index"]) < cast(int, stale["index"])
    assert result.linearizability is not None
    assert result.linearizability.verdict.value == "illegal"
    assert blocked_operation(result).output == stale["value"]


def test_followers_truncate_committed_entries() -> None:
    result = simulate_pysyncobj(config(TRUNCATION_SEED, 30_000), RandomFaults())
    assert "committed-entry-truncated" in findings(result)
    truncated = first(result, "committed-entry-truncated")
    assert truncated["role"] == "follower"
    assert isinstance(truncated["index"], int) and isinstance(truncated["commit_index"], int)
    assert truncated["index"] <= truncated["commit_index"]


def test_a_quiet_network_finds_nothing() -> None:
    from chaos.sim.nemesis import ScriptedFaults

    result = simulate_pysyncobj(config(3, 20_000), ScriptedFaults([]))
    assert result.ok, result.violation
    assert result.counters.operations.get("ok", 0) > 100
    assert result.timings["converged_after_heal_ms"] is not None


def test_same_seed_same_run() -> None:
    a = simulate_pysyncobj(config(2, 30_000), RandomFaults(), check_timeout_s=None)
    b = simulate_pysyncobj(config(2, 30_000), RandomFaults(), check_timeout_s=None)
    assert a.trace_hash == b.trace_hash and a.history == b.history
    assert a.violation == b.violation
    c = simulate_pysyncobj(config(3, 30_000), RandomFaults(), check_timeout_s=None)
    assert c.trace_hash != a.trace_hash


def test_pysyncobj_globals_are_restored_after_a_run() -> None:
    saved = (pysyncobj_module.monotonicTime, pysyncobj_module.random)
    simulate_pysyncobj(config(1, 2_000), IsolateLeaderOnce(500, 500), check_timeout_s=None)
    assert (pysyncobj_module.monotonicTime, pysyncobj_module.random) == saved


@pytest.mark.parametrize(
    "seed, nemesis, duration_ms",
    [
        (LOST_WRITE_SEED, IsolateLeaderOnce, 20_000),
        (STALE_READ_SEED, IsolateLeaderOnce, 20_000),
        (NEW_LEADER_STALE_READ_SEED, IsolateLeaderOnce, 20_000),
        (TRUNCATION_SEED, RandomFaults, 30_000),
        (CLI_LOST_WRITE_SEED, RandomFaults, 30_000),
    ],
)
def test_our_engine_passes_the_same_nemesis_seeds(
    seed: int, nemesis: type[IsolateLeaderOnce] | type[RandomFaults], duration_ms: int
) -> None:
    result = simulate(config(seed, duration_ms), nemesis())
    assert result.ok, (result.violation, result.error)
    assert result.linearizability is not None
    assert result.linearizability.verdict.value == "ok"


def test_the_command_line_runs_pysyncobj_and_prints_its_replay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = str(CLI_LOST_WRITE_SEED)
    args = ["--seed", seed, "--nodes", "3", "--duration", "30", "--engine", "pysyncobj"]
    code = main(["chaos", "run", *args, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["verdict"] == "violation"
    assert "acknowledged-write-lost" in data["violation"]["findings"]
    assert data["replay"] == (
        f"raftcluster chaos run --seed {seed} --nodes 3 --duration 30 --engine pysyncobj"
    )
    assert main(["chaos", "run", *args]) == 1
    text = capsys.readouterr().out
    assert "acknowledged-write-lost x2; first at t=" in text


@pytest.mark.soak
def test_sweep_finds_every_kind_and_our_engine_passes_the_same_seeds() -> None:
    kinds: dict[str, int] = {}
    for seed in range(100):
        found = findings(simulate_pysyncobj(config(seed, 30_000), RandomFaults()))
        for kind in found:
            kinds[kind] = kinds.get(kind, 0) + 1
        ours = simulate(config(seed, 30_000), RandomFaults())
        assert ours.ok, (seed, ours.violation, ours.error)
    expected = {"acknowledged-write-lost", "stale-read", "committed-entry-truncated"}
    assert expected <= set(kinds), kinds


def test_the_commands_in_the_docs_give_what_the_docs_show(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every `raftcluster chaos run --engine pysyncobj` block of docs/chaos-pysyncobj.md:
    each line shown under the command is part of what the command prints."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "chaos-pysyncobj.md").read_text()
    blocks = [b.split("```")[0] for b in doc.split("```\nraftcluster chaos run ")[1:]]
    checked = 0
    for block in blocks:
        command, *shown = block.strip().splitlines()
        if "--engine pysyncobj" not in command or not shown:
            continue  # the synopsis
        assert main(["chaos", "run", *command.split()]) == 1
        printed = " ".join(capsys.readouterr().out.split())
        for line in shown:
            assert " ".join(line.split()) in printed, (command, line)
        checked += 1
    assert checked == 5


def test_same_seed_same_run_in_processes_with_different_string_hashes() -> None:
    """pysyncobj keeps its peers in sets; node ids are ints so their order is fixed."""
    script = (
        "from chaos.sim import SimConfig\n"
        "from chaos.sim.pysyncobj_engine import simulate_pysyncobj\n"
        "r = simulate_pysyncobj(SimConfig(seed=5, nodes=5, duration_ms=10_000), "
        "check_timeout_s=None)\n"
        "print(r.trace_hash)\n"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(salt)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for salt in (1, 2)
    }
    here = simulate_pysyncobj(SimConfig(seed=5, nodes=5, duration_ms=10_000), check_timeout_s=None)
    assert hashes == {here.trace_hash}


def test_only_the_kv_workload_runs_on_pysyncobj() -> None:
    with pytest.raises(InvalidArgument, match="kv workload"):
        simulate_pysyncobj(config(1), RandomFaults(), cast(Workload, object()))


def test_an_exception_inside_pysyncobj_is_a_finding_and_the_run_goes_on() -> None:
    """Seed 581 (5 nodes, 120 s): a node's journal is empty, and pysyncobj raises
    IndexError as that node handles messages and ticks (docs/chaos-pysyncobj.md, finding
    4: seed 94 before the split-vote hard case joined the random mix, seed 185 of 5 nodes,
    60 s, before the one-loop simulator)."""
    result = simulate_pysyncobj(
        SimConfig(seed=EXCEPTION_SEED, nodes=5, duration_ms=120_000),
        RandomFaults(),
        check_timeout_s=None,
    )
    assert result.error is None
    failed = first(result, "node-exception")
    message = str(failed["message"])
    assert "IndexError" in message and "syncobj.py" in message  # pysyncobj's own code
    assert findings(result)["node-exception"] > 1  # the node goes on being ticked
    assert result.timings["probe_committed_after_heal_ms"] is not None  # the others go on
    assert "liveness" in findings(result)  # the broken node never catches up


def test_a_write_acknowledged_at_an_index_no_node_applied_it_at_is_reported() -> None:
    """Seed 314 (5 nodes, 120 s; about 2 s of wall time): put k1=0-697 is acknowledged at
    an index where the nodes applied other commands. The harness crashed there (KeyError
    in classify_divergence); the small constructed case is in test_applied_checks.py."""
    result = simulate_pysyncobj(
        SimConfig(seed=LOST_UNAPPLIED_SEED, nodes=5, duration_ms=120_000),
        RandomFaults(),
        check_timeout_s=None,
    )
    assert result.error is None
    assert findings(result)["acknowledged-write-lost"] >= 1


def test_an_exception_in_the_harness_is_the_runs_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(AppliedLogChecks, "on_apply", broken)
    result = simulate_pysyncobj(config(1, 5_000), RandomFaults(), check_timeout_s=None)
    assert result.verdict == "error"
    assert result.error is not None and result.error["message"] == "a bug of ours"


@pytest.mark.parametrize("names", ["slow-links", "loss,duplicate,reorder", "halves,kill"])
def test_named_nemeses_drive_pysyncobj(names: str) -> None:
    """The catalog's network and process nemeses act on pysyncobj nodes too: the run ends
    (ok or with findings, never an error) and each part's coverage counted its faults."""
    config = SimConfig(seed=3, nodes=3, duration_ms=10_000)
    result = simulate_pysyncobj(config, make_nemesis(names), check_timeout_s=5)
    assert result.error is None, result.error
    fired = {name.split(".")[0] for name, count in result.counters.nemesis.items() if count}
    assert fired == set(names.split(","))
    assert result.checks["exactly_once"] == "skipped"


def test_membership_and_other_workloads_are_refused_up_front() -> None:
    assert main(["chaos", "run", "--engine", "pysyncobj", "--nemesis", "membership"]) == 2
    assert main(["chaos", "run", "--engine", "pysyncobj", "--workload", "register"]) == 2
