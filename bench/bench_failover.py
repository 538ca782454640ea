"""Failover of the cluster service on a real local cluster: three node processes
(`raftcluster init` with the timings below), one group whose resource is the probe
(chaos/live/groups/probe.py) on a free port, failback `never` so that it stays where
it went. Three measurements, each over N trials (20; `--trials`, 3 with --quick):

- group failover: kill -9 the owner's node process; the time until the probe answers
  from another node (the port polled every 10 ms; the answer names the node). The
  killed node is started again and the cluster settles (every node UP, the group
  ONLINE where it answers) before the next trial;
- planned move: `MoveGroup` to another node; from the write to the first answer from
  that node;
- leader failover: four writers put keys one after the other; kill -9 the leader; from
  the kill to the first write acknowledged among those sent after it (from the kill on,
  a fresh put also starts every 10 ms, since a put in flight at the kill may wait out
  its attempt). Each trial also counts its elections (how far the highest term rose);
- spurious elections: elections while no node is killed, over LOAD_S of the same four
  writers and over the planned moves (target 0).

Where etcd can be measured (bench/etcd_cluster.py: an `etcd` binary and `aetcd`), the
same leader failover runs on a 3-member etcd cluster with its defaults, its writers and
probes through aetcd (bench/etcd_failover.py, one process per trial), and the rows show
etcd's p50, p99 and max beside ours with the ratio.

Each gives p50, p99 and max; the probes' log is judged (chaos.live.groups.judge) for
double runs, which must be 0 (a double run is a wrong answer: `make bench` exits 1).

Beside them, quoted rows (not measured here) for the anchors' published defaults:
- Pacemaker/corosync: the figure of about 7 s before the resource starts elsewhere, of
  which corosync's own defaults give token loss at 1 000 ms and consensus at 1 200 ms
  (`pcs cluster setup`: token 1000 ms, consensus 1200 ms, Red Hat Enterprise Linux 7
  High Availability Add-On Reference, "Configuring Timeout Values for a Cluster";
  RHEL 8.4 raised the token to 3 000 ms); the rest is the new membership, fencing the
  lost node and the scheduler's transition, and is not itemized here;
- WSFC: about 10 s to detection, SameSubnetDelay 1 s x SameSubnetThreshold 10 (the
  Windows Server 2016 defaults; 2012 R2 without Hyper-V used 5).

Targets, printed with pass or fail: group failover p50 <= 1.5 s and p99 <= 3 s with no
double run; planned move p50 <= 0.5 s; leader failover p50 <= 0.5 s and max <= 1 s;
no spurious election.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import trio

from bench import etcd_cluster
from bench.table import Row
from chaos.live.groups.declare import probe_resource
from chaos.live.groups.judge import Answer, judge_log, read_log
from chaos.live.groups.run import ask, kill_leftovers
from raftcluster.cli.processes import NodeProcesses
from raftcluster.client.connect import ClientOptions, connect
from raftcluster.client.probe import Poller, Target
from raftcluster.config import ClusterFile, client_transport_config, init_cluster
from raftcluster.config.init import free_ports
from statemachine.errors import ClusterError
from statemachine.groups.messages import (
    CreateGroup,
    Failback,
    GroupInfo,
    GroupList,
    GroupSpec,
    GroupState,
    ListGroups,
    ListNodes,
    MoveGroup,
    NodeList,
    NodeState,
)

GROUP = "bench"
TRIALS = 20
QUICK_TRIALS = 3
POLL_S = 0.010  # the probe's port is asked this often while a failover runs
SETTLE_S = 60.0  # the most one trial's recovery may take on a loaded machine
WRITERS = 4  # puts one after the other each, during the leader failover
MAX_PROBES = 500  # puts started after a kill still in flight at once (5 s of them)
LOAD_S = 10.0  # the writers run this long with no kill, to count spurious elections
QUICK_LOAD_S = 1.0
ETCD_TRIAL_TIMEOUT_S = 120.0  # one etcd trial, its start-up and settling included
# The defaults of a cluster file (the targets are for default settings): an election
# timeout of 500 ms, heartbeats every 150 ms, a lease of 500 ms, and node-down after the
# timing rule's minimum rounded up, 1 300 ms (docs/groups-node.md).
SETTINGS: dict[str, int | bool] = {}
TARGETS = (  # (what, row name, bound in ms)
    ("group failover p50", "group failover after kill -9 of its node (p50)", 1_500.0),
    ("group failover p99", "group failover after kill -9 of its node (p99)", 3_000.0),
    ("planned move p50", "planned move, MoveGroup to the answer (p50)", 500.0),
    ("leader failover p50", "leader failover, kill -9 to the next acked put (p50)", 500.0),
    ("leader failover max", "leader failover, kill -9 to the next acked put (max)", 1_000.0),
)
PACEMAKER = "Pacemaker defaults (quoted)"
PACEMAKER_MS = 7_000.0
PACEMAKER_NOTE = (
    "quoted, not measured: about 7 s before the start elsewhere; corosync token 1000 ms + "
    "consensus 1200 ms (RHEL 7 HA reference, pcs cluster setup defaults) + membership, "
    "fencing and the scheduler"
)
WSFC = "WSFC defaults (quoted)"
WSFC_MS = 10_000.0
WSFC_NOTE = (
    "quoted, not measured: detection alone, SameSubnetDelay 1 s x SameSubnetThreshold 10 "
    "(Windows Server 2016 defaults)"
)


@attrs.frozen
class Samples:
    """One measurement's trials, in ms (failed: trials that did not finish)."""

    ms: tuple[float, ...]
    failed: int = 0

    def at(self, q: float) -> float:
        ordered = sorted(self.ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@attrs.frozen
class Measured:
    failover: Samples
    move: Samples
    leader: Samples
    double_runs: int
    findings: tuple[str, ...]
    owner_led: int  # group failovers in which the killed owner was also the leader
    leftovers: int  # processes still naming the run's directory after it (killed)
    # Elections (how far the highest term rose) in each leader failover trial.
    leader_elections: tuple[int, ...] = ()
    spurious: int = 0  # elections with no node killed: under LOAD_S of load, and moves
    load_s: float = 0.0
    etcd: EtcdFailover | None = None


@attrs.frozen
class EtcdFailover:
    """The same leader failover on etcd (bench/etcd_failover.py)."""

    peer: str  # "etcd 3.4.23 via aetcd"
    leader: Samples
    elections: tuple[int, ...]


def run(quick: bool, trials: int | None = None, etcd: bool = True) -> list[Row]:
    """Ours, then etcd's leader failover where it can be measured (`etcd=False`: not)."""
    count = trials if trials is not None else QUICK_TRIALS if quick else TRIALS
    load_s = QUICK_LOAD_S if quick else LOAD_S
    ours = trio.run(measure, count, None, load_s)
    # A quick run is a smoke run: one etcd trial (each takes some 7 s) says it works.
    theirs = measure_etcd(min(count, 1) if quick else count) if etcd else None
    return rows(attrs.evolve(ours, etcd=theirs), count)


async def measure(trials: int, root: Path | None = None, load_s: float = LOAD_S) -> Measured:
    """Every trial on one cluster in `root` (default: a temporary directory, removed).
    Cancellation: every node is stopped and every leftover process killed."""
    own = root is None
    directory = Path(tempfile.mkdtemp(prefix="bench-failover-")) if root is None else root
    try:
        return await _Bench(directory, trials, load_s).go()
    finally:
        if own:
            shutil.rmtree(directory, ignore_errors=True)


def measure_etcd(trials: int, path: str | None = None) -> EtcdFailover | None:
    """`trials` leader failovers of a local etcd cluster, or None after printing the line
    that says how to install etcd and aetcd when either is missing. Each trial runs
    bench/etcd_failover.py in a process of its own, which kills the leader; the killed
    member is started again before the next. A trial that fails is counted."""
    hint = etcd_cluster.missing(path)
    binary = shutil.which("etcd", path=path)
    if hint is not None or binary is None:
        print(hint, flush=True)
        return None
    times: list[float] = []
    elections: list[int] = []
    failed = 0
    with etcd_cluster.members(binary) as members:
        for _ in range(trials):
            command = [
                sys.executable, "-m", "bench.etcd_failover", "--endpoints",
                ",".join(members.endpoints), "--pids", ",".join(map(str, members.pids)),
                "--writers", str(WRITERS), "--wait-s", str(SETTLE_S),
            ]  # fmt: skip
            # One JSON line, or a traceback on failure: small enough to hold whole.
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=ETCD_TRIAL_TIMEOUT_S,
                cwd=Path(__file__).resolve().parent.parent,
            )  # fmt: skip
            if done.returncode != 0:
                print(f"etcd failover trial failed: {done.stderr.strip()[-500:]}", flush=True)
                failed += 1
                for index, process in enumerate(members.processes):
                    if process.poll() is not None:
                        members.restart(index)
                continue
            result = json.loads(done.stdout)
            times.append(float(result["ms"]))
            elections.append(int(result["elections"]))
            members.restart(int(result["killed"]))
    peer = f"etcd {etcd_cluster.version(binary)} via aetcd"
    return EtcdFailover(peer, Samples(tuple(times), failed), tuple(elections))


