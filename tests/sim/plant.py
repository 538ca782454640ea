"""A bug to plant in-process, for tests of the harness's own commands (a failing seed to
record, a campaign that fails): the cycle core's public policy says every message may
leave before the persist it depends on, so the first vote a node grants breaks the
promise the simulator checks at every send ("persist before send"), in any seed.

(The bugs a campaign must find are planted in the source itself: test_mutants.py.)"""

from __future__ import annotations

import pytest

from raftcluster.node import cycle


def send_everything_early(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cycle, "may_send_before_persist", lambda message: True)
