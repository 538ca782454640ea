"""docs/simulator.md names what the code offers: nemeses, workloads, planted bugs, fault
kinds and checks."""

from __future__ import annotations

import re
from pathlib import Path

from chaos.sim import FAULT_KINDS, SimConfig, simulate
from chaos.sim.catalog import NEMESES, WORKLOADS
from chaos.sim.planted import PLANTS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()


def table_names(heading: str) -> set[str]:
    """The first column's names of the first table after `heading`."""
    section = DOC.split(heading, 1)[1]
    table = section[section.index("\n|") :].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `([a-z-]+)` \|", table, re.M))


def test_the_named_nemeses_table_lists_the_catalog() -> None:
    assert table_names("## Named nemeses") == set(NEMESES)


def test_the_workloads_table_lists_the_catalog() -> None:
    assert table_names("## Workloads") == set(WORKLOADS)


def test_the_planted_bugs_table_lists_the_plants() -> None:
    assert table_names("## Planted bugs") == set(PLANTS)


def test_the_faults_table_lists_every_fault_kind() -> None:
    assert table_names("## Faults") == set(FAULT_KINDS)


def test_the_checks_named_are_those_reported() -> None:
    result = simulate(SimConfig(seed=0, nodes=3, duration_ms=1_000), check_timeout_s=None)
    for check in result.checks:
        assert f"`{check}`" in DOC
