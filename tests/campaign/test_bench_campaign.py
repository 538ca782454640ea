"""The campaign row of bench_sim runs end to end in quick mode (so it cannot rot). No
timing is asserted: speed is reported by `make bench`, not tested."""

from __future__ import annotations

from bench import bench_sim


def test_the_campaign_row_measures_a_passing_campaign() -> None:
    row = bench_sim._campaign(quick=True)
    assert row.name == "sim: virtual s per wall s, 5-node campaign"
    assert not row.failed and row.value > 0
    assert "chaos run --seeds 1..1 --nodes 5 --duration 5 --report DIR" in row.note
