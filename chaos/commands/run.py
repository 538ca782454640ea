"""`raftcluster chaos run --seed N [--nodes K] [--duration S] [--report DIR] [--json] ...`
and `raftcluster chaos run --seeds A..B ...` (a campaign).

Runs one seed of the deterministic simulator (docs/simulator.md): real node and client
cores under a seeded mix of faults, every invariant checked at every step, then healing,
convergence and liveness checks, and the linearizability of the clients' history.
`--report DIR` writes the run's report directory (docs/report.md). With `--seeds A..B`
it runs every seed of the range and prints a summary table (docs/chaos.md).

A user's state machine runs the same way, named by import paths: `--part bank:BANK`
(repeatable), `--workload bank:BankWorkload`, `--model bank:BankModel`
(docs/your-state-machine.md). A path that does not load is a usage error, before the run.

Exit status: 0 every invariant held (and the history is linearizable, or could not be
judged in time); 1 a violation (the output says which, where and when), or in a campaign
any seed that failed; 2 the run could not be made or broke off with an exception (bad
arguments; an exception in the code under test or in the harness, shown with its
traceback); 3 the run was vacuous: no check failed, but some kind of operation never
succeeded under the faults or after healing, so it proved nothing (`--allow-vacuous`
exits 0 for it; in a campaign, a vacuous seed counts as failed unless it is given).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chaos.campaign.campaign import (
    MAX_JOBS,
    CampaignResult,
    distribution,
    parse_seeds,
    run_campaign,
    run_json,
)
from chaos.campaign.index import write_index
from chaos.campaign.progress import Progress
from chaos.campaign.sim_report import trace_lines, write_sim_report
from chaos.campaign.spec import (
    DEFAULT_CHECK_TIMEOUT_S,
    DEFAULT_DURATION_S,
    DEFAULT_ENGINE,
    DEFAULT_HEAL_TIMEOUT_S,
    DEFAULT_NEMESIS,
    DEFAULT_NODES,
    DEFAULT_WORKLOAD,
    ENGINES,
    RunSpec,
)
from chaos.checker import dump_events
from chaos.checker.stats import VACUOUS
from chaos.report import RecordError
from chaos.sim import SimResult
from chaos.sim.catalog import NEMESES, WORKLOADS
from chaos.sim.planted import PLANTS
from raftcluster.cli.output import add_json_flag, emit
from statemachine.errors import ClusterError

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_ERROR = 2
EXIT_VACUOUS = 3


def register(chaos_sub: Any) -> None:
    parser: argparse.ArgumentParser = chaos_sub.add_parser(
        "run",
        help="run one seed (or a campaign of seeds) of the deterministic simulator",
        description=(
            "Run one seed: real node cores under seeded faults, invariants checked at every "
            "step; or, with --seeds A..B, every seed of a range. Exit status: 0 every "
            "invariant held, 1 a violation (any failing seed), 2 error, 3 vacuous (the run "
            "proved nothing: some kind of operation never succeeded)."
        ),
    )
    add_run_flags(parser)
    parser.add_argument(
        "--seeds",
        metavar="A..B",
        help="run a campaign: every seed from A to B (both included), then a summary table",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="campaign: run N seeds at once, in subprocesses (default 1: in this process)",
    )
    parser.add_argument(
        "--stop-on-failure",
        action="store_true",
        help="campaign: start no more seeds once one has failed",
    )
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="write the report directory (summary.json, history.jsonl, trace.jsonl, "
        "report.html); for a campaign, one seed-N/ subdirectory per seed and an index.html",
    )
    parser.add_argument(
        "--allow-vacuous",
        action="store_true",
        help="exit 0 for a vacuous run (one in which some kind of operation never "
        "succeeded under the faults or after healing), and count it as passed in a campaign",
    )
    parser.add_argument("--history", metavar="FILE", help="write the clients' history (JSONL)")
    parser.add_argument("--trace", metavar="FILE", help="write the trace records (JSONL)")
    add_json_flag(parser)
    parser.set_defaults(run=run)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that make a `RunSpec` (shared with `chaos regress`)."""
    parser.add_argument("--seed", type=int, default=None, help="the seed to run (default 0)")
    parser.add_argument("--nodes", type=int, default=DEFAULT_NODES, help="cluster size (default 5)")
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="S",
        help="virtual seconds of faults before healing (default 60)",
    )
    parser.add_argument(
        "--heal-timeout",
        type=float,
        default=DEFAULT_HEAL_TIMEOUT_S,
        metavar="S",
        help="virtual seconds after healing within which a leader, a committed write and "
        "identical replicas are required (default 30)",
    )
    parser.add_argument(
        "--nemesis",
        default=DEFAULT_NEMESIS,
        help=f"fault schedule(s), comma-separated ({', '.join(sorted(NEMESES))})",
    )
    parser.add_argument(
        "--workload",
        default=DEFAULT_WORKLOAD,
        help=f"client workload ({', '.join(sorted(WORKLOADS))}), or the import path of "
        "your own workload class (module:NAME)",
    )
    parser.add_argument(
        "--part",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="a part of your own to register on every node, by import path (a PartSpec, "
        "a list of them, or a function returning either); repeatable",
    )
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="the model that judges the history: a built-in one's name or the import path "
        "of your own (module:NAME); default: the workload's",
    )
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=DEFAULT_CHECK_TIMEOUT_S,
        metavar="S",
        help="budget of the linearizability check, in seconds of search effort (about "
        "512,000 configurations a second, on any machine, so a seed's verdict is the same "
        "everywhere); past it the verdict is unknown (0 skips the check)",
    )
    parser.add_argument(
        "--plant",
        choices=sorted(PLANTS),
        help="run a planted bug instead of the real engine part, to show the checkers "
        "can fail (chaos/sim/planted.py); never a test of the real engine",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=DEFAULT_ENGINE,
        help="the system under test: our own engine, or unmodified pysyncobj nodes "
        "(docs/chaos-pysyncobj.md; needs pysyncobj installed)",
    )


