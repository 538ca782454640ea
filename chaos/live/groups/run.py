"""One live run of the cluster service: `observe_groups(config, directory)` starts the
cluster (with the `[groups]` times of `chaos.live.config.GROUP_SETTINGS`), declares the
four probe groups (`declare.live_groups`), waits until each answers on its port from the
node the state says owns it, runs the nemesis for the duration, heals, waits again
(the settle), stops the nodes, and returns what it saw (`GroupsObservations`), with the
probes' log. `chaos.live.groups.record` turns it into verdicts and a report record.

Structure (one trio nursery per phase, so nothing outlives the run):

    LiveCluster.running            node processes; always stopped and reaped on the way out
      declare, wait online         CreateGroup(online=True) x 4, every group answers
      monitor                      polls every node's role, for the report's rows
      faulty phase                 the nemesis (partition, kill -9, pause...)
      healing, settle              every fault healed; every group back where the state says
    leftovers                      any process still naming the run's directory is killed
                                   (by pid) and named in the notes
    the probes' log                read once every process is gone
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import attrs
import trio

import raftcluster
from chaos.live.cluster import LiveCluster, leader_of
from chaos.live.config import LiveConfig
from chaos.live.groups.declare import LIVE_GROUP_NAMES, live_groups
from chaos.live.groups.judge import Answer, Finding, LogRecord, judge_back, read_log
from chaos.live.nemesis import Nemesis
from chaos.live.run import follow_roles
from chaos.live.schedule import plan
from chaos.live.timeline import Timeline
from chaos.report import Fault, Interval
from raftcluster.client.api import Client
from raftcluster.client.connect import ClientOptions
from raftcluster.config.init import free_ports
from raftcluster.transport.scope import single
from statemachine.errors import ClusterError
from statemachine.groups.messages import CreateGroup, GroupList, ListGroups

POLL_EVERY_S = 0.2
ASK_TIMEOUT_S = 0.5  # a probe answers at once; a port nobody holds refuses at once
MAX_ANSWER_BYTES = 256  # "group node epoch pid\n"
ONLINE_TIMEOUT_MS = 60_000  # the groups' first start, on a loaded machine
REQUEST_TIMEOUT_MS = 5_000
LEFTOVER_WAIT_S = 2.0  # a watchdog may still be ending the probes of a killed node


class GroupsNotOnline(ClusterError):
    """The declared groups did not all come online before the faults began."""


@attrs.frozen
class GroupsObservations:
    """Everything a groups run saw. Times are milliseconds since time 0 (when every
    group first answered); `mono0_ns` is time 0 on CLOCK_MONOTONIC, the probes' clock."""

    config: LiveConfig
    groups: tuple[str, ...]
    ports: dict[str, int]
    records: tuple[LogRecord, ...]  # the probes' log, in the order written
    not_back: tuple[Finding, ...]  # after healing, at the settle deadline (empty: all back)
    back_after_heal_ms: float | None  # every group back this long after healing
    answers: dict[str, Answer | None]  # what each port answered last
    faults: tuple[Fault, ...]
    intervals: tuple[Interval, ...]
    counts: dict[str, int]
    notes: tuple[str, ...]
    healed_ms: float
    end_ms: float
    mono0_ns: int
    pids: dict[int, tuple[int, ...]]
    nodes: tuple[int, ...]
    trace: tuple[str, ...]
    leftovers: tuple[int, ...]  # pids still alive after the nodes stopped (then killed)
    online_after_ms: float  # from declaring the groups to every one answering


async def observe_groups(config: LiveConfig, directory: Path) -> GroupsObservations:
    """Run it. `directory` receives the cluster and the probes' log and lock files and
    is left in place. Cancellation (Ctrl-C): every node process is stopped and reaped,
    and leftover processes killed, before the cancellation goes on."""
    directory.mkdir(parents=True, exist_ok=True)
    # Distinct ports the kernel hands out now (the probes bind them later; another process
    # could take one in between, which would show as a group that never answers).
    ports = dict(zip(LIVE_GROUP_NAMES, free_ports(len(LIVE_GROUP_NAMES)), strict=True))
    try:
        try:
            async with LiveCluster.running(directory, config) as cluster:
                seen = await _GroupsRun(config, cluster, directory, ports).go()
        finally:
            with trio.CancelScope(shield=True):
                leftovers = await kill_leftovers(directory)
    except BaseExceptionGroup as group:
        raise single(group) from None
    notes = seen.notes
    if leftovers:
        notes = (*notes, f"processes still alive after the nodes stopped (killed): {leftovers}")
    records = read_log(directory / "probes.jsonl")
    return attrs.evolve(seen, records=records, leftovers=leftovers, notes=notes)


