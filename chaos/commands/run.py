"""`raftcluster chaos run --seed N [--nodes K] [--duration S] [--json] ...`

Runs one seed of the deterministic simulator (docs/simulator.md): real node and client
cores under a seeded mix of faults, every invariant checked at every step, then healing,
convergence and liveness checks, and the linearizability of the clients' history.

Exit status: 0 every invariant held (and the history is linearizable, or could not be
judged in time); 1 a violation (the output says which, where and when); 2 the run could
not be made or broke off with an exception (bad arguments; an exception in the code under
test or in the harness, shown with its traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from chaos.checker import dump_events
from chaos.sim import SimConfig, SimResult, simulate
from chaos.sim.catalog import NEMESES, WORKLOADS, make_nemesis, make_workload
from chaos.sim.nemesis import Nemesis
from chaos.sim.workload import Workload
from raftcluster.cli.output import add_json_flag, emit
from statemachine.errors import ClusterError

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_ERROR = 2
ENGINES = ("raftcluster", "pysyncobj")


def register(chaos_sub: Any) -> None:
    parser: argparse.ArgumentParser = chaos_sub.add_parser(
        "run",
        help="run one seed of the deterministic simulator",
        description=(
            "Run one seed: real node cores under seeded faults, invariants checked at every "
            "step. Exit status: 0 every invariant held, 1 a violation, 2 error."
        ),
    )
    parser.add_argument("--seed", type=int, default=0, help="the seed to run (default 0)")
    parser.add_argument("--nodes", type=int, default=5, help="cluster size (default 5)")
    parser.add_argument(
        "--duration",
        type=float,
        default=60.0,
        metavar="S",
        help="virtual seconds of faults before healing (default 60)",
    )
    parser.add_argument(
        "--heal-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="virtual seconds after healing within which a leader, a committed write and "
        "identical replicas are required (default 30)",
    )
    parser.add_argument(
        "--nemesis",
        default="random",
        help=f"fault schedule(s), comma-separated ({', '.join(sorted(NEMESES))})",
    )
    parser.add_argument(
        "--workload", default="kv", help=f"client workload ({', '.join(sorted(WORKLOADS))})"
    )
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="wall seconds for the linearizability check of the history (0 skips it)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="raftcluster",
        help="the system under test: our own engine, or unmodified pysyncobj nodes "
        "(docs/chaos-pysyncobj.md; needs pysyncobj installed)",
    )
    parser.add_argument("--history", metavar="FILE", help="write the clients' history (JSONL)")
    parser.add_argument("--trace", metavar="FILE", help="write the trace records (JSONL)")
    add_json_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = SimConfig(
            seed=args.seed,
            nodes=args.nodes,
            duration_ms=_ms(args.duration, "--duration"),
            heal_timeout_ms=_ms(args.heal_timeout, "--heal-timeout"),
            keep_trace=args.trace is not None,
        )
        nemesis, workload = make_nemesis(args.nemesis), make_workload(args.workload)
    except (ClusterError, ValueError) as e:
        return _fail(args, "usage", e)
    # Torn tails are expected here by the hundred: the counts report them, not the log.
    logging.getLogger("raftcluster.storage").setLevel(logging.ERROR)
    started = time.perf_counter()
    try:
        result = run_engine(args.engine, config, nemesis, workload, args.check_timeout or None)
    except (ClusterError, ImportError) as e:
        return _fail(args, "usage", e)
    elapsed = time.perf_counter() - started
    try:
        _write_files(args, result)
    except OSError as e:
        return _fail(args, "output", e)
    data = result.to_json()
    data["replay"] = replay_command(args)
    data["wall"] = {"elapsed_s": round(elapsed, 3)}  # the only field that differs per run
    emit(args, data, human)
    return {"ok": EXIT_OK, "violation": EXIT_VIOLATION}.get(result.verdict, EXIT_ERROR)


def run_engine(
    engine: str,
    config: SimConfig,
    nemesis: Nemesis,
    workload: Workload,
    check_timeout_s: float | None,
) -> SimResult:
    """One seed on `engine`: ours, or unmodified pysyncobj nodes (docs/chaos-pysyncobj.md;
    imported only when asked for, as pysyncobj is not a dependency of raftcluster)."""
    if engine == "pysyncobj":
        try:
            from chaos.sim.pysyncobj_engine import simulate_pysyncobj
        except ImportError as e:
            raise ImportError(f"--engine pysyncobj needs pysyncobj installed ({e})") from e
        return simulate_pysyncobj(config, nemesis, workload, check_timeout_s=check_timeout_s)
    return simulate(config, nemesis, workload, check_timeout_s=check_timeout_s)


def _ms(seconds: float, flag: str) -> int:
    if not 0 <= seconds <= 10**7:
        raise ValueError(f"{flag} must be between 0 and 10^7 seconds")
    return round(seconds * 1000)


def replay_command(args: argparse.Namespace) -> str:
    parts = [
        "raftcluster chaos run",
        f"--seed {args.seed}",
        f"--nodes {args.nodes}",
        f"--duration {args.duration:g}",
    ]
    if args.heal_timeout != 30.0:
        parts.append(f"--heal-timeout {args.heal_timeout:g}")
    if args.nemesis != "random":
        parts.append(f"--nemesis {args.nemesis}")
    if args.workload != "kv":
        parts.append(f"--workload {args.workload}")
    if getattr(args, "engine", "raftcluster") != "raftcluster":
        parts.append(f"--engine {args.engine}")
    return " ".join(parts)


def _write_files(args: argparse.Namespace, result: SimResult) -> None:
    if args.history:
        with open(args.history, "w", encoding="utf-8") as out:
            out.writelines(dump_events(result.history))
    if args.trace:
        with Path(args.trace).open("w", encoding="utf-8") as out:
            for record in result.trace:
                out.write(json.dumps(record, separators=(",", ":"), default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fail(args: argparse.Namespace, kind: str, error: Exception) -> int:
    if args.json:
        emit(args, {"verdict": None, "error": {"kind": kind, "message": str(error)}}, str)
    print(f"raftcluster chaos run: error: {error}", file=sys.stderr)
    return EXIT_ERROR


def human(data: dict[str, Any]) -> str:
    """The result as people read it."""
    counts, timings = data["counts"], data["timings"]
    verdict = data["verdict"].upper()
    lines = [
        f"seed {data['seed']}: {verdict} ({data['nodes']} nodes, nemesis {data['nemesis']}, "
        f"workload {data['workload']}; {data['end_ms'] / 1000:g} virtual s in "
        f"{data['wall']['elapsed_s']:g} s)",
    ]
    violation = data["violation"]
    if violation is not None:
        lines.append(
            f"  {violation['invariant']}: {violation['message']}\n"
            f"  at step {violation['step']}, t={violation['time_ms']} ms, "
            f"nodes {violation['nodes']}"
        )
    for kind, count in (violation or {}).get("findings", {}).items():
        first = violation["first"][kind]
        lines.append(f"  {kind} x{count}; first at t={first['time_ms']} ms: {first['message']}")
    error = data["error"]
    if error is not None:
        lines.append(
            f"  {error['type']}: {error['message']}\n  at step {error['step']}, "
            f"t={error['time_ms']} ms\n" + error["traceback"].rstrip()
        )
    lin = data["linearizability"]
    if lin is not None:
        reason = f" ({lin['reason']})" if lin["reason"] else ""
        lines.append(f"  linearizable: {lin['verdict']} ({lin['operations']} operations){reason}")
    lines += [
        f"  trace {data['trace_hash']} ({data['trace_records']} records, {data['steps']} steps)",
        f"  elections {counts['elections']} (leaders {counts['leaders']}), entries committed "
        f"{counts['committed_entries']} (commands {counts['proposals_committed']}), writes "
        f"acknowledged {counts['acknowledged_writes']}",
        f"  client operations: {_pairs(counts['operations'])}",
        f"  faults: {_pairs(counts['faults']) or 'none'}; crashes {counts['crashes']}",
        f"  disk: {_pairs(counts['disk'])}",
        f"  snapshots: taken {counts['snapshots_taken']}, "
        f"installed {counts['snapshots_installed']}",
        f"  messages: {_pairs(counts['network'])}",
    ]
    if timings["healed_at_ms"] is not None:
        lines.append(
            f"  after healing: leader in {_ms_text(timings['leader_after_heal_ms'])}, write "
            f"committed in {_ms_text(timings['probe_committed_after_heal_ms'])}, converged in "
            f"{_ms_text(timings['converged_after_heal_ms'])}"
        )
    lines.append(f"  replay: {data['replay']}")
    return "\n".join(lines)


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _ms_text(ms: int | None) -> str:
    return "-" if ms is None else f"{ms} ms"
