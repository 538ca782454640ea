"""`GroupsService`: the cluster service on a real node, the trio shell around `NodeAgent`.

A node that runs the cluster service (`NodeSettings.groups` set, as every node started
from a cluster file does) makes one before its replica and wires it:

- the agent's `NodeManager` is one of the replica's leader services;
- `receive(peer, message)` takes the `NodeHeartbeat`s and `NodeHeartbeatAck`s its peers
  send (the runtime hands them over from the transport: a heartbeat only from the node
  it names, an ack only for this node), and `poke()` after every cycle of the node that
  applied something (or left a node to fence: the runtime's `_observe`);
- one task steps the agent after each poke and at its timers, and carries out each step
  in order: acks and the heartbeat go out on the transport (a flow of their own, so a
  burst of appends never holds them back); the controller's actions go to the
  `ResourceExecutor`, whose observations come back to the agent; a new lease end goes
  to the `Watchdog` (a process of its own, which kills every resource of this node when
  the lease ends, even if this process hangs or dies); reports are proposed through the
  log by the node's own client (`CoreRunner`: sessions, retries, the leader found like
  any client's), at most `MAX_REPORTS_IN_FLIGHT` at once: the controller repeats every
  report until the state shows it, so one dropped here is sent again;
- `fence_command` (`[fencing] command`): the leader's node manager asks for it before it
  declares a silent node down (`fencing.FenceGate`); the service runs it as a
  subprocess and tells the gate how it ended, and proposes `FenceFailed` when it failed.

Files under the data directory: `groups/incarnation` (the node's start count: every
start is a new incarnation, so the leader tells a restarted node from one that was
silent), `groups/cursor` (the global updates' cursor), `resources/` (the supervisor's
logs and exit records, per group and resource).

Stopping (`shutdown`): every resource is stopped (each within its stop timeout, then
killed), and the watchdog is told to kill whatever is left and exit. Nothing this node
started outlives it: a kill -9 of the node closes the watchdog's input, and it kills
every resource at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from raftcluster.client.core import ClientConfig
from raftcluster.client.runner import CoreRunner
from raftcluster.groups.actions import Observation, Output
from raftcluster.groups.agent import NodeAgent, Step
from raftcluster.groups.cursor import CursorFile
from raftcluster.groups.fencing import FenceGate
from raftcluster.groups.heartbeat import NodeHeartbeat, NodeHeartbeatAck
from raftcluster.groups.settings import GroupsSettings
from raftcluster.node.clock import NodeClock
from raftcluster.node.replica import Replica
from raftcluster.resources.executor import ResourceExecutor
from raftcluster.resources.registry import Kinds
from raftcluster.supervisor.children import Supervisor
from raftcluster.supervisor.watchdog import Watchdog
from raftcluster.transport import Address, UnknownPeer
from raftcluster.transport import ClientConfig as TransportClientConfig
from statemachine.codec import Message
from statemachine.errors import ClusterError, LimitExceeded
from statemachine.groups.messages import MAX_DETAIL_CHARS, FenceFailed, GroupReport

log = logging.getLogger("raftcluster.groups")

HEARTBEAT_FLOW = 2  # the transport flow of the cluster service's heartbeats and acks
# Reports proposed and not yet answered. Each group has at most one pending report (and
# RESTARTED records), repeated every `report_retry_ms` until the state shows it: a burst
# beyond this is dropped and sent again by the controller.
MAX_REPORTS_IN_FLIGHT = 64
# How long the node's shutdown waits for its resources to stop before killing them all.
SHUTDOWN_STOP_MS = 30_000


class GroupsService:
    def __init__(
        self,
        node_id: int,
        settings: GroupsSettings,
        data_dir: Path,
        clock: NodeClock,
        now_ms: int,
        *,
        kinds: Kinds | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.node_id = node_id
        self.settings = settings
        self.clock = clock
        self._dir = data_dir / "groups"
        self._dir.mkdir(parents=True, exist_ok=True)
        counter = CursorFile(self._dir / "incarnation")
        self.incarnation = counter.read() + 1
        counter.save(self.incarnation)
        cursor = CursorFile(self._dir / "cursor")
        timing = settings.timing
        # With a fencing agent, retried this often while the node stays silent.
        self.fence = FenceGate(timing.node_down_after_ms) if settings.fence_command else None
        self._fence_wanted = trio.Event()
        self.agent = NodeAgent(node_id, self.incarnation, timing, now_ms, cursor, fence=self.fence)
        self.supervisor = Supervisor(data_dir / "resources", on_session=self._session)
        self.watchdog = Watchdog(on_killed=self._killed)
        kinds = kinds if kinds is not None else Kinds.default()
        self.executor = ResourceExecutor(node_id, self.supervisor, kinds, self._observed)
        self._rng = rng if rng is not None else random.Random()
        self._send: Callable[[int, Message, int], None] | None = None
        self._peers: tuple[int, ...] = ()
        self._wake = trio.Event()
        self._reports: list[GroupReport] = []
        self._reports_ready = trio.Event()
        self._in_flight = 0
        self._runner: CoreRunner | None = None
        self._stopping = False  # shutting down: the controller's actions are not carried out

    # -- wiring (the runtime) ---------------------------------------------------------

    def attach(
        self,
        replica: Replica,
        send: Callable[[int, Message, int], None],
        peers: Sequence[int],
    ) -> None:
        """The replica is loaded: the agent reads its state from now on. `send(peer,
        message, flow)` queues a message on the transport (never blocks)."""
        self.agent.attach(replica)
        self._send = send
        self._peers = tuple(sorted(peers))

    def poke(self) -> None:
        """Something changed (a cycle ran, a message came): step soon."""
        self._wake.set()

    def receive(self, peer: int, message: Message) -> bool:
        """A cluster-service message from `peer` (False: not one). A heartbeat counts only
        from the node it names; an ack only if it is for this node."""
        if isinstance(message, NodeHeartbeat):
            if message.node == peer:
                self.agent.heartbeat_in(message)
                self.poke()
            return True
        if isinstance(message, NodeHeartbeatAck):
            if message.node == self.node_id:
                self.agent.ack_in(message)
                self.poke()
            return True
        return False

    # -- running ----------------------------------------------------------------------

    async def serve(
        self,
        endpoints: Mapping[int, Sequence[Address]],
        transport: TransportClientConfig,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the service until cancelled (call `shutdown` first to stop the resources
        gracefully). `endpoints` are the cluster's nodes for the reports' client.
        Cancellation: the supervisor kills every process it started and the watchdog
        exits after killing what it tracks."""
        assert self.agent.replica is not None, "attach the replica first"
        config = ClientConfig(
            nodes=tuple(endpoints),
            attempt_timeout_ms=1_000,
            op_timeout_ms=self.settings.timing.report_retry_ms,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(self.watchdog.serve)
            await nursery.start(self.supervisor.serve)
            await nursery.start(self.executor.serve)
            async with CoreRunner.open(endpoints, transport, config, self._rng) as runner:
                self._runner = runner
                nursery.start_soon(self._propose_reports)
                if self.fence is not None:
                    nursery.start_soon(self._run_fencing, self.fence)
                task_status.started()
                await self._step_loop()

    async def shutdown(self) -> None:
        """Stop every resource this node runs (each within its stop timeout), then tell
        the watchdog to kill what is left. Cancellation: the stops are abandoned; the
        supervisor's own exit kills whatever still runs."""
        self._stopping = True
        await self.executor.stop_everything(SHUTDOWN_STOP_MS)
        self.watchdog.fence()

    async def _step_loop(self) -> None:
        clock = self.clock
        while True:
            wake_ms = self.agent.next_wake_ms()
            with trio.move_on_at(clock.trio_time(wake_ms)):
                await self._wake.wait()
            self._wake = trio.Event()
            self._carry_out(self.agent.step(clock.now_ms()))
            if self.fence is not None and self.fence.wanting:
                self._fence_wanted.set()  # the node manager asked for a node to be fenced

    def _carry_out(self, step: Step) -> None:
        for ack in step.acks:
            self._transmit(ack.node, ack)
        if step.heartbeat is not None:
            for peer in self._peers:
                self._transmit(peer, step.heartbeat)
        for out in step.outputs:
            self._carry_out_output(out)

    def _carry_out_output(self, out: Output) -> None:
        if self._stopping:
            return  # the resources are being stopped; nothing starts again
        for action in out.actions:
            self.executor.act(action)
        if out.lease is not None:
            self.watchdog.arm(out.lease.until_ms, self.clock.now_ms())
        for report in out.reports:
            if self._in_flight + len(self._reports) >= MAX_REPORTS_IN_FLIGHT:
                log.warning("node %d: report dropped (%d in flight), sent again later: %s",
                            self.node_id, self._in_flight, report)  # fmt: skip
                continue
            self._reports.append(report)
            self._reports_ready.set()

    async def _run_fencing(self, gate: FenceGate) -> None:
        """Run the fencing agent for every node the node manager wants fenced (checked
        after every step), each in a task of its own."""
        async with trio.open_nursery() as nursery:
            while True:
                await self._fence_wanted.wait()
                self._fence_wanted = trio.Event()
                for node in gate.take_wanted(self.clock.now_ms()):
                    nursery.start_soon(self._fence_node, gate, node)

    async def _fence_node(self, gate: FenceGate, node: int) -> None:
        settings = self.settings
        argv = (*settings.fence_command, str(node))
        log.warning("node %d: fencing node %d: %s", self.node_id, node, " ".join(argv))
        try:
            done = await self.supervisor.run_command(
                f"fencing/node-{node}", argv, env={"RAFTCLUSTER_FENCE_NODE": str(node)},
                timeout_ms=settings.fence_timeout_ms,
            )  # fmt: skip
            ok = done.status is not None and done.status.code == 0
            if done.status is None:
                detail = f"timed out after {settings.fence_timeout_ms} ms"
            else:
                tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
                detail = done.status.describe() + (f": {tail[0]}" if tail else "")
        except ClusterError as e:  # the agent could not even start (not found, ...)
            ok, detail = False, str(e)
        detail = "".join(c for c in detail if c.isprintable())[:MAX_DETAIL_CHARS]
        gate.ended(node, ok, detail, self.clock.now_ms())
        if ok:
            log.warning("node %d: node %d fenced", self.node_id, node)
            return
        log.error("node %d: fencing node %d failed (%s): its groups stay", self.node_id, node,
                  detail)  # fmt: skip
        runner = self._runner
        if runner is not None:
            failed = FenceFailed(node, detail, self.clock.now_ms())
            await runner.write(failed, timeout_ms=self.settings.timing.report_retry_ms)

    def _transmit(self, peer: int, message: Message) -> None:
        send = self._send
        assert send is not None
        try:
            send(peer, message, HEARTBEAT_FLOW)
        except UnknownPeer:
            pass  # a member the transport has no address for (yet)
        except LimitExceeded as e:  # cannot happen for these small messages; never fatal
            log.error("node %d: %s does not fit in a frame: %s", self.node_id, message, e)

    async def _propose_reports(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                await self._reports_ready.wait()
                self._reports_ready = trio.Event()
                reports, self._reports = self._reports, []
                for report in reports:
                    self._in_flight += 1
                    nursery.start_soon(self._propose, report)

    async def _propose(self, report: GroupReport) -> None:
        runner = self._runner
        assert runner is not None
        try:
            done = await runner.write(report, timeout_ms=self.settings.timing.report_retry_ms)
        finally:
            self._in_flight -= 1
        if done.error is not None:
            log.info("node %d: report %s %s under epoch %d not applied: %s", self.node_id,
                     report.group, report.kind.name, report.epoch, done.error)  # fmt: skip

    # -- what the executor and the watchdog say ---------------------------------------

    def _observed(self, obs: Observation) -> None:
        self.agent.observed(obs)
        self.poke()

    def _session(self, sid: int, alive: bool) -> None:
        if alive:
            self.watchdog.track(sid)
        else:
            self.watchdog.untrack(sid)

    def _killed(self, sid: int) -> None:
        log.warning("node %d: the watchdog killed session %d (the lease ended)", self.node_id, sid)
        self.executor.on_fenced()
