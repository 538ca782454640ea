"""docs/transport.md states the defaults the code has."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from raftcluster.transport import Backoff, Limits

DOC = (Path(__file__).resolve().parent.parent / "docs" / "transport.md").read_text()
UNITS = {"": 1, "KiB": 1024, "MiB": 1024 * 1024}


def documented_limits() -> dict[str, int]:
    found: dict[str, int] = {}
    for fields, values in re.findall(r"^\| (`[a-z_]+`(?: / `[a-z_]+`)*) \| ([^|]+) \|", DOC, re.M):
        names = re.findall(r"`([a-z_]+)`", fields)
        amounts = [v.strip() for v in values.split("/")]
        for name, amount in zip(names, amounts, strict=True):
            number, _, unit = amount.partition(" ")
            found[name] = int(number) * UNITS[unit]
    return found


def test_the_limits_table_matches_the_defaults() -> None:
    defaults = attrs.asdict(Limits())
    assert documented_limits() == defaults


def test_the_backoff_defaults_are_the_documented_ones() -> None:
    assert repr(Backoff()) in DOC
