"""docs/simulator.md names what the code offers: nemeses, workloads, planted bugs, fault
kinds and checks."""

from __future__ import annotations

import re
from pathlib import Path

from chaos.sim import FAULT_KINDS, SimConfig, simulate
from chaos.sim.catalog import NEMESES, WORKLOADS
from chaos.sim.planted import PLANTS
from tests.sim.test_mutants import MUTANTS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()


def table_names(heading: str, column: str = "") -> set[str]:
    """The first column's names of the first table after `heading` (whose first column
    is headed `column`, if given)."""
    section = DOC.split(heading, 1)[1]
    start = section.index(f"\n| {column}") if column else section.index("\n|")
    table = section[start:].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.M))


def test_the_named_nemeses_table_lists_the_catalog() -> None:
    assert table_names("## Named nemeses") == set(NEMESES)


def test_the_workloads_table_lists_the_catalog() -> None:
    assert table_names("## Workloads") == set(WORKLOADS)


def test_the_planted_bugs_tables_list_the_plants_and_the_mutants() -> None:
    assert table_names("## Planted bugs", "plant") == set(PLANTS)
    assert table_names("## Planted bugs", "mutant") == {m.name for m in MUTANTS}


def test_the_faults_table_lists_every_fault_kind() -> None:
    assert table_names("## Faults") == set(FAULT_KINDS)


def test_the_checks_named_are_those_reported() -> None:
    result = simulate(SimConfig(seed=0, nodes=3, duration_ms=1_000), check_timeout_s=None)
    for check in result.checks:
        assert f"`{check}`" in DOC