class _GroupsRun:
    def __init__(
        self, config: LiveConfig, cluster: LiveCluster, directory: Path, ports: dict[str, int]
    ) -> None:
        self.config = config
        self.cluster = cluster
        self.directory = directory
        self.ports = ports
        self.specs = live_groups(cluster.nodes, ports, directory)
        self.rng = random.Random(config.seed)
        self.start = trio.current_time()
        self.mono0_ns = time.monotonic_ns()
        self.timeline = Timeline(cluster.nodes)
        self.nemesis = Nemesis(cluster, self.now_ms, self.timeline)
        self.terms: set[int] = set()
        self.answers: dict[str, Answer | None] = {}

    def now_ms(self) -> float:
        return round((trio.current_time() - self.start) * 1000, 3)

    async def go(self) -> GroupsObservations:
        config = self.config
        await _wait_leader(self.cluster, config.heal_timeout_ms)
        options = ClientOptions(request_timeout_ms=REQUEST_TIMEOUT_MS)
        async with raftcluster.connect(self.cluster.cluster, options=options) as client:
            declared = trio.current_time()
            for spec in self.specs:
                at_ms = int(time.time() * 1000)
                await client.write(CreateGroup(spec, online=True, at_ms=at_ms))
            not_back = await self._settle(client, ONLINE_TIMEOUT_MS)
            if not_back:
                raise GroupsNotOnline(
                    f"within {ONLINE_TIMEOUT_MS} ms of being declared: "
                    + "; ".join(f.message for f in not_back)
                )
            online_after_ms = round((trio.current_time() - declared) * 1000, 3)
            self.start = trio.current_time()  # time 0: every group answers
            self.mono0_ns = time.monotonic_ns()
            steps = plan(
                random.Random(self.rng.getrandbits(64)), config.nemeses, self.cluster.nodes,
                duration_ms=config.duration_ms, warmup_ms=config.warmup_ms,
            )  # fmt: skip
            async with trio.open_nursery() as outer:
                outer.start_soon(self._monitor)
                await self.nemesis.run(steps, self.start, config.duration_ms)
                await self.nemesis.heal_all()
                healed = self.now_ms()
                not_back = await self._settle(client, config.heal_timeout_ms)
                back_ms = None if not_back else round(self.now_ms() - healed, 3)
                outer.cancel_scope.cancel()
        end = self.now_ms()
        counts: Counter[str] = Counter(self.nemesis.counts)
        counts["leaders.terms"] = len(self.terms)
        return GroupsObservations(
            config, LIVE_GROUP_NAMES, dict(self.ports), (), not_back, back_ms,
            dict(self.answers), tuple(self.nemesis.faults), self.timeline.intervals(end),
            dict(counts), tuple(self.nemesis.notes), healed, end, self.mono0_ns,
            {n: tuple(p) for n, p in self.cluster.pids.items()}, self.cluster.nodes,
            tuple(json.dumps(t, sort_keys=True) + "\n" for t in self.nemesis.trace),
            (), online_after_ms,
        )  # fmt: skip

    async def _settle(self, client: Client, timeout_ms: int) -> tuple[Finding, ...]:
        """Ask every group's port, then the state (linearizable), until they agree for
        every group or `timeout_ms` passed; what is still wrong then (empty: all back)."""
        found: tuple[Finding, ...] = ()
        with trio.move_on_after(timeout_ms / 1000):
            while True:
                for name in LIVE_GROUP_NAMES:
                    self.answers[name] = await ask(self.ports[name])
                try:
                    state = await client.read(ListGroups(), timeout_ms=REQUEST_TIMEOUT_MS)
                except ClusterError as e:
                    found = (Finding("not-back", "*", f"the state could not be read: {e}"),)
                else:
                    assert isinstance(state, GroupList), state
                    found = judge_back(LIVE_GROUP_NAMES, self.answers, state.groups)
                    if not found:
                        return ()
                await trio.sleep(POLL_EVERY_S)
        return found

    async def _monitor(self) -> None:
        await follow_roles(self.cluster, self.timeline, self.terms, self.now_ms)


async def ask(port: int) -> Answer | None:
    """What the probe on `port` answers (None: nothing answered within ASK_TIMEOUT_S, or
    not a probe's line). Cancellation leaves nothing behind."""
    data = b""
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            return None
        async with stream:
            try:
                while b"\n" not in data and len(data) < MAX_ANSWER_BYTES:
                    chunk = await stream.receive_some(MAX_ANSWER_BYTES - len(data))
                    if not chunk:
                        break
                    data += chunk
            except (OSError, trio.BrokenResourceError):
                return None
    try:
        return Answer.parse(data) if data.endswith(b"\n") else None
    except ClusterError:
        return None


async def _wait_leader(cluster: LiveCluster, timeout_ms: int) -> None:
    with trio.move_on_after(timeout_ms / 1000):
        while not leader_of(await cluster.poll()):
            await trio.sleep(POLL_EVERY_S)
        return
    raise ClusterError(f"no leader within {timeout_ms} ms of starting the nodes")


async def kill_leftovers(directory: Path, wait_s: float = LEFTOVER_WAIT_S) -> tuple[int, ...]:
    """Processes (other than this one) whose command line names `directory`, still
    alive `wait_s` after the nodes stopped: each is killed by its pid (SIGKILL). Only
    this run starts processes naming its own directory. Cancellation: nothing is killed."""
    deadline = trio.current_time() + wait_s
    while True:
        found = processes_naming(directory)
        if not found or trio.current_time() >= deadline:
            break
        await trio.sleep(0.1)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return found


def processes_naming(directory: Path) -> tuple[int, ...]:
    """Live (not zombie) processes with an argument under `directory`, other than this
    one and its ancestors (the command that started the run may name it too)."""
    prefix = str(directory).encode()
    found = []
    mine = _ancestors()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and any(a == prefix or a.startswith(prefix + b"/") for a in args):
            found.append(int(entry.name))
    return tuple(sorted(found))


def _ancestors() -> set[int]:
    """This process and every ancestor of it."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return out
