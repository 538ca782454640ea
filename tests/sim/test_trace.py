"""The trace's hash: `add_values` (the hot events, hashed without building them) gives
the hash `add` gives for the same events."""

from __future__ import annotations

import pytest

from chaos.sim.events import CycleDone, Event, Sent
from chaos.sim.trace import Trace

EVENTS: list[tuple[type[Event], tuple[object, ...]]] = [
    (Sent, (12_345, 1, 2, "AppendEntries", 7, 310, (12_350, 12_361))),
    (Sent, (0, 1000, 3, "Submit", 2**40, 0, ())),
    (Sent, (5, 4, 1004, "Written", 1, 70_000, (9,))),
    (CycleDone, (99, 3, (4, 2, 17), 18, 17, 0, 0, 4, 1)),
    (CycleDone, (2**33, 5, None, 0, 0, 2**20, 300, 0, 0)),
]


@pytest.mark.parametrize(("kind", "values"), EVENTS)
def test_add_values_hashes_what_add_hashes(kind: type[Event], values: tuple[object, ...]) -> None:
    built, fast = Trace(), Trace()
    built.add(kind(*values))
    fast.add_values(kind, *values)
    assert fast.hexdigest() == built.hexdigest()
    assert fast.records == built.records == [kind(*values)]


def test_the_whole_sequence_hashes_alike() -> None:
    built, fast = Trace(), Trace()
    for kind, values in EVENTS * 500:  # (past a hash batch)
        built.add(kind(*values))
        fast.add_values(kind, *values)
    assert fast.hexdigest() == built.hexdigest()
    assert fast.count == built.count == 5 * 500
