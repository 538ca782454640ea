"""Fencing agents: the leader makes sure a silent node is off before declaring it down.

With `[fencing] command` set, the leader's node manager declares a silent node down only
once the fencing agent (the analogue of a STONITH agent: power off, cut the storage)
succeeded for it after its silence began. `FenceGate` is that rule as a core (the node
manager asks `cleared`; the shell runs what `take_wanted` hands out and reports with
`ended`); `GroupsService` (`service.py`) runs the agent as a subprocess:

    <command...> <node id>        environment RAFTCLUSTER_FENCE_NODE=<node id>

exit status 0 means fenced; anything else, a timeout included, means not fenced: the
node's groups stay where they are, a `FenceFailed` is proposed (the `NodeFenceFailed`
event tells operators), and the agent is tried again `retry_ms` later while the node
stays silent. The timing rule still holds with an agent (it guards against the agent
lying), so an agent adds safety, not speed.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class FenceResult:
    node: int
    started_ms: int
    ended_ms: int
    ok: bool
    detail: str


class FenceGate:
    def __init__(self, retry_ms: int) -> None:
        self.retry_ms = retry_ms
        self._running: dict[int, int] = {}  # node -> when its agent started
        self._wanted: list[int] = []
        self._last: dict[int, FenceResult] = {}

    def cleared(self, node: int, silent_since_ms: int, now_ms: int) -> bool:
        """Whether `node`, silent since `silent_since_ms`, was fenced since then; if not,
        the agent is wanted for it (unless it runs, or failed less than `retry_ms` ago)."""
        last = self._last.get(node)
        if last is not None and last.started_ms >= silent_since_ms:
            if last.ok:
                return True
            if now_ms - last.ended_ms < self.retry_ms:
                return False
        if node not in self._running and node not in self._wanted:
            self._wanted.append(node)
        return False

    @property
    def wanting(self) -> bool:
        """Whether a node waits for its agent to be run (`take_wanted`)."""
        return bool(self._wanted)

    def take_wanted(self, now_ms: int) -> list[int]:
        """The nodes whose agent the shell must run now (each marked running)."""
        wanted, self._wanted = self._wanted, []
        for node in wanted:
            self._running[node] = now_ms
        return wanted

    def ended(self, node: int, ok: bool, detail: str, now_ms: int) -> FenceResult:
        started = self._running.pop(node)
        result = FenceResult(node, started, now_ms, ok, detail)
        self._last[node] = result
        return result
