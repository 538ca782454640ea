"""The checks of an engine seen from outside (`chaos.sim.applied_checks`), on small
constructed inputs: what a diverging log is reported as."""

from __future__ import annotations

from chaos.sim.applied_checks import AppliedLogChecks
from chaos.sim.trace import Trace


class Clock:
    """What the checks read of the simulator feeding them (`applied_checks.Stepped`)."""

    def __init__(self) -> None:
        self.trace = Trace()
        self.now = 0
        self.step = 0


def test_an_acknowledged_write_no_node_applied_at_its_index_is_a_lost_write() -> None:
    """pysyncobj, seed 314 of 5 nodes and 120 s: a write acknowledged at an index where
    the nodes applied two other commands, neither of them the acknowledged one. The
    harness crashed (KeyError) instead of reporting it."""
    clock = Clock()
    checks = AppliedLogChecks(clock)
    clock.now, clock.step = 1_000, 10
    checks.on_apply(1, 7, "k1", "0-1")
    checks.on_apply(2, 7, "k1", "0-1")
    checks.on_ack(3, 7, "k1", "0-697")  # acknowledged, never applied at index 7
    clock.now, clock.step = 2_000, 20
    checks.on_apply(3, 7, "k2", "1-5")  # a third node applied another command there
    checks.classify_divergence()
    violation = checks.violation()
    assert violation is not None
    assert violation["findings"] == {"acknowledged-write-lost": 1}
    lost = violation["first"]["acknowledged-write-lost"]
    assert (lost["key"], lost["value"], lost["acknowledged_by"]) == ("k1", "0-697", 3)
    assert lost["index"] == 7 and lost["time_ms"] == 2_000 and lost["nodes"] == [1, 2, 3]
    assert "applied on no node" in lost["message"]
    assert "kept k1=0-1 (applied on nodes 1,2)" in lost["message"]


def test_an_acknowledged_write_applied_on_a_minority_is_a_lost_write() -> None:
    clock = Clock()
    checks = AppliedLogChecks(clock)
    checks.on_apply(1, 4, "k", "a")
    checks.on_apply(2, 4, "k", "a")
    checks.on_apply(3, 4, "k", "b")
    checks.on_ack(3, 4, "k", "b")
    checks.classify_divergence()
    violation = checks.violation()
    assert violation is not None
    lost = violation["first"]["acknowledged-write-lost"]
    assert "applied on nodes 3, but the cluster kept k=a (applied on nodes 1,2)" in lost["message"]


def test_diverging_entries_nobody_acknowledged_are_reported_as_divergence() -> None:
    clock = Clock()
    checks = AppliedLogChecks(clock)
    checks.on_apply(1, 4, "k", "a")
    checks.on_apply(2, 4, "k", "a")
    checks.on_apply(3, 4, "k", "b")
    checks.classify_divergence()
    violation = checks.violation()
    assert violation is not None
    assert violation["findings"] == {"applied-entries-diverge": 1}
