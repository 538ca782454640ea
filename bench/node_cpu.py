"""CPU per operation on a real leader: what a change to the hot path did, on a noisy machine.

    python -m bench.node_cpu [--ops 2000] [--workload put|get] [--rounds 1] [--inflight 1]
                             [--profile DIR | --steps DIR] [--top 25]

Starts three local node processes from `raftcluster init` defaults (fsync on), one
`raftcluster.connect` client in this process, warms up (a session, the connections,
50 keys), then runs `--ops` operations of `--workload` (puts of 100-byte values, or
linearizable gets of those keys) `--rounds` times, one after another (or `--inflight`
at a time, from as many tasks sharing the client). For each round it prints
the leader's (and its main thread's: the rest is the persist's worker thread) and the
followers' CPU time per operation (user + system, from /proc/<pid>/stat, in µs) and
the client's, with the wall time per operation. CPU time
moves far less than throughput when other work shares the machine, so it shows what a
change to the node's code did.

With `--profile DIR` every node runs under cProfile (bench/profiled_node.py: the main
thread's CPU time, so the fsync thread's is not in it), the leader's profile covering
the rounds only; its `--top` entries by total time and by cumulative time are printed,
with the calls per operation, and (for a node) its trio task steps per operation by
task name and its event loop's passes; the raw profile stays in DIR (`node-<pid>.prof`,
readable with `pstats`; the step counts in `node-<pid>.prof.steps.json`), and the
profile's own time and calls per operation summed by layer (`LAYERS`: the Raft core,
the replica and cycle, the node's driver and runtime, the transport, trio...). Profiling
inflates small calls: compare profiles with profiles, and CPU figures without `--profile`.

With `--steps DIR` the nodes count their task steps the same way but run without the
profiler, at their real speed (a profiled node is several times slower, so its timers
fire between operations where they would not): the CPU figures stay those of the
unprofiled node, and the steps per operation are the ones it really takes.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

import trio

from bench.bench_node import VALUE, _running_cluster
from bench.profiled_node import StepCounter
from raftcluster.client.probe import Poller, Target
from raftcluster.config import client_transport_config
from raftcluster.node.admin import NodeInfo

WARM_KEYS = 50  # keys written before the rounds (what the gets read)


def _cpu_s(pid: int, thread: int | None = None) -> float:
    """CPU seconds (user + system) process `pid` (or only its thread `thread`: the main
    thread's id is the pid) has used so far."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrapper(profile_dir: Path, *, steps_only: bool = False) -> str:
    """An executable that runs its arguments (`-m raftcluster node run ...`) under
    bench/profiled_node.py, which writes `node-<pid>.prof` into `profile_dir` (with
    `steps_only`, only its `.steps.json`)."""
    script = profile_dir / "python-profiled"
    here = Path(__file__).resolve().parent.parent
    flag = "--steps-only " if steps_only else ""
    script.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="{here}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" '
        f'-m bench.profiled_node {flag}"{profile_dir}/node-$$.prof" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


async def _leader(poller: Poller) -> tuple[NodeInfo, list[int]]:
    """The leader's `NodeInfo` and the other nodes' pids."""
    probes = await poller.poll(timeout_ms=2_000)
    leader = [p.info for p in probes if p.info and p.info.status.role == "leader"]
    others = [p.info.pid for p in probes if p.info and p.info.status.role != "leader"]
    assert len(leader) == 1, f"no single leader: {probes}"
    return leader[0], others


def _counts(info: NodeInfo) -> tuple[int, int, int, int]:
    """A node's cycles, syncs, raft messages sent and received so far."""
    peers = info.transport.peers
    sent = sum(p.raft_sent for p in peers)
    received = sum(p.raft_received for p in peers)
    return info.cycles, info.syncs, sent, received


async def _run_ops(
    client: Any, workload: str, round_: int, numbers: range, keys: list[bytes]
) -> None:
    """One worker's operations of a round, one after another."""
    for i in numbers:
        if workload == "put":
            await client.put(b"bench/cpu/%d/%08d" % (round_, i), VALUE)
        else:
            await client.get(keys[i % WARM_KEYS])


async def measure(
    ops: int,
    workload: str,
    rounds: int,
    profile_dir: Path | None,
    profile_node: str = "leader",
    *,
    steps_only: bool = False,
    inflight: int = 1,
) -> tuple[int, list[str]]:
    """Run the rounds (`inflight` operations at a time); the profiled node's pid and one
    printed line per round."""
    python = (
        _wrapper(profile_dir, steps_only=steps_only) if profile_dir is not None else sys.executable
    )
    lines = []
    # (30 s to stop: a profiled node writes its profile on the way out)
    running = _running_cluster("bench-node-cpu-", python=python, stop_timeout_s=30)
    async with running as (processes, client):
        cluster = processes.cluster
        targets = [Target(n.id, n.addresses) for n in cluster.nodes]
        async with Poller.open(targets, client_transport_config(cluster)) as poller:
            keys = [b"bench/warm/%08d" % i for i in range(WARM_KEYS)]
            for key in keys:
                await client.put(key, VALUE)
            info, others = await _leader(poller)
            leader = info.pid
            profiled = {"leader": leader, "follower": others[0]}.get(profile_node, os.getpid())
            in_process = cProfile.Profile(time.thread_time)
            counter = StepCounter()  # the client's task steps (a node counts its own)
            if profile_dir is not None and profiled == os.getpid():
                trio.lowlevel.add_instrument(counter)
                if not steps_only:
                    in_process.enable()
            elif profile_dir is not None:
                os.kill(profiled, signal.SIGUSR1)  # the rounds only (profiled_node.py)
            for r in range(rounds):
                counts = _counts((await _leader(poller))[0])
                before = _cpu_s(leader), [_cpu_s(p) for p in others], time.process_time()
                main_before = _cpu_s(leader, thread=leader)
                t0 = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    for worker in range(inflight):
                        nursery.start_soon(
                            _run_ops, client, workload, r, range(worker, ops, inflight), keys
                        )
                wall = time.perf_counter() - t0
                lead_us = (_cpu_s(leader) - before[0]) * 1e6 / ops
                main_us = (_cpu_s(leader, thread=leader) - main_before) * 1e6 / ops
                follow = [
                    (_cpu_s(p) - b) * 1e6 / ops for p, b in zip(others, before[1], strict=True)
                ]
                client_us = (time.process_time() - before[2]) * 1e6 / ops
                after = _counts((await _leader(poller))[0])
                cycles, syncs, sent, received = (
                    (b - a) / ops for a, b in zip(counts, after, strict=True)
                )
                how = "sequential" if inflight == 1 else f"{inflight} in flight"
                lines.append(
                    f"round {r + 1}: {ops} {workload}s {how}, {ops / wall:.0f}/s; CPU per op: "
                    f"leader {lead_us:.0f} us ({main_us:.0f} in its main thread), followers "
                    f"{', '.join(f'{f:.0f}' for f in follow)} us, client {client_us:.0f} us; "
                    f"per op on the leader: {cycles:.2f} cycles, {syncs:.2f} syncs, "
                    f"{sent:.2f} raft messages sent, {received:.2f} received"
                )
                print(lines[-1], flush=True)
            if profile_dir is not None and profiled == os.getpid():
                trio.lowlevel.remove_instrument(counter)
                path = profile_dir / f"node-{profiled}.prof"
                if not steps_only:
                    in_process.disable()
                    in_process.dump_stats(str(path))
                counts = {"steps": dict(counter.steps), "loop_passes": counter.loop_passes}
                Path(f"{path}.steps.json").write_text(json.dumps(counts))
            elif profile_dir is not None:
                os.kill(profiled, signal.SIGUSR2)
                await trio.sleep(1)  # it writes the profile
    return profiled, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.node_cpu")
    parser.add_argument("--ops", type=int, default=2_000)
    parser.add_argument("--workload", choices=("put", "get"), default="put")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--inflight", type=int, default=1, help="operations at a time")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--profile", type=Path, metavar="DIR")
    where.add_argument("--steps", type=Path, metavar="DIR", help="count task steps, unprofiled")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--profile-node", choices=("leader", "follower", "client"), default="leader"
    )
    args = parser.parse_args(argv)
    out_dir = args.profile if args.profile is not None else args.steps
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    profiled, _ = trio.run(
        functools.partial(
            measure,
            args.ops,
            args.workload,
            args.rounds,
            out_dir,
            args.profile_node,
            steps_only=args.steps is not None,
            inflight=args.inflight,
        )
    )
    ops = args.ops * args.rounds
    if args.steps is not None:
        _print_steps(args.steps / f"node-{profiled}.prof", ops)
    if args.profile is not None:
        path = args.profile / f"node-{profiled}.prof"
        stats = pstats.Stats(str(path))
        ops = args.ops * args.rounds
        total_s = stats.total_tt  # type: ignore[attr-defined]
        calls = stats.total_calls  # type: ignore[attr-defined]
        print(f"== the {args.profile_node}'s profile ({path}): {total_s * 1e6 / ops:.0f} us "
              f"of profiled CPU and {calls / ops:.0f} function calls per operation ==")  # fmt: skip
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        _print_layers(stats, ops)
        _print_steps(path, ops)
    return 0


