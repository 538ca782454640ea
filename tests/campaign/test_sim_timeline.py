"""The report's reading of the simulator's typed trace, event by event: every fault kind
the simulator knows becomes the bar or instant docs/chaos.md says, nodes that would not
start are crashed to the end and named, and nothing is read by position."""

from __future__ import annotations

from chaos.campaign.sim_timeline import DISK_WORDS, SimTimeline
from chaos.report import Fault, Interval, IntervalKind
from chaos.report.record import KNOWN_FAULT_KINDS
from chaos.sim.events import (
    Event,
    FaultInjected,
    Healed,
    NodeCrashed,
    NodeRefused,
    NodeStarted,
    RoleChanged,
)
from chaos.sim.faults import (
    DISK_FAULTS,
    FAULT_KINDS,
    ChangeMembership,
    Crash,
    Degrade,
    DiskFault,
    HealNetwork,
    NetworkConditions,
    Restart,
    SlowLinks,
)

BASE = NetworkConditions(min_delay_ms=1, max_delay_ms=10)
NODES = (1, 2, 3)


def read(*events: Event, end_ms: int = 10_000, nodes: tuple[int, ...] = NODES) -> SimTimeline:
    timeline = SimTimeline(nodes, BASE)
    for node in nodes:
        timeline.add(NodeStarted(0, node, 1))
    for event in events:
        timeline.add(event)
    return timeline


def faults_of(*events: Event, nodes: tuple[int, ...] = NODES) -> list[Fault]:
    return read(*events, nodes=nodes).finish(10_000)[1]


def test_a_crash_says_what_the_disk_lost() -> None:
    (kill,) = faults_of(NodeCrashed(100, 2, True, 1234, True), NodeStarted(400, 2, 2))
    assert kill == Fault(
        "kill", 100, 400, (2,), "node 2 crashed inside a persist; 1,234 unsynced bytes lost; "
        "a record torn"
    )  # fmt: skip
    (kill,) = faults_of(NodeCrashed(100, 2))  # pysyncobj's: no disk to speak of
    assert (kill.detail, kill.end_ms) == ("node 2 crashed", None)


def test_node_ten_is_not_node_one() -> None:
    nodes = tuple(range(1, 12))
    events = (NodeCrashed(100, 1), NodeCrashed(150, 10), NodeStarted(200, 1, 2))
    kills = [(f.nodes, f.start_ms, f.end_ms) for f in faults_of(*events, nodes=nodes)]
    assert kills == [((1,), 100, 200), ((10,), 150, None)]


def test_a_node_that_will_not_start_is_crashed_to_the_end_and_named() -> None:
    error = "wal/00000001.log at byte 4096: bad checksum"
    timeline = read(
        RoleChanged(10, 3, "leader", 1),
        NodeCrashed(100, 3),
        FaultInjected(100, DiskFault(3, "bit-flip")),
        NodeRefused(300, 3, error),
        NodeRefused(900, 3, error),  # healing tries again
    )
    intervals, faults = timeline.finish(2_000)
    assert Interval(3, IntervalKind.CRASHED, 100, 2_000) in intervals
    assert Interval(3, IntervalKind.LEADER, 10, 100, 1) in intervals
    assert [(f.kind, f.end_ms) for f in faults] == [("disk", 100), ("kill", None)]
    assert (
        f"Node 3 would not start from its data directory at 300 ms (and 1 more times): {error}. "
        "It is drawn as crashed to the end of the run." in timeline.notes
    )


def test_a_refused_node_that_starts_later_is_crashed_until_then() -> None:
    timeline = read(NodeCrashed(100, 3), NodeRefused(300, 3, "lost"), NodeStarted(700, 3, 3))
    intervals, _ = timeline.finish(2_000)
    assert Interval(3, IntervalKind.CRASHED, 100, 700) in intervals
    assert timeline.notes[-1].endswith("It is drawn as crashed until it started again.")


def test_disk_faults_are_instants_in_words() -> None:
    for what in (*DISK_FAULTS, "lost"):
        (fault,) = faults_of(FaultInjected(50, DiskFault(2, what)))
        assert fault == Fault("disk", 50, 50, (2,), f"node 2's disk: {DISK_WORDS[what]}")


def test_degraded_network_per_source_until_withdrawn() -> None:
    loss = NetworkConditions(loss=0.2)
    reorder = NetworkConditions(max_delay_ms=300, truncate=0.05)
    found = faults_of(
        FaultInjected(100, Degrade("loss", loss)),
        FaultInjected(200, Degrade("reorder", reorder)),
        FaultInjected(500, Degrade("loss", None)),
        Healed(800),
    )
    assert [(f.kind, f.start_ms, f.end_ms, f.detail) for f in found] == [
        ("loss", 100, 500, "20.0% of messages lost (from loss)"),
        ("slow-link", 200, 800, "delays 1–300 ms (messages reorder) (from reorder)"),
        ("truncate", 200, 800, "5.0% of messages arrive cut short (from reorder)"),
    ]


def test_network_conditions_show_damaged_frames_until_replaced() -> None:
    found = faults_of(
        FaultInjected(100, NetworkConditions(truncate=0.1)),
        FaultInjected(400, NetworkConditions()),
    )
    assert found == [Fault("truncate", 100, 400, NODES, "10.0% of messages arrive cut short")]


def test_slow_links_until_replaced_or_healed() -> None:
    found = faults_of(
        FaultInjected(100, SlowLinks(((1, 2), (2, 1)), 300)),
        FaultInjected(400, SlowLinks(((3, 1002),), 50)),  # a client's link: node 3 only
        FaultInjected(600, SlowLinks(())),
        FaultInjected(700, SlowLinks(((1, 3),), 80)),
        Healed(900),
    )
    assert [(f.nodes, f.start_ms, f.end_ms, f.detail) for f in found] == [
        ((1, 2), 100, 400, "+300 ms on 1→2, 2→1"),
        ((3,), 400, 600, "+50 ms on 3→1002"),
        ((1, 3), 700, 900, "+80 ms on 1→3"),
    ]


def test_membership_changes_are_instants() -> None:
    (fault,) = faults_of(FaultInjected(100, ChangeMembership("remove", 3)))
    assert fault == Fault("membership", 100, 100, (3,), "remove node 3 (asked of the leader)")


def test_crash_restart_and_heal_show_through_what_they_cause() -> None:
    events = (FaultInjected(100, Crash(2)), FaultInjected(200, Restart(2)))
    assert faults_of(*events, FaultInjected(300, HealNetwork())) == []


def test_every_fault_kind_of_the_simulator_is_drawn_in_a_colour() -> None:
    """Each kind the simulator injects becomes one the page knows (or shows through
    another event): a new kind must be taught to the report, not fall to `other`."""
    shown = {
        "partition": "partition", "link-cut": "link-cut", "heal": None, "crash": "kill",
        "restart": None, "pause": "pause", "clock-jump": "clock-skew",
        "clock-drift": "clock-skew", "network": "loss", "slow-links": "slow-link",
        "degrade": "loss", "membership": "membership", "disk": "disk",
    }  # fmt: skip
    assert set(FAULT_KINDS) == set(shown)
    assert {kind for kind in shown.values() if kind} <= set(KNOWN_FAULT_KINDS)
