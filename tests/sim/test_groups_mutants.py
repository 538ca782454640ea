"""Bugs planted in the cluster service, one at a time: the groups workload must find each.

The cluster service's promise is that a group runs on one node at a time, that failback
follows its policy, and that every node decides the same from the same log. Each mutant
breaks one of these the way a real bug would; a campaign of the `groups` workload (every
other setting at its default) finds the first two kinds as violations of the checks, and
a seed run twice, in two processes with different hash seeds, shows the last kind: a
placement that depends on a set's iteration order or on the clock is no longer a
function of the seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sim.mutation import ROOT, Mutant, campaign_finds, chaos_run, mutated_tree

SEEDS = "1..50"
GROUPS = ("--workload", "groups", "--nodes", "5", "--duration", "120")

FOUND_BY_CHECKS = (
    Mutant(
        "lease-outlives-its-quorum",
        "raftcluster/groups/lease.py",
        "until = ack.sent_ms + self.timing.fence_after_ms",
        "until = ack.sent_ms + 100 * self.timing.fence_after_ms  # planted",
        "a node's lease lasts far beyond the fence time: cut off from the quorum, it keeps "
        "running its groups while they fail over elsewhere",
        ("one owner",),
    ),
    Mutant(
        "node-down-before-its-fence",
        "raftcluster/groups/manager.py",
        "if watched and silent >= self.timing.node_down_after_ms:",
        "if watched and silent >= self.timing.fence_after_ms // 2:  # planted",
        "the leader declares a silent node down before the node can have fenced itself",
        ("one owner",),
    ),
    Mutant(
        "stale-report-accepted",
        "statemachine/groups/commands.py",
        "if g is None or g.owner != cmd.node or g.epoch != cmd.epoch:",
        "if g is None or g.owner != cmd.node:  # planted: the epoch is not checked",
        "a report is accepted from the group's owner whatever its epoch, so a late one from "
        "an earlier grant changes the current one",
        ("epochs", "one owner"),
    ),
    Mutant(
        "failback-outside-its-window",
        "statemachine/groups/config.py",
        "return (at_ms % day_ms) * 24 // day_ms",
        "return (at_ms // 3_600_000) % 24  # planted: hours of a real day, whatever day_ms",
        "the hour of the day ignores the configured day length, so a group fails back at "
        "hours outside its window",
        ("failback",),
    ),
)

NOT_A_FUNCTION_OF_THE_SEED = (
    Mutant(
        "placement-iterates-a-set",
        "statemachine/groups/placement.py",
        "order = sorted(groups.values(), key=lambda g: (-g.spec.priority, g.name))",
        "order = sorted((groups[n] for n in set(groups)), key=lambda g: -g.spec.priority)",
        "groups of equal priority are decided in a set's order, which PYTHONHASHSEED changes",
        (),
    ),
    Mutant(
        "placement-reads-the-clock",
        "statemachine/groups/placement.py",
        "order = sorted(groups.values(), key=lambda g: (-g.spec.priority, g.name))",
        "order = sorted(groups.values(), key=lambda g: (-g.spec.priority, "
        "__import__('time').perf_counter_ns() % 3, g.name))",
        "groups of equal priority are ordered by the clock",
        (),
    ),
)


@pytest.mark.parametrize("mutant", FOUND_BY_CHECKS, ids=lambda m: m.name)
def test_a_groups_campaign_finds_the_planted_bug(mutant: Mutant, tmp_path: Path) -> None:
    run = campaign_finds(mutated_tree(mutant, tmp_path), mutant, *GROUPS, "--seeds", SEEDS)
    assert run["violation"]["invariant"] in mutant.found_as, run["violation"]


def runs(tree: Path, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The seed's run (30 virtual seconds) in two processes with different hash seeds."""
    args = (*GROUPS, "--seed", str(seed), "--duration", "30")
    first = chaos_run(tree, *args, hash_seed="1")[1]
    second = chaos_run(tree, *args, hash_seed="2")[1]
    return first, second


@pytest.mark.parametrize("mutant", NOT_A_FUNCTION_OF_THE_SEED, ids=lambda m: m.name)
def test_a_seed_run_twice_finds_placement_that_is_not_a_function_of_the_log(
    mutant: Mutant, tmp_path: Path
) -> None:
    """Found when a seed's two runs differ, or when a run fails: replicas of one process
    that decide differently from the same log diverge (the real tree passes these seeds
    with one trace: the test below)."""
    tree = mutated_tree(mutant, tmp_path / "mutant")

    def found(seed: int) -> bool:
        first, second = runs(tree, seed)
        failed = first["verdict"] != "ok" or second["verdict"] != "ok"
        return failed or first["trace_hash"] != second["trace_hash"]

    assert any(found(seed) for seed in (1, 2, 3)), (
        f"{mutant.name} ({mutant.why}): three seeds each passed with one trace in two processes"
    )


def test_the_real_cluster_service_passes_and_gives_one_trace_per_seed() -> None:
    a, b = runs(ROOT, 1)
    assert a["verdict"] == "ok", a["violation"] or a["error"]
    assert a["trace_hash"] == b["trace_hash"]
    groups = a["counts"]["groups"]
    assert groups["starts"] > 0 and groups["events_delivered"] > 0 and groups["acks"] > 0


def test_the_mutants_change_the_code_they_say() -> None:
    for mutant in (*FOUND_BY_CHECKS, *NOT_A_FUNCTION_OF_THE_SEED):
        text = (ROOT / mutant.path).read_text()
        assert text.count(mutant.old) == 1, mutant.name
