"""Planting one bug in a copy of the source tree, and running the chaos harness on it.

A `Mutant` names one change to one file (text that occurs exactly once); `mutated_tree`
copies the packages with that change; `chaos_run` runs `raftcluster chaos run ... --json`
on the copy in a subprocess. The mutant tests (tests/sim/test_mutants.py,
tests/sim/test_groups_mutants.py) hold the harness to finding each one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("raftcluster", "statemachine", "chaos")


@attrs.frozen
class Mutant:
    name: str
    path: str  # the file, from the repository's root
    old: str  # text that occurs exactly once in it
    new: str
    why: str  # the bug, in words
    found_as: tuple[str, ...]  # what a campaign may report it as


def mutated_tree(mutant: Mutant, where: Path) -> Path:
    """A copy of the packages with the mutant's one change."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, where / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    target = where / mutant.path
    text = target.read_text()
    assert text.count(mutant.old) == 1, f"{mutant.name}: the text to change is not unique"
    target.write_text(text.replace(mutant.old, mutant.new))
    return where


def chaos_run(tree: Path, *args: str, hash_seed: str | None = None) -> tuple[int, dict[str, Any]]:
    """`raftcluster chaos run ARGS --json` on the code in `tree` (with `hash_seed` as
    PYTHONHASHSEED, if given)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    done = subprocess.run(
        [sys.executable, "-m", "raftcluster", "chaos", "run", *args, "--json"],
        cwd=tree, env=env, capture_output=True, text=True, check=False, timeout=1_800,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def campaign_finds(tree: Path, mutant: Mutant, *args: str) -> dict[str, Any]:
    """Run the campaign `args` (it stops at the first failure) on `tree`: it must fail,
    as one of the kinds the mutant may be found as, and the failing seed's replay command
    must fail the same way on its own. Returns that replayed run."""
    code, summary = chaos_run(tree, *args, "--stop-on-failure")
    failed = summary["failed"]
    assert code == 1 and failed, f"{mutant.name} ({mutant.why}) was not found: {args}"
    (first,) = failed
    assert any(kind in first["finding"] for kind in mutant.found_as), first
    replay = first["replay"].split()[3:]  # after "raftcluster chaos run"
    code, run = chaos_run(tree, *replay)
    assert code == 1 and run["verdict"] == "violation", run
    if run["violation"]:
        assert {"invariant", "message", "step", "time_ms", "nodes"} <= set(run["violation"])
    return run
