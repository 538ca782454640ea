"""`raftcluster chaos live [--nodes 3] [--duration 30] [--seed N] [--nemesis partition,kill]
[--workload register|kv|groups] [--clients 4] [--report DIR] [--json] [--keep DIR]`

Runs a real cluster on 127.0.0.1 (one process per node) under seeded faults, records the
clients' history with real times and checks it (docs/chaos-live.md). With `--workload
groups` there are no clients: the cluster service runs four probe groups, and the run is
judged on double runs, epochs and every group coming back (chaos.live.groups).

Exit status: 0 every check passed (or the linearizability check ran out of time: the
output says `unknown`); 1 a violation; 2 the run could not be made or broke off; 3 the
run was vacuous: no check failed, but some kind of operation never succeeded under the
faults or after the last one healed (`--allow-vacuous` exits 0 for it).
Every node process is stopped before the command returns, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio

from chaos.checker import dump_events
from chaos.live import NEMESES, WORKLOADS, LiveConfig, judge
from chaos.live.groups.record import GroupsJudgement, failover_summary, judge_groups
from chaos.live.groups.run import GroupsObservations, observe_groups
from chaos.live.judge import Judgement
from chaos.live.run import Observations, observe_until_interrupted, until_interrupted
from chaos.report import Record, RunVerdict, write_report
from raftcluster.cli.output import add_json_flag, emit
from statemachine.errors import ClusterError

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_ERROR = 2
EXIT_VACUOUS = 3  # no check failed, but the run proved nothing (chaos.checker.stats)
EXIT_STATUS = {
    RunVerdict.OK: EXIT_OK,
    RunVerdict.UNKNOWN: EXIT_OK,
    RunVerdict.VIOLATION: 1,
    RunVerdict.VACUOUS: EXIT_VACUOUS,
}


def register(chaos_sub: Any) -> None:
    parser: argparse.ArgumentParser = chaos_sub.add_parser(
        "live",
        help="run a real cluster on 127.0.0.1 under faults and check its history",
        description=(
            "Start real node processes on 127.0.0.1, run clients under seeded faults "
            "(partitions, loss, delay through the transport's fault layer; kill -9), heal, "
            "then check linearizability, liveness and convergence. Exit status: 0 ok, "
            "1 violation, 2 error."
        ),
    )
    parser.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    parser.add_argument(
        "--duration", type=float, default=30.0, metavar="S",
        help="seconds of clients and faults before healing (default 30)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="fixes the choices (default 0)")
    parser.add_argument(
        "--nemesis", default="partition,kill",
        help=f"faults, comma-separated ({', '.join(NEMESES)}; default partition,kill)",
    )  # fmt: skip
    parser.add_argument("--workload", default="register", choices=WORKLOADS)
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument(
        "--check-timeout", type=float, default=30.0, metavar="S",
        help="wall seconds for the linearizability check (default 30; past it: unknown)",
    )  # fmt: skip
    parser.add_argument(
        "--stale-reads", action="store_true",
        help="a planted bug: each read asks a random node for its own copy (not "
        "linearizable); a run with partitions should then end in a violation",
    )  # fmt: skip
    parser.add_argument("--report", metavar="DIR", help="write the report directory here")
    parser.add_argument(
        "--allow-vacuous",
        action="store_true",
        help="exit 0 for a vacuous run (some kind of operation never succeeded under the "
        "faults or after the last one healed: the run proved nothing)",
    )
    parser.add_argument(
        "--keep", metavar="DIR",
        help="put the cluster (config, data, node logs) here and keep it (default: a "
        "temporary directory, removed after the run)",
    )  # fmt: skip
    add_json_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = LiveConfig(
            nodes=args.nodes,
            duration_ms=round(args.duration * 1000),
            seed=args.seed,
            nemeses=tuple(n for n in args.nemesis.split(",") if n),
            workload=args.workload,
            clients=args.clients,
            check_timeout_s=args.check_timeout,
            stale_reads=args.stale_reads,
        )
    except (ClusterError, ValueError, TypeError) as e:
        return _fail(args, "usage", e)
    if config.workload == "groups":
        return _run_groups(args, config)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    try:
        with _cluster_directory(args.keep) as directory:
            observed = trio.run(observe_until_interrupted, config, directory)
    except (ClusterError, OSError) as e:
        return _fail(args, "run", e)
    except Exception as e:  # noqa: BLE001 - the command's boundary: shown, then exit 2
        # (a bug in the harness must not exit 1, which means "violation").
        traceback.print_exc()
        return _fail(args, "internal", e)
    wall = {"started": started, "wall_s": round(time.perf_counter() - clock, 3)}
    judgement = judge(observed, replay_command(args), wall)
    try:
        if args.report:
            history = list(dump_events(observed.events))
            write_report(args.report, judgement.record, history, observed.trace)
    except (ClusterError, OSError) as e:
        return _fail(args, "report", e)
    emit(args, summary(observed, judgement, args.report), human)
    if judgement.verdict is RunVerdict.VACUOUS and args.allow_vacuous:
        return EXIT_OK
    return EXIT_STATUS[judgement.verdict]


def _run_groups(args: argparse.Namespace, config: LiveConfig) -> int:
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    try:
        with _cluster_directory(args.keep) as directory:
            observed = trio.run(until_interrupted, observe_groups, config, directory)
    except (ClusterError, OSError) as e:
        return _fail(args, "run", e)
    except Exception as e:  # noqa: BLE001 - the command's boundary: shown, then exit 2
        traceback.print_exc()
        return _fail(args, "internal", e)
    wall = {"started": started, "wall_s": round(time.perf_counter() - clock, 3)}
    judgement = judge_groups(observed, replay_command(args), wall)
    try:
        if args.report:
            write_report(args.report, judgement.record, [], observed.trace)
    except (ClusterError, OSError) as e:
        return _fail(args, "report", e)
    emit(args, groups_summary(observed, judgement, args.report), groups_human)
    return EXIT_STATUS[judgement.verdict]


def groups_summary(
    observed: GroupsObservations, judgement: GroupsJudgement, report: str | None
) -> dict[str, Any]:
    """The groups run's answer (`--json` prints it as is)."""
    record = judgement.record
    return {
        **_verdict_fields(record),
        "double_runs": judgement.log.double_runs,
        "failovers_ms": [
            {"group": f.group, "from": f.from_node, "to": f.to_node, "ms": f.ms, "since": f.since}
            for f in judgement.failovers
        ],
        "failover_summary": failover_summary(judgement.failovers),
        "after_heal_ms": {"groups_back": observed.back_after_heal_ms},
        "online_after_ms": observed.online_after_ms,
        "groups": {
            name: None if a is None else {"node": a.node, "epoch": a.epoch, "pid": a.pid}
            for name, a in observed.answers.items()
        },
        "leftovers": list(observed.leftovers),
        **_run_fields(record, observed.pids, report),
    }


