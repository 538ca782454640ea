"""Regression seeds: every run in tests/regressions/seeds.json is replayed and must give
what its entry expects (docs/chaos.md, "Turning a seed into a regression test").

An entry is added with `raftcluster chaos regress --seed N [run flags]`. Its outcome
must be the one recorded (a seed recorded while failing must keep failing the same way
until the fix, then be recorded again as `ok`), and its trace hash must be the recorded
one whenever the engine's code is byte for byte the code that recorded it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.campaign import regress

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
ENTRIES = regress.read_entries(REGRESSIONS)
FINGERPRINT = regress.engine_fingerprint()


def test_the_file_holds_seeds_and_each_once() -> None:
    assert ENTRIES, "tests/regressions/seeds.json holds no seed"
    assert len({entry.spec for entry in ENTRIES}) == len(ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_a_regression_seed_gives_what_its_entry_expects(entry: regress.Regression) -> None:
    assert regress.replay_entry(entry, FINGERPRINT) == []
