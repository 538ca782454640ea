"""Nemeses that stop nodes: `kill` (power off and restart, some during a sync, losing
its unsynced writes) and `pause` (a stopped process whose messages wait)."""

from __future__ import annotations

from chaos.sim.faults import Crash, Fault, Pause, Restart
from chaos.sim.nemeses.episodes import Episodes
from chaos.sim.nemesis import ClusterView


class Kill(Episodes):
    """Crash a running node (the leader one time in three), at once or during its next
    sync, and restart it from its disk when the episode ends. Never more than a minority
    down at once, so the cluster can recover (liveness is checked after healing)."""

    name = "kill"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        down = len(self.nodes) - len(view.running)
        if down + 1 > (len(self.nodes) - 1) // 2 or not view.running:
            return []
        rng = self.rng
        node = view.leader if view.leader and rng.random() < 1 / 3 else rng.choice(view.running)
        if not view.voters_keep_a_majority(down=node):
            return []
        during_sync = rng.random() < 0.5
        self.later(now_ms + hold_ms, Restart(node), "restart")
        return [self.inject("crash-in-sync" if during_sync else "crash", Crash(node, during_sync))]


class PauseNode(Episodes):
    """Pause a running node (the leader half the time) for the episode."""

    name = "pause"

    def begin(self, now_ms: int, view: ClusterView, hold_ms: int) -> list[Fault]:
        candidates = [n for n in view.running if n not in view.paused]
        if not candidates:
            return []
        if view.leader in candidates and self.rng.random() < 0.5:
            return [self.inject("pause-leader", Pause(view.leader, hold_ms))]
        return [self.inject("pause", Pause(self.rng.choice(candidates), hold_ms))]