class _Bench:
    def __init__(self, directory: Path, trials: int, load_s: float = LOAD_S) -> None:
        self.directory = directory
        self.trials = trials
        self.load_s = load_s
        self.leader_elections: list[int] = []
        self.cluster: ClusterFile = init_cluster(directory, nodes=3, settings=SETTINGS)
        self.processes = NodeProcesses(self.cluster)
        (self.port,) = free_ports(1)
        self.log = directory / "probes.jsonl"

    async def go(self) -> Measured:
        try:
            for node in self.cluster.node_ids:
                await self.processes.start(node)
            targets = [Target(n.id, n.addresses) for n in self.cluster.nodes]
            transport = client_transport_config(self.cluster)
            async with Poller.open(targets, transport) as poller:
                self.poller = poller
                options = ClientOptions(request_timeout_ms=10_000, attempt_timeout_ms=300)
                async with connect(self.cluster, options=options) as client:
                    self.client = client
                    await self._declare()
                    await self._settled()
                    spurious = await self._steady_load()
                    failover, owner_led = await self._trials(self._failover)
                    before = await self._term()
                    move, _ = await self._trials(self._move)
                    spurious += await self._term() - before
                    leader, _ = await self._trials(self._leader_failover)
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(30):
                    await self.processes.stop_all(timeout_s=10)
                await self.processes.close()
                # (a probe whose node's watchdog has not ended it yet)
                leftovers = await kill_leftovers(self.directory, wait_s=0.5)
        verdict = judge_log(read_log(self.log))
        return Measured(
            failover, move, leader, verdict.double_runs,
            tuple(f.message for f in verdict.findings), owner_led, len(leftovers),
            tuple(self.leader_elections), spurious, self.load_s,
        )  # fmt: skip

    async def _trials(
        self, trial: Callable[[], Awaitable[tuple[float, bool]]]
    ) -> tuple[Samples, int]:
        times, failed, flagged = [], 0, 0
        for _ in range(self.trials):
            try:
                ms, flag = await trial()
            except (ClusterError, trio.TooSlowError):  # a trial that did not finish is counted
                failed += 1
                await self._settled()
                continue
            times.append(ms)
            flagged += flag
        return Samples(tuple(times), failed), flagged

    # -- the trials ----------------------------------------------------------------------

    async def _failover(self) -> tuple[float, bool]:
        owner = (await self._settled()).owner
        led = owner == await self._leader()
        t0 = time.monotonic()
        self.processes.kill(owner, signal.SIGKILL)
        await self._answer(lambda a: a.node != owner)
        ms = (time.monotonic() - t0) * 1000
        await self.processes.wait(owner)
        await self.processes.start(owner)
        return ms, led

    async def _move(self) -> tuple[float, bool]:
        info = await self._settled()
        target = next(n for n in self.cluster.node_ids if n != info.owner)
        t0 = time.monotonic()
        await self.client.write(MoveGroup(GROUP, target, at_ms=_wall_ms()))
        await self._answer(lambda a: a.node == target)
        return (time.monotonic() - t0) * 1000, False

    async def _leader_failover(self) -> tuple[float, bool]:
        await self._settled()
        leader = await self._leader()
        term = await self._term()
        killed_at: list[float] = []
        acked: list[float] = []
        done = trio.Event()

        async def put(key: str) -> None:
            sent = time.monotonic()
            await self.client.put(key, "v")
            if killed_at and sent > killed_at[0] and not done.is_set():
                acked.append(time.monotonic())
                done.set()

        async def writer(index: int) -> None:
            n = 0
            while not done.is_set():
                n += 1
                try:
                    await put(f"bench/failover/{index}/{n}")
                except ClusterError:
                    await trio.sleep(POLL_S)  # refused at once (no leader yet): no spinning

        async def probe(index: int) -> None:
            with contextlib.suppress(ClusterError):  # lost in the failover: a later one tells
                await put(f"bench/failover/probe/{index}")

        with trio.fail_after(SETTLE_S):
            async with trio.open_nursery() as nursery:
                for index in range(WRITERS):
                    nursery.start_soon(writer, index)
                await trio.sleep(0.3)  # the stream is flowing
                killed_at.append(time.monotonic())
                self.processes.kill(leader, signal.SIGKILL)
                probes = trio.CapacityLimiter(MAX_PROBES)
                index = 0
                while not done.is_set():
                    index += 1
                    await probes.acquire_on_behalf_of(index)
                    nursery.start_soon(self._release_after, probes, index, probe)
                    with trio.move_on_after(POLL_S):
                        await done.wait()
                nursery.cancel_scope.cancel()  # the probes still waiting
        await self.processes.wait(leader)
        await self.processes.start(leader)
        await self._settled()
        self.leader_elections.append(await self._term() - term)
        return (acked[0] - killed_at[0]) * 1000, False

    @staticmethod
    async def _release_after(
        limiter: trio.CapacityLimiter, index: int, probe: Callable[[int], Awaitable[None]]
    ) -> None:
        try:
            await probe(index)
        finally:
            limiter.release_on_behalf_of(index)

    async def _steady_load(self) -> int:
        """The elections (how far the highest term rose) while the writers run for
        `load_s` with no node killed: each is a spurious one."""
        term = await self._term()
        with trio.move_on_after(self.load_s):
            async with trio.open_nursery() as nursery:
                for index in range(WRITERS):
                    nursery.start_soon(self._keep_writing, index)
        return await self._term() - term

    async def _keep_writing(self, index: int) -> None:
        n = 0
        while True:
            n += 1
            try:
                await self.client.put(f"bench/load/{index}/{n}", "v")
            except ClusterError:
                await trio.sleep(POLL_S)

    # -- waiting ---------------------------------------------------------------------------

    async def _declare(self) -> None:
        resource = probe_resource(self.port, self.log, self.directory / f"{GROUP}.lock")
        spec = GroupSpec(GROUP, (resource,), failback=Failback.NEVER,
                         failover_threshold=100, failover_period_ms=1_000)  # fmt: skip
        await self.client.write(CreateGroup(spec, online=True, at_ms=_wall_ms()))

    async def _settled(self) -> GroupInfo:
        """Wait until every node runs, serves under one leader, is UP in the service,
        and the group is ONLINE where its probe answers, under that epoch; the group
        then. (A node started again may show UP before it serves: it was never declared
        down. Without the first check a kill could find a majority not there yet.)"""
        with trio.fail_after(SETTLE_S):
            while True:
                for node in self.cluster.node_ids:
                    if not self.processes.alive(node):
                        await self.processes.start(node)
                info = await self._state()
                answer = await ask(self.port)
                if (
                    info is not None and answer is not None
                    and info.state is GroupState.ONLINE
                    and (info.owner, info.epoch) == (answer.node, answer.epoch)
                    and await self._all_up()
                    and await self._one_leader()
                ):  # fmt: skip
                    return info
                await trio.sleep(0.05)

    async def _state(self) -> GroupInfo | None:
        try:
            found = await self.client.read(ListGroups(), timeout_ms=2_000)
        except ClusterError:
            return None
        assert isinstance(found, GroupList), found
        return next((g for g in found.groups if g.spec.name == GROUP), None)

    async def _all_up(self) -> bool:
        try:
            found = await self.client.read(ListNodes(), timeout_ms=2_000)
        except ClusterError:
            return False
        assert isinstance(found, NodeList), found
        up = {n.node for n in found.nodes if n.state is NodeState.UP}
        return up >= set(self.cluster.node_ids)

    async def _one_leader(self) -> bool:
        """Whether every node answers, and all follow the same leader in the same term."""
        statuses = [p.info.status for p in await self.poller.poll(timeout_ms=1_000) if p.info]
        leaders = {status.leader for status in statuses}
        terms = {status.term for status in statuses}
        whole = len(statuses) == len(self.cluster.node_ids)
        return whole and len(leaders) == len(terms) == 1 and 0 not in leaders

    async def _answer(self, wanted: Callable[[Answer], bool]) -> Answer:
        """Poll the port every POLL_S until an answer satisfies `wanted`."""
        with trio.fail_after(SETTLE_S):
            while True:
                answer = await ask(self.port)
                if answer is not None and wanted(answer):
                    return answer
                await trio.sleep(POLL_S)

    async def _term(self) -> int:
        """The highest term any node reports (every node asked; at least one answers)."""
        with trio.fail_after(SETTLE_S):
            while True:
                probes = await self.poller.poll(timeout_ms=1_000)
                terms = [p.info.status.term for p in probes if p.info]
                if terms:
                    return max(terms)
                await trio.sleep(0.05)

    async def _leader(self) -> int:
        with trio.fail_after(SETTLE_S):
            while True:
                probes = await self.poller.poll(timeout_ms=1_000)
                leaders = [p.info for p in probes if p.info and p.info.status.role == "leader"]
                if leaders:
                    return max(leaders, key=lambda i: i.status.term).node_id
                await trio.sleep(0.05)


