"""`raftcluster demo`: a local three-node cluster survives the loss of its leader.

Step by step, checking each claim:
 1. `raftcluster init` a cluster in a temporary directory;
 2. start three `raftcluster node run` processes (as `raftcluster up` does) and wait for a
    leader;
 3. write keys through a client session and read them back (linearizable);
 4. kill the leader with SIGKILL while writes keep coming, and show the new leader;
 5. check that every acknowledged write is still there, applied once;
 6. restart the killed node: it recovers from its data directory and catches up
    (the same applied index on every node), and `raftcluster status` shows it;
 7. create a resource group "web" that runs a real HTTP server (`python -m http.server`
    on a port the demo picks), preferred on node 1, failing back at once; the page
    answers, served by node 1;
 8. kill -9 node 1: the group comes online on another node, the page answers there, and
    the time the failover took is shown;
 9. restart node 1: the group fails back to it;
10. print the run's events of the cluster service;
11. stop every node with SIGTERM and check they exit cleanly (and the server with them).
Exit status 0 only if every check passed. `--in-process` runs the older demonstration
of the replicated state machine alone (three replicas in this process).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import trio

from raftcluster.cli import status
from raftcluster.cli.demo_replicas import run_in_process
from raftcluster.cli.group_output import event_line
from raftcluster.cli.output import add_json_flag, emit
from raftcluster.cli.processes import NodeProcesses, describe_exit
from raftcluster.client.probe import Poller, Probe, Target
from raftcluster.client.runner import CoreRunner
from raftcluster.config import (
    ClusterFile,
    client_transport_config,
    endpoints,
    init_cluster,
)
from raftcluster.config.init import free_ports
from raftcluster.errors import OutcomeUnknown
from statemachine.codec import Message
from statemachine.groups.messages import (
    CreateGroup,
    EventPage,
    Failback,
    GetEvents,
    GroupList,
    GroupSpec,
    GroupState,
    ListGroups,
    ResourceSpec,
)
from statemachine.kv import Put, Range, RangeResult

WAIT_S = 30.0
NODES = 3


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="start a local 3-node cluster, kill its leader, show that nothing is lost",
        description="Start three node processes, write, kill the leader with SIGKILL, "
        "check every acknowledged write survived, restart the node and watch it catch up.",
    )
    parser.add_argument(
        "--dir", type=Path, default=None,
        help="where to put the cluster (default: a temporary directory)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the cluster directory afterwards")
    parser.add_argument(
        "--in-process", action="store_true",
        help="only the replicated state machine: three replicas in this process",
    )  # fmt: skip
    add_json_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.in_process:
        return run_in_process(args)
    root = args.dir or Path(tempfile.mkdtemp(prefix="raftcluster-demo-"))
    demo = Demo(root, quiet=args.json)
    try:
        passed = trio.run(demo.run)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    emit(args, demo.summary(passed), lambda s: f"demo {'passed' if passed else 'FAILED'}: "
         f"{s['passed']} of {s['checks']} checks")  # fmt: skip
    return 0 if passed else 1


class DemoFailed(Exception):
    """A step could not go on (a wait ran out)."""


class Demo:
    def __init__(self, root: Path, *, quiet: bool = False) -> None:
        self.root = root
        self.quiet = quiet
        self.checks: list[tuple[str, bool]] = []
        self.started = time.monotonic()
        self.acked: dict[bytes, bytes] = {}
        self.unknown: set[bytes] = set()

    # -- output --------------------------------------------------------------------------

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.started:5.1f}s] {text}", flush=True)

    def check(self, what: str, ok: bool) -> bool:
        self.checks.append((what, ok))
        self.say(f"  {'ok  ' if ok else 'FAIL'} {what}")
        return ok

    def summary(self, passed: bool) -> dict[str, Any]:
        return {
            "passed": sum(ok for _, ok in self.checks),
            "checks": len(self.checks),
            "results": [{"check": what, "ok": ok} for what, ok in self.checks],
            "ok": passed,
            "seconds": round(time.monotonic() - self.started, 1),
        }

    # -- the script ----------------------------------------------------------------------

    async def run(self) -> bool:
        """Run every step; True if every check passed. Cancellation kills the nodes."""
        self.say(f"step 1: raftcluster init {self.root} --nodes {NODES}")
        cluster = init_cluster(self.root, nodes=NODES, force=True)
        for node in cluster.nodes:
            self.say(f"  node {node.id}: {node.addresses[0]}, data in {node.data_dir}")
        processes = NodeProcesses(cluster)
        try:
            async with self._following(cluster) as poller:
                await self._script(cluster, processes, poller)
        except DemoFailed as e:
            self.check(str(e), False)
        finally:
            await processes.close()
        return bool(self.checks) and all(ok for _, ok in self.checks)

    @contextlib.asynccontextmanager
    async def _following(self, cluster: ClusterFile) -> AsyncIterator[Poller]:
        targets = [Target(n.id, n.addresses) for n in cluster.nodes]
        async with Poller.open(targets, client_transport_config(cluster)) as poller:
            yield poller

    async def _script(self, cluster: ClusterFile, processes: NodeProcesses, poller: Poller) -> None:
        self.say("step 2: start the nodes (raftcluster node run --config ... --id N)")
        for node_id in cluster.node_ids:
            process = await processes.start(node_id)
            self.say(f"  node {node_id}: pid {process.pid}, log {processes.log_path(node_id)}")
        leader, term = await self._leader(poller)
        self.check(f"node {leader} leads (term {term})", True)

        config = client_transport_config(cluster)
        async with CoreRunner.open(endpoints(cluster), config) as client:
            self.say("step 3: write 10 keys through a client session, read them back")
            for i in range(10):
                await self._put(client, b"demo/before/%02d" % i, b"value %d" % i)
            found = await self._read_all(client)
            self.check(f"linearizable read returns all {len(self.acked)} writes", found)

            pid = processes.pid(leader)
            self.say(f"step 4: kill -9 the leader, node {leader} (pid {pid}), while writing")
            await self._kill_during_writes(client, processes, poller, leader)

            self.say("step 5: every acknowledged write is still there")
            found = await self._read_all(client)
            doubt = f", {len(self.unknown)} in doubt" if self.unknown else ""
            self.check(f"all {len(self.acked)} acknowledged writes read back{doubt}", found)

        self.say(f"step 6: restart node {leader}; it recovers from its data directory")
        await processes.start(leader)
        applied = await self._caught_up(poller)
        self.check(f"node {leader} caught up: applied index {applied} on every node", True)
        probes = await poller.poll(timeout_ms=2_000)
        summary = status.summarize(cluster.cluster_id, probes)
        for line in status.human(summary).splitlines():
            self.say(f"  {line}")

        await self._groups(cluster, processes)

        self.say("step 11: stop every node (SIGTERM)")
        codes = await processes.stop_all()
        for node_id, code in sorted(codes.items()):
            self.say(f"  node {node_id} {describe_exit(code if code is not None else 0)}")
        self.check("every node stopped cleanly", all(c == 0 for c in codes.values()))

    async def _groups(self, cluster: ClusterFile, processes: NodeProcesses) -> None:
        (port,) = free_ports(1)
        www = self.root / "www"
        spec = web_group(port, www)
        config = client_transport_config(cluster)
        async with CoreRunner.open(endpoints(cluster), config) as client:
            self.say(f"step 7: group web: python -m http.server on 127.0.0.1:{port}, preferred "
                     "on node 1, failback immediate")  # fmt: skip
            await self._write(client, CreateGroup(spec, True, _wall_ms()))
            page, _ = await self._page(port, lambda p: _served_by(p) == 1)
            await self._online(client, "web", 1)
            self.check(f"web is ONLINE on node 1; the page answers: {page!r}", True)

            pid = processes.pid(1)
            self.say(f"step 8: kill -9 node 1 (pid {pid}), which runs the group")
            processes.kill(1, signal.SIGKILL)
            killed = time.monotonic()
            await processes.wait(1)
            page, _ = await self._page(port, lambda p: _served_by(p) not in (None, 1))
            took = time.monotonic() - killed
            owner = _served_by(page)
            assert owner is not None
            await self._online(client, "web", owner)
            self.check(f"web fails over to node {owner} in {took:.2f} s: {page!r}", owner != 1)

            self.say("step 9: restart node 1; web fails back to it")
            await processes.start(1)
            page, back = await self._page(port, lambda p: _served_by(p) == 1)
            await self._online(client, "web", 1)
            self.check(f"web is back on node 1 ({back:.1f} s after the restart): {page!r}", True)

            self.say("step 10: the cluster service's events (raftcluster events)")
            done = await client.read(GetEvents(1), timeout_ms=int(WAIT_S * 1000))
            if not done.ok or not isinstance(done.result, EventPage):
                raise DemoFailed(f"reading the events failed: {done.error}")
            for event in done.result.events:
                self.say(f"  {event_line(event)}")

    async def _write(self, client: CoreRunner, command: Message) -> None:
        done = await client.write(command, timeout_ms=int(WAIT_S * 1000))
        if not done.ok:
            raise DemoFailed(f"{type(command).__name__} failed: {done.error}")

    async def _online(self, client: CoreRunner, name: str, node: int) -> None:
        """Wait until the state says `name` is ONLINE on `node` (its owner reported it)."""
        with trio.move_on_after(WAIT_S):
            while True:
                done = await client.read(ListGroups(), timeout_ms=int(WAIT_S * 1000))
                if not done.ok or not isinstance(done.result, GroupList):
                    raise DemoFailed(f"listing the groups failed: {done.error}")
                found = [g for g in done.result.groups if g.spec.name == name]
                if found and (found[0].state, found[0].owner) == (GroupState.ONLINE, node):
                    return
                await trio.sleep(0.02)
        raise DemoFailed(f"{name} was not ONLINE on node {node} within {WAIT_S:.0f} s")

    async def _page(self, port: int, wanted: Callable[[str], bool]) -> tuple[str, float]:
        """The page on `port` once it passes `wanted`, and the seconds that took."""
        started = time.monotonic()
        with trio.move_on_after(WAIT_S):
            while True:
                page = await _get(port)
                if page is not None and wanted(page):
                    return page, time.monotonic() - started
                await trio.sleep(0.02)
        raise DemoFailed(f"the page on port {port} did not answer as expected in {WAIT_S:.0f} s")

    async def _kill_during_writes(
        self, client: CoreRunner, processes: NodeProcesses, poller: Poller, leader: int
    ) -> None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for writer in range(4):
                nursery.start_soon(self._write_stream, client, writer, stop)
            await trio.sleep(0.2)
            before = len(self.acked)
            processes.kill(leader, signal.SIGKILL)
            killed_at = time.monotonic()
            code = await processes.wait(leader)
            self.say(f"  node {leader} {describe_exit(code)} ({len(self.acked)} writes so far)")
            new, term = await self._leader(poller, other_than=leader)
            took = time.monotonic() - killed_at
            self.check(f"node {new} leads now (term {term}, {took:.1f} s after the kill)", True)
            with trio.move_on_after(WAIT_S):
                while len(self.acked) < before + 20:
                    await trio.sleep(0.05)
            stop.set()
        self.say(f"  {len(self.acked) - before} writes acknowledged since the kill")

    async def _write_stream(self, client: CoreRunner, writer: int, stop: trio.Event) -> None:
        i = 0
        while not stop.is_set():
            await self._put(client, b"demo/during/%d-%03d" % (writer, i), b"w%d" % i)
            i += 1

    async def _put(self, client: CoreRunner, key: bytes, value: bytes) -> None:
        done = await client.write(Put(key, value), timeout_ms=int(WAIT_S * 1000))
        if done.ok:
            self.acked[key] = value
        elif isinstance(done.error, OutcomeUnknown):
            self.unknown.add(key)
        else:
            raise DemoFailed(f"write of {key!r} refused: {done.error}")

    async def _read_all(self, client: CoreRunner) -> bool:
        done = await client.read(Range.prefix(b"demo/"), timeout_ms=int(WAIT_S * 1000))
        if not done.ok or not isinstance(done.result, RangeResult):
            raise DemoFailed(f"read failed: {done.error}")
        stored = {kv.key: (kv.value, kv.version) for kv in done.result.kvs}
        lost = [k for k, v in self.acked.items() if stored.get(k) != (v, 1)]
        for key in lost[:5]:
            self.say(f"  LOST or applied twice: {key!r} -> {stored.get(key)}")
        return not lost

    async def _leader(self, poller: Poller, other_than: int = 0) -> tuple[int, int]:
        with trio.move_on_after(WAIT_S):
            while True:
                probes = await poller.poll(timeout_ms=1_000)
                leader = _leader_of(probes)
                if leader[0] and leader[0] != other_than:
                    return leader
                await trio.sleep(0.1)
        raise DemoFailed(f"no leader within {WAIT_S:.0f} s")

    async def _caught_up(self, poller: Poller) -> int:
        with trio.move_on_after(WAIT_S):
            while True:
                probes = await poller.poll(timeout_ms=1_000)
                infos = [p.info for p in probes if p.info is not None]
                applied = {i.status.applied_index for i in infos}
                commits = {i.status.commit_index for i in infos}
                if len(infos) == len(probes) and len(applied) == 1 and applied == commits:
                    return applied.pop()
                await trio.sleep(0.1)
        raise DemoFailed(f"the nodes did not converge within {WAIT_S:.0f} s")


def web_group(port: int, www: Path) -> GroupSpec:
    """The demo's group: an HTTP server whose page says which node serves it."""
    script = (
        f'mkdir -p "{www}/node-$RAFTCLUSTER_NODE" && cd "{www}/node-$RAFTCLUSTER_NODE" && '
        'echo "served by node $RAFTCLUSTER_NODE (epoch $RAFTCLUSTER_EPOCH)" > index.html && '
        f"exec {shlex.quote(sys.executable)} -m http.server {port} --bind 127.0.0.1"
    )
    server = ResourceSpec(
        "http",
        "process",
        params=(("command", shlex.join(["sh", "-c", script])),
                ("health", f"http://127.0.0.1:{port}/")),
        monitor_interval_ms=1_000,
        stop_timeout_ms=2_000,
    )  # fmt: skip
    return GroupSpec("web", resources=(server,), preferred_owners=(1,), failback=Failback.IMMEDIATE)


_SERVED_BY = re.compile(r"served by node (\d+) \(epoch \d+\)")


def _served_by(page: str) -> int | None:
    """The node a page of the web group names, or None for anything else: while the group
    moves, the server may answer an empty page (the new owner's `echo` truncates
    index.html before writing it) or an error."""
    found = _SERVED_BY.search(page)
    return int(found.group(1)) if found else None


async def _get(port: int) -> str | None:
    """GET / on 127.0.0.1:`port`: the body, or None (nothing answers, the connection was
    refused or broken: the server may be killed at any moment, that is the demo)."""
    with trio.move_on_after(1):
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            return None
        data = b""
        try:
            async with stream:
                await stream.send_all(b"GET / HTTP/1.0\r\nHost: demo\r\n\r\n")
                while len(data) < 65_536:  # a page of the demo's is one short line
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    data += chunk
        except (trio.BrokenResourceError, OSError):
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
            return None
        return body.decode("utf-8", "replace").strip()
    return None


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _leader_of(probes: list[Probe]) -> tuple[int, int]:
    leaders = [p.info for p in probes if p.info is not None and p.info.status.role == "leader"]
    if not leaders:
        return 0, 0
    best = max(leaders, key=lambda i: i.status.term)
    return best.node_id, best.status.term
