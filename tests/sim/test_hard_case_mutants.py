"""Bugs that only a scripted hard case reaches in a few seeds: each planted alone in a copy
of the tree, and a short campaign of its hard case (`--nemesis NAME`) must find it. The
default campaign draws these cases too (tests/sim/test_mutants.py holds it to the bugs it
finds within 50 seeds); here each case is held to the bug it exists for, cheaply.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sim.mutation import ROOT, Mutant, campaign_finds, mutated_tree

# (mutant, the hard case that must find it within SEEDS)
SEEDS = "1..10"
CASES = (
    (
        Mutant(
            "stale-round-confirms-reads",
            "raftcluster/raft/core.py",
            "        if m.round > pr.read_round:\n            pr.read_round = m.round",
            "        if True:  # planted: any answer confirms the newest round\n"
            "            pr.read_round = self._reads.round",
            "a leader takes any heartbeat answer, however old, as confirming its newest read "
            "round: a leader cut off that still receives old answers serves stale reads",
            ("read freshness", "linearizable"),
        ),
        "late-answers",
    ),
)


@pytest.mark.parametrize("mutant, nemesis", CASES, ids=lambda c: getattr(c, "name", c))
def test_the_hard_case_finds_the_planted_bug(mutant: Mutant, nemesis: str, tmp_path: Path) -> None:
    tree = mutated_tree(mutant, tmp_path)
    run = campaign_finds(tree, mutant, "--seeds", SEEDS, "--nemesis", nemesis)
    assert run["violation"] or run["linearizability"]["verdict"] == "illegal"


def test_the_hard_case_mutants_change_the_code_they_say() -> None:
    for mutant, _ in CASES:
        assert (ROOT / mutant.path).read_text().count(mutant.old) == 1, mutant.name