def spec_from_args(args: argparse.Namespace, seed: int | None = None) -> RunSpec:
    """The run the flags describe (for `seed`, or --seed). Raises `InvalidArgument`."""
    spec = RunSpec(
        seed=(args.seed or 0) if seed is None else seed,
        nodes=args.nodes,
        duration_s=args.duration,
        heal_timeout_s=args.heal_timeout,
        nemesis=args.nemesis,
        workload=args.workload,
        check_timeout_s=args.check_timeout,
        plant=args.plant,
        engine=args.engine,
        parts=tuple(args.part),
        model=args.model,
    )
    spec.validate()
    return spec


def run(args: argparse.Namespace) -> int:
    if args.seeds is not None:
        return run_seeds(args)
    try:
        spec = spec_from_args(args)
    except (ClusterError, ValueError) as e:
        return _fail(args, "usage", e)
    keep = args.trace is not None or args.report is not None
    result, elapsed = spec.run(keep_trace=keep)
    data = run_json(spec, result, elapsed)
    try:
        _write_files(args, result)
        if args.report is not None:
            paths = write_sim_report(args.report, result, replay=data["replay"], wall=data["wall"])
            data["report"] = str(paths.html)
    except (OSError, RecordError) as e:
        return _fail(args, "output", e)
    emit(args, data, human)
    vacuous = EXIT_OK if args.allow_vacuous else EXIT_VACUOUS
    exits = {"ok": EXIT_OK, "violation": EXIT_VIOLATION, VACUOUS: vacuous}
    return exits.get(result.verdict, EXIT_ERROR)


def run_seeds(args: argparse.Namespace) -> int:
    """A campaign: every seed of --seeds, a summary table (or --json), exit 1 if any failed."""
    if args.seed is not None or args.history or args.trace:
        error = ValueError("--seeds runs a campaign: give no --seed, --history or --trace")
        return _fail(args, "usage", error)
    try:
        seeds = parse_seeds(args.seeds)
        specs = [spec_from_args(args, seed) for seed in seeds]
        if not 1 <= args.jobs <= MAX_JOBS:
            raise ValueError(f"--jobs must be between 1 and {MAX_JOBS}")
    except (ClusterError, ValueError) as e:
        return _fail(args, "usage", e)
    report = Path(args.report) if args.report is not None else None
    progress = Progress(len(specs), sys.stderr)
    try:
        campaign = run_campaign(
            specs,
            report_dir=report,
            jobs=args.jobs,
            stop_on_failure=args.stop_on_failure,
            on_done=progress.update,
        )
    except (OSError, RecordError) as e:
        return _fail(args, "output", e)
    finally:
        progress.close()
    if report is not None:
        try:
            write_index(report, campaign)
        except OSError as e:
            return _fail(args, "output", e)
    emit(args, campaign.to_json(), lambda _: campaign_table(campaign))
    failed = [r for r in campaign.failed if not (args.allow_vacuous and r.verdict == VACUOUS)]
    return EXIT_OK if not failed else EXIT_VIOLATION