def groups_human(data: dict[str, Any]) -> str:
    counts = data["counts"]
    faults = ", ".join(f"{k[7:]} {v}" for k, v in sorted(counts.items()) if k.startswith("faults."))
    where = ", ".join(
        f"{g} on node {a['node']} (epoch {a['epoch']})" if a else f"{g} silent"
        for g, a in data["groups"].items()
    )
    lines = [
        f"{data['verdict'].upper()}: " + ", ".join(f"{k} {v}" for k, v in data["checks"].items()),
        f"  double runs: {data['double_runs']}; starts: {counts.get('groups.starts', 0)}",
        f"  failovers seen (ms): {data['failover_summary']}",
        f"  faults: {faults or 'none'}; leaders seen in {counts.get('leaders.terms', 0)} terms",
        f"  after healing: every group back in {_ms(data['after_heal_ms']['groups_back'])}",
        f"  groups: {where}",
        *(f"  violation: {v}" for v in data["violations"]),
        *(f"  fault: {f}" for f in data["faults"]),
        *(f"  note: {n}" for n in data["notes"] if not n.startswith("run: ")),
        f"  replay (same choices, not the same interleaving): {data['replay']}",
    ]
    if data["report"]:
        lines.append(f"  report: {data['report']}/report.html")
    return "\n".join(lines)