def _wall_ms() -> int:
    return int(time.time() * 1000)


# -- the table -------------------------------------------------------------------------


def rows(m: Measured, trials: int) -> list[Row]:
    out: list[Row] = []
    leader_name = "leader failover, kill -9 to the next acked put"
    named = (
        ("group failover after kill -9 of its node", m.failover,
         f"{m.owner_led} of the killed owners also led (an election first)"),
        ("planned move, MoveGroup to the answer", m.move, "stop on the owner, then start"),
        (leader_name, m.leader, f"{WRITERS} writers, and a put every {POLL_S * 1000:g} ms "
         f"after the kill; {_elections_note(m.leader_elections)}"),
    )  # fmt: skip
    for name, samples, note in named:
        failed = f"; {samples.failed} of {trials} trials did not finish" if samples.failed else ""
        for q, label in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            out.append(
                Row(f"{name} ({label})", samples.at(q), "ms", higher_is_better=False,
                    note=f"{len(samples.ms)} trials; {note}{failed}")
            )  # fmt: skip
    if m.etcd is not None:
        theirs = m.etcd.leader
        failed = f"; {theirs.failed} trials did not finish" if theirs.failed else ""
        for q, label in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            out.append(
                Row(f"{leader_name} ({label})", m.leader.at(q), "ms", peer=m.etcd.peer,
                    peer_value=theirs.at(q), higher_is_better=False,
                    note=f"etcd: {len(theirs.ms)} trials, defaults (election 1 s), writers "
                    f"and probes on the followers; {_elections_note(m.etcd.elections)}{failed}")
            )  # fmt: skip
    p50 = m.failover.at(0.5)
    for peer, value, note in (
        (PACEMAKER, PACEMAKER_MS, PACEMAKER_NOTE),
        (WSFC, WSFC_MS, WSFC_NOTE),
    ):
        out.append(
            Row("group failover after kill -9 of its node (p50)", p50, "ms", peer=peer,
                peer_value=value, higher_is_better=False, note=note)
        )  # fmt: skip
    out.append(
        Row("double runs (probe lock held by another instance)", m.double_runs, "count",
            higher_is_better=False, failed=m.double_runs > 0 or bool(m.findings),
            note="; ".join(m.findings)[:300] or "from the probes' log")
    )  # fmt: skip
    out.append(
        Row("spurious elections under load (no node killed)", m.spurious, "count",
            higher_is_better=False,
            note=("PASS" if m.spurious == 0 else "FAIL") + f" (target 0): {m.load_s:g} s of "
            f"{WRITERS} writers, and the planned moves")
    )  # fmt: skip
    if m.leftovers:
        out.append(Row("processes left after the nodes stopped", m.leftovers, "count",
                       higher_is_better=False, note="killed by the benchmark"))  # fmt: skip
    measured = {"group failover": m.failover, "planned move": m.move, "leader failover": m.leader}
    for what, _, bound in TARGETS:
        kind, quantile = what.rsplit(" ", 1)
        samples = measured[kind]
        value = samples.at({"p50": 0.5, "p99": 0.99, "max": 1.0}[quantile])
        ok = bool(samples.ms) and value <= bound and not samples.failed
        if kind == "group failover":
            ok = ok and m.double_runs == 0
        out.append(
            Row(f"target: {what} <= {bound / 1000:g} s", value, "ms",
                higher_is_better=False, note=("PASS" if ok else "FAIL") + _target_note(what))
        )  # fmt: skip
    return out


def _elections_note(elections: tuple[int, ...]) -> str:
    if not elections:
        return "elections not counted"
    return f"elections per failover: max {max(elections)}, {sum(elections)} in all"


def _target_note(what: str) -> str:
    return " (and no double run)" if what.startswith("group") else ""