def _write_files(args: argparse.Namespace, result: SimResult) -> None:
    if args.history:
        with open(args.history, "w", encoding="utf-8") as out:
            out.writelines(dump_events(result.history))
    if args.trace:
        with Path(args.trace).open("w", encoding="utf-8") as out:
            out.writelines(trace_lines(result))


def _fail(args: argparse.Namespace, kind: str, error: Exception) -> int:
    if args.json:
        emit(args, {"verdict": None, "error": {"kind": kind, "message": str(error)}}, str)
    print(f"raftcluster chaos run: error: {error}", file=sys.stderr)
    return EXIT_ERROR


def campaign_table(campaign: CampaignResult) -> str:
    """The campaign as people read it: a row per seed, totals, and how to replay failures."""
    header = ("seed", "verdict", "elections", "ops", "faults", "wall s", "found")
    rows = [
        (str(r.seed), r.verdict, str(r.elections), str(r.ops), str(r.faults),
         f"{r.wall_s:.2f}", r.finding)
        for r in campaign.rows
    ]  # fmt: skip
    t = campaign.totals()
    rows.append(
        ("total", f"{t['ok']} ok, {t['failed']} failed", str(t["elections"]), str(t["ops"]),
         str(t["faults"]), f"{t['wall_s']:.2f}", "")
    )  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    virtual = t["virtual_s_per_wall_s"]
    lines.append(
        f"{t['virtual_s']:,.1f} virtual s in {t['wall_s']:,.2f} wall s"
        + (f" ({virtual:,.1f} virtual s per wall s)" if virtual else "")
    )
    failover = t["failover_ms"]
    if failover:
        lines.append(f"failovers (owner's failure to online on another node): {_spread(failover)}")
    if campaign.stopped_early:
        lines.append("stopped at the first failure (--stop-on-failure)")
    for r in campaign.failed:
        lines.append(f"seed {r.seed} failed ({r.finding}); replay: {r.replay}")
    return "\n".join(lines)


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
    lines.append("  checks: " + ", ".join(f"{k} {v}" for k, v in data["checks"].items()))
    stats = data.get("stats")
    if stats is not None and stats["gaps"]:
        lines.append("  proved nothing: " + "; ".join(stats["gaps"]))
    if data["plant"]:
        lines.append(f"  planted bug: {data['plant']} (not the real engine)")
    lines += [
        f"  trace {data['trace_hash']} ({data['trace_records']} records, {data['steps']} steps)",
        f"  elections {counts['elections']} (leaders {counts['leaders']}), entries committed "
        f"{counts['committed_entries']} (commands {counts['proposals_committed']}), writes "
        f"acknowledged {counts['acknowledged_writes']}",
        f"  client operations: {_pairs(counts['operations'])}",
        f"  faults: {_pairs(counts['faults']) or 'none'}; crashes {counts['crashes']}",
        f"  nemesis coverage: {_pairs(counts['nemesis']) or 'none'}",
        f"  disk: {_pairs(counts['disk'])}",
        f"  snapshots: taken {counts['snapshots_taken']}, "
        f"installed {counts['snapshots_installed']}",
        f"  messages: {_pairs(counts['network'])}",
    ]
    groups = counts.get("groups")
    if groups:
        failover = distribution(groups["failover_ms"])
        lines.append(
            f"  groups: {groups['starts']} starts, {groups['stops']} stops, "
            f"{groups['crashes']} crashes, {groups['watchdog_kills']} watchdog kills, "
            f"{groups['failbacks']} failbacks, {groups['events_delivered']} events delivered; "
            f"failovers: {_spread(failover) if failover else 'none'}"
        )
    if timings["healed_at_ms"] is not None:
        lines.append(
            f"  after healing: leader in {_ms_text(timings['leader_after_heal_ms'])}, write "
            f"committed in {_ms_text(timings['probe_committed_after_heal_ms'])}, converged in "
            f"{_ms_text(timings['converged_after_heal_ms'])}"
        )
    lines.append(f"  replay: {data['replay']}")
    if "report" in data:
        lines.append(f"  report: {data['report']}")
    return "\n".join(lines)


def _spread(d: dict[str, int]) -> str:
    return (f"{d['count']}, p50 {d['p50']} ms, p90 {d['p90']} ms, p99 {d['p99']} ms, "
            f"max {d['max']} ms")  # fmt: skip


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _ms_text(ms: int | None) -> str:
    return "-" if ms is None else f"{ms} ms"