@contextmanager
def _cluster_directory(keep: str | None) -> Iterator[Path]:
    if keep is not None:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="raftcluster-live-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def replay_command(args: argparse.Namespace) -> str:
    return shlex.join([
        "raftcluster", "chaos", "live", "--seed", str(args.seed), "--nodes", str(args.nodes),
        "--duration", f"{args.duration:g}", "--nemesis", args.nemesis,
        "--workload", args.workload, "--clients", str(args.clients),
        *(["--stale-reads"] if args.stale_reads else []),
    ])  # fmt: skip


def summary(observed: Observations, judgement: Judgement, report: str | None) -> dict[str, Any]:
    """The command's answer (`--json` prints it as is)."""
    record = judgement.record
    return {
        **_verdict_fields(record),
        "after_heal_ms": {
            "write_committed": observed.write_after_heal_ms,
            "converged": observed.converged_after_heal_ms,
        },
        "operations": len(record.operations),
        **_run_fields(record, observed.pids, report),
    }


def _verdict_fields(record: Record) -> dict[str, Any]:
    """What every live run's answer starts with: the verdict and what led to it."""
    return {
        "verdict": record.run.verdict.value,
        "checks": {c.name: c.verdict.value for c in record.checkers},
        "counts": dict(record.run.counts),
        "violations": [v.message for v in record.violations],
        # The stats check's gaps, when the run proved nothing (chaos.checker.stats).
        "proved_nothing": [c.reason for c in record.checkers if c.verdict is RunVerdict.VACUOUS],
    }


def _run_fields(
    record: Record, pids: Mapping[int, Sequence[int]], report: str | None
) -> dict[str, Any]:
    """What every live run's answer ends with: its faults, processes, notes and replay."""
    return {
        "faults": [
            f"{f.kind} {f.start_ms:.0f}-{f.end_ms or 0:.0f} ms: {f.detail}" for f in record.faults
        ],
        "pids": {str(n): list(p) for n, p in pids.items()},
        "notes": list(record.notes),
        "replay": record.run.replay,
        "report": report,
        "wall": dict(record.run.wall),
    }


def human(data: dict[str, Any]) -> str:
    counts = data["counts"]
    ops = ", ".join(f"{k[4:]} {v}" for k, v in sorted(counts.items()) if k.startswith("ops."))
    faults = ", ".join(f"{k[7:]} {v}" for k, v in sorted(counts.items()) if k.startswith("faults."))
    lines = [
        f"{data['verdict'].upper()}: " + ", ".join(f"{k} {v}" for k, v in data["checks"].items()),
        f"  operations: {data['operations']} ({ops})",
        f"  faults: {faults or 'none'}; leaders seen in {counts.get('leaders.terms', 0)} terms",
        f"  after healing: write committed in {_ms(data['after_heal_ms']['write_committed'])}, "
        f"converged in {_ms(data['after_heal_ms']['converged'])}",
        *(f"  violation: {v}" for v in data["violations"]),
        *(f"  proved nothing: {v}" for v in data["proved_nothing"]),
        *(f"  fault: {f}" for f in data["faults"]),
        *(f"  note: {n}" for n in data["notes"]),
        f"  replay (same choices, not the same interleaving): {data['replay']}",
    ]
    if data["report"]:
        lines.append(f"  report: {data['report']}/report.html")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _fail(args: argparse.Namespace, kind: str, error: Exception) -> int:
    if args.json:
        emit(args, {"verdict": None, "error": {"kind": kind, "message": str(error)}}, str)
    print(f"raftcluster chaos live: error: {error}", file=sys.stderr)
    return EXIT_ERROR
