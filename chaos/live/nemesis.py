"""Carrying out the schedule on the real cluster: partitions, loss and delay through the
nodes' fault layer (the admin RPC `SetFaults` / `ClearFaults`), kill -9 and restart,
SIGSTOP and SIGCONT (a pause: the process is frozen, its sockets and children are not).

A partition blocks, on each node, its outgoing traffic to every node on the other side
(so both directions are cut); loss and delay act on every link of one node, both ways.
Client connections are never touched: a client can still reach every node, and a
minority node refuses or redirects it (as Jepsen's "partition between servers").
Each fault is recorded as a report `Fault` with its real start and end.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import trio

from chaos.live.cluster import AdminFailed, LiveCluster, leader_of
from chaos.live.config import FAULT_KIND
from chaos.live.schedule import Step, isolate
from chaos.live.timeline import Timeline
from chaos.report import Fault, IntervalKind
from raftcluster.node.admin import ClearFaults, SetFaults

Clock = Callable[[], float]
RESTART_TIMEOUT_S = 15.0


class Nemesis:
    def __init__(self, cluster: LiveCluster, clock: Clock, timeline: Timeline) -> None:
        self.cluster = cluster
        self.clock = clock
        self.timeline = timeline
        self.faults: list[Fault] = []
        self.counts: Counter[str] = Counter()
        self.notes: list[str] = []
        # What the nemesis did, when: the report directory's trace.jsonl.
        self.trace: list[dict[str, object]] = []
        self.paused: set[int] = set()  # nodes stopped by SIGSTOP, until their SIGCONT

    async def run(self, steps: tuple[Step, ...], start: float, duration_ms: int) -> None:
        """Each step at its time (`start` is the trio time of 0 ms), held for its whole
        length. A step that is late (a restart took long) starts late; one that would then
        end after `duration_ms` is skipped, and counted. Cancellation: the fault in force
        stays in force; `heal_all` (or stopping the nodes) ends it."""
        for step in steps:
            await trio.sleep_until(start + step.start_ms / 1000)
            if self.clock() + step.hold_ms > duration_ms:
                self.counts["faults.skipped"] += 1
                continue
            await self.apply(step)

    async def apply(self, step: Step) -> None:
        began = self.clock()
        try:
            nodes, detail, groups = await self._inject(step)
        except AdminFailed as e:
            self.counts["faults.failed"] += 1
            self.notes.append(f"{step.nemesis} at {began:.0f} ms was not injected: {e}")
            await self._heal(step, ())
            return
        self.counts[f"faults.{step.nemesis}"] += 1
        self._trace(began, "inject", step.nemesis, nodes, detail)
        await trio.sleep(step.hold_ms / 1000)
        healed = self.clock()
        self._trace(healed, "heal", step.nemesis, nodes, detail)
        await self._heal(step, nodes)
        kind = FAULT_KIND[step.nemesis]
        self.faults.append(Fault(kind, began, healed, nodes, detail, groups))

    def _trace(
        self, at_ms: float, action: str, nemesis: str, nodes: tuple[int, ...], detail: str
    ) -> None:
        self.trace.append(
            {
                "time_ms": at_ms,
                "action": action,
                "nemesis": nemesis,
                "nodes": list(nodes),
                "detail": detail,
            }
        )

    async def _inject(self, step: Step) -> tuple[tuple[int, ...], str, tuple[tuple[int, ...], ...]]:
        nodes = self.cluster.nodes
        if step.nemesis == "partition":
            groups = step.groups or isolate(await self._leader_or(step.node), nodes)
            await self._partition(groups)
            if len(groups[0]) == 1:
                self.timeline.begin(groups[0][0], IntervalKind.ISOLATED, self.clock())
            detail = " | ".join("{" + ",".join(map(str, g)) + "}" for g in groups)
            return nodes, detail, groups
        if step.nemesis == "kill":
            node = await self._leader_or(step.node) if step.target == "leader" else step.node
            await self.cluster.kill(node)
            self.timeline.begin(node, IntervalKind.CRASHED, self.clock())
            return (node,), f"kill -9 node {node} ({step.target})", ()
        if step.nemesis == "pause":
            node = await self._leader_or(step.node) if step.target == "leader" else step.node
            self.cluster.signal(node, signal.SIGSTOP)
            self.paused.add(node)
            self.timeline.begin(node, IntervalKind.PAUSED, self.clock())
            return (node,), f"SIGSTOP node {node} ({step.target})", ()
        request = {
            "drop": f"drop {step.drop_probability:g} of messages",
            "delay": f"delay messages {step.delay_ms} ms",
        }[step.nemesis]
        await self._links(step)
        return nodes, f"{request} to and from node {step.node}", ()

    async def _leader_or(self, fallback: int) -> int:
        return leader_of(await self.cluster.poll()) or fallback

    async def _partition(self, groups: tuple[tuple[int, ...], ...]) -> None:
        sides = {n: i for i, group in enumerate(groups) for n in group}
        for node in self.cluster.nodes:
            for peer in self.cluster.nodes:
                if peer != node and sides.get(peer) != sides.get(node):
                    await self.cluster.set_faults(node, SetFaults(peer, blocked=True))

    async def _links(self, step: Step) -> None:
        def faults(peer: int) -> SetFaults:
            return SetFaults(peer, drop_probability=step.drop_probability, delay_ms=step.delay_ms)

        for peer in self.cluster.nodes:
            if peer != step.node:
                await self.cluster.set_faults(step.node, faults(peer))
                await self.cluster.set_faults(peer, faults(step.node))

    async def _heal(self, step: Step, nodes: tuple[int, ...]) -> None:
        now = self.clock()
        if step.nemesis == "kill":
            for node in nodes:
                await self._restart(node)
            return
        if step.nemesis == "pause":
            self._resume(now)
            return
        for node in self.cluster.nodes:
            self.timeline.end(node, IntervalKind.ISOLATED, now)
        await self.heal_all()

    async def _restart(self, node: int) -> None:
        """The node's crash ends when it runs again; the next fault waits until it
        answers (or RESTART_TIMEOUT_S passed: then it is noted)."""
        self.timeline.end(node, IntervalKind.CRASHED, self.clock())
        if not await self.cluster.restart(node, RESTART_TIMEOUT_S):
            self.notes.append(f"node {node} did not answer {RESTART_TIMEOUT_S:g} s after restart")

    def _resume(self, now_ms: float) -> None:
        """SIGCONT every paused node."""
        for node in sorted(self.paused):
            self.cluster.signal(node, signal.SIGCONT)
            self.timeline.end(node, IntervalKind.PAUSED, now_ms)
        self.paused.clear()

    async def heal_all(self) -> None:
        """Resume every paused node, clear every fault on every node and start any node
        that is down. A node that does not take the clear is noted (its faults die with it
        if it is restarted). Cancellation: some nodes may keep their faults."""
        self._resume(self.clock())
        for node in self.cluster.nodes:
            if not self.cluster.alive(node):
                await self._restart(node)
        for node in self.cluster.nodes:
            try:
                await self.cluster.set_faults(node, ClearFaults())
            except AdminFailed as e:
                self.notes.append(f"could not clear faults at {self.clock():.0f} ms: {e}")