# The layers a profile's own time is summed into, first match by path; the rest is
# "python" (the interpreter's built-ins and the standard library).
LAYERS = (
    ("raft core", "raftcluster/raft/"),
    ("replica and cycle", "raftcluster/node/replica.py"),
    ("replica and cycle", "raftcluster/node/cycle.py"),
    ("node driver and runtime", "raftcluster/node/"),
    ("transport", "raftcluster/transport/"),
    ("client", "raftcluster/client/"),
    ("storage", "raftcluster/storage/"),
    ("cluster service", "raftcluster/groups/"),
    ("codec", "statemachine/codec"),
    ("state machine", "statemachine/"),
    ("trio", "/trio/"),
    ("bench", "/bench/"),
)


def layer_of(filename: str) -> str:
    """The layer of `LAYERS` a profiled function's file belongs to ("python": none)."""
    path = filename.replace("\\", "/")
    return next((name for name, part in LAYERS if part in path), "python")


def _print_layers(stats: pstats.Stats, ops: int) -> None:
    """The profile's own time and calls per operation, summed by layer (`LAYERS`): where
    a request's CPU goes, by the code that spends it. A built-in or standard library
    function's time and calls count for its callers' layers, in the shares the profile
    gives each caller ("python" only when its caller is one too)."""
    time_s: dict[str, float] = {}
    calls: dict[str, float] = {}

    def add(layer: str, spent_s: float, count: float) -> None:
        time_s[layer] = time_s.get(layer, 0.0) + spent_s
        calls[layer] = calls.get(layer, 0.0) + count

    for (filename, _, _), row in stats.stats.items():  # type: ignore[attr-defined]
        layer = layer_of(filename)
        if layer != "python":
            add(layer, row[2], row[1])
            continue
        for (caller_file, _, _), by_caller in row[4].items():
            add(layer_of(caller_file), by_caller[2], by_caller[1])
    total_s = sum(time_s.values()) or 1.0
    print("== own time and calls per operation, by layer ==")
    for layer, spent_s in sorted(time_s.items(), key=lambda kv: -kv[1]):
        print(f"{100 * spent_s / total_s:5.1f}%  {spent_s * 1e6 / ops:7.0f} us  "
              f"{calls[layer] / ops:7.1f} calls  {layer}")  # fmt: skip


def _print_steps(path: Path, ops: int) -> None:
    """The task steps per operation by task, from `path`'s `.steps.json` (a node's, or
    the client's: this process's, counted over the rounds, the probes between them too)."""
    steps_path = Path(f"{path}.steps.json")
    if steps_path.exists():
        counts = json.loads(steps_path.read_text())
        steps = counts["steps"]
        print(f"== task steps per operation: {sum(steps.values()) / ops:.2f}, "
              f"event loop passes {counts['loop_passes'] / ops:.2f} ==")  # fmt: skip
        for name, n in sorted(steps.items(), key=lambda kv: -kv[1]):
            print(f"{n / ops:8.2f}  {name}")


if __name__ == "__main__":
    sys.exit(main())
