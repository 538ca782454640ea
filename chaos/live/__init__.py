"""Live mode of the chaos harness: real node processes on 127.0.0.1 under faults from
the transport's fault layer and kill -9, a real-time history, the same checkers
(docs/chaos-live.md).

    from chaos.live import LiveConfig, observe, judge
    observed = await observe(LiveConfig(nodes=3, duration_ms=10_000, seed=7), directory)
    judgement = judge(observed, replay="raftcluster chaos live --seed 7 ...")
    judgement.verdict, judgement.record      # RunVerdict, chaos.report.Record
"""

from __future__ import annotations

from chaos.live.config import NEMESES, WORKLOADS, LiveConfig
from chaos.live.judge import Judgement, judge
from chaos.live.run import Observations, observe

__all__ = ["NEMESES", "WORKLOADS", "Judgement", "LiveConfig", "Observations", "judge", "observe"]
