"""The failover benchmark: its table from hand-made trials (targets pass and fail, a
double run is a wrong answer, the quoted rows say so), and two real trials of each
measurement on a 3-node cluster, leaving no process behind."""

from __future__ import annotations

from bench import bench_failover
from bench.bench_failover import Measured, Samples
from tests.supervisor.kit import children


def measured(
    failover: tuple[float, ...], move: tuple[float, ...], double_runs: int = 0
) -> Measured:
    return Measured(Samples(failover), Samples(move), Samples((800.0,)), double_runs, (), 0, 0)


def notes(rows: list[bench_failover.Row]) -> dict[str, str]:
    return {r.name: r.note for r in rows if r.name.startswith("target: ")}


def test_targets_pass_within_their_bounds_and_fail_beyond() -> None:
    good = bench_failover.rows(measured((900.0, 1_000.0, 1_100.0), (200.0, 300.0)), 3)
    assert all(n.startswith("PASS") for n in notes(good).values()), notes(good)
    assert not any(r.failed for r in good)
    slow = bench_failover.rows(measured((1_600.0, 1_700.0, 3_500.0), (600.0, 700.0)), 3)
    assert all(n.startswith("FAIL") for n in notes(slow).values()), notes(slow)
    assert not any(r.failed for r in slow)  # slow is not wrong


def test_a_double_run_is_a_wrong_answer_and_fails_the_failover_targets() -> None:
    rows = bench_failover.rows(measured((900.0,), (200.0,), double_runs=1), 1)
    (double,) = [r for r in rows if r.name.startswith("double runs")]
    assert double.failed and double.value == 1
    found = notes(rows)
    assert found["target: group failover p50 <= 1.5 s"].startswith("FAIL")
    assert found["target: planned move p50 <= 0.5 s"].startswith("PASS")


def test_the_anchors_rows_are_quoted_not_measured() -> None:
    rows = bench_failover.rows(measured((1_000.0,), (200.0,)), 1)
    quoted = {r.peer: r for r in rows if r.peer}
    assert set(quoted) == {bench_failover.PACEMAKER, bench_failover.WSFC}
    assert quoted[bench_failover.WSFC].peer_value == 10_000.0
    assert all(r.note.startswith("quoted, not measured") for r in quoted.values())
    assert quoted[bench_failover.PACEMAKER].ratio == 7.0


def _real(trials: int) -> None:
    before = children()
    rows = bench_failover.run(quick=True, trials=trials)
    by_name = {(r.name, r.peer): r for r in rows}
    for name in (
        "group failover after kill -9 of its node", "planned move, MoveGroup to the answer",
        "leader failover, kill -9 to the next acked put",
    ):  # fmt: skip
        row = by_name[(f"{name} (p50)", "")]
        assert row.value > 0 and f"{trials} trials" in row.note, row
        assert "did not finish" not in row.note, row
    (double,) = [r for r in rows if r.name.startswith("double runs")]
    assert double.value == 0 and not double.failed, double
    assert not any(r.name.startswith("processes left") for r in rows), rows
    assert children() <= before


def test_two_trials_of_each_failover_on_a_real_cluster() -> None:
    """About 15 s on a quiet machine (under the 30 s past which it would go to soak)."""
    _real(2)
