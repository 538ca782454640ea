"""Runs of the simulator as a product: one seed's report, campaigns over seed ranges, and
regression seeds (docs/chaos.md).

    from chaos.campaign import sim_record, write_sim_report
    record = sim_record(result, replay="raftcluster chaos run --seed 7 ...", wall={})
    write_sim_report("run-7", result, replay=..., wall={...})
"""

from __future__ import annotations

from chaos.campaign.sim_report import sim_record, trace_lines, write_sim_report

__all__ = ["sim_record", "trace_lines", "write_sim_report"]
