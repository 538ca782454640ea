"""The state machine's apply and query path now against an older commit, in one run.

    python -m bench.sm_against COMMIT [--rounds N] [--count N] [--json]

`COMMIT`'s tree is extracted (`bench.sim_against.extract`); then this tree's
`bench_statemachine.measure_committed` (session puts through
`ClusterState.apply_committed`, single-key reads through `ClusterState.query`) runs in a
fresh process importing each tree's `statemachine` in turn, `rounds` times, alternating,
so that both see the same load on a shared machine. Each process also counts the Python
calls per put and per get under cProfile (deterministic, unlike the times). The result:
CPU microseconds per put and per get of each tree (the best round: on a shared machine
the load only ever adds time, and the median), calls per operation, and the ratios then /
now (above 1: now is quicker). Errors are one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.sim_against import AgainstError, against, alternate

HERE = Path(__file__).resolve().parent.parent  # the tree measured as "now"
# One process: the figures of `measure_committed(count)`, then the calls per operation of a
# smaller profiled run (one JSON line). `argv`: the file of this tree's bench_statemachine.
CHILD = """
import cProfile, importlib.util, json, pstats, sys
spec = importlib.util.spec_from_file_location("sm_bench_now", sys.argv[1])
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
count, profiled = int(sys.argv[2]), int(sys.argv[3])
bench.measure_committed(profiled)  # warm up: every generated codec function is built
figures = bench.measure_committed(count)
profiles = {"put": cProfile.Profile(), "get": cProfile.Profile()}
bench.measure_committed(profiled, profiles)
calls = {op: pstats.Stats(p).total_calls / profiled for op, p in profiles.items()}
print(json.dumps({**figures, "put_calls": calls["put"], "get_calls": calls["get"]}))
"""
CHILD_TIMEOUT_S = 600  # one process measures for seconds; a bound on a stuck child
PROFILED_OPS = 2_000  # operations of the profiled run (call counts are exact at any size)


def run_tree(tree: Path, count: int) -> dict[str, float]:
    """One measurement in a fresh process importing `tree`'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    script = str(HERE / "bench" / "bench_statemachine.py")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, script, str(count), str(min(count, PROFILED_OPS))],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise AgainstError(f"the run in {tree} failed: {last}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["ok"] != 1.0:
        raise AgainstError(f"the run in {tree} gave wrong answers")
    return figures


def compare(then: Path, now: Path, rounds: int, count: int) -> dict[str, Any]:
    """Alternate runs of the two trees; per-operation figures of each and ratios then/now."""
    runs = alternate(rounds, lambda tree: run_tree(tree, count), then, now)
    out: dict[str, Any] = {"rounds": rounds, "count": count}
    for name, figures in runs.items():
        tree: dict[str, Any] = {}
        for op in ("put", "get"):
            each = [f[f"{op}_s"] / count * 1e6 for f in figures]
            tree[f"{op}_us_best"] = min(each)
            tree[f"{op}_us_median"] = statistics.median(each)
            tree[f"{op}_calls"] = figures[0][f"{op}_calls"]
        out[name] = tree
    for key in out["now"]:
        out[f"ratio_{key}"] = out["then"][key] / out["now"][key]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sm_against")
    parser.add_argument("commit", help="the older commit to compare with (e.g. 2dcb2c1)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree (default 3)")
    parser.add_argument("--count", type=int, default=50_000, help="puts and gets per run")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.count < 1:
        print("error: --rounds and --count must be at least 1", file=sys.stderr)
        return 2
    result = against(args.commit, lambda then: compare(then, HERE, args.rounds, args.count))
    if result is None:
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"apply_committed (session put) and query (get), {args.count:,} each, "
        f"{args.rounds} alternating rounds; CPU us per operation"
    )
    for name, label in (("then", args.commit), ("now", "this tree")):
        r = result[name]
        print(
            f"  {label:>10}: put {r['put_us_best']:.1f} us (median {r['put_us_median']:.1f}), "
            f"{r['put_calls']:.1f} calls; get {r['get_us_best']:.1f} us "
            f"(median {r['get_us_median']:.1f}), {r['get_calls']:.1f} calls"
        )
    print(
        f"  then / now: put {result['ratio_put_us_best']:.2f}x (best), "
        f"{result['ratio_put_us_median']:.2f}x (median), calls "
        f"{result['ratio_put_calls']:.2f}x; get {result['ratio_get_us_best']:.2f}x (best), "
        f"{result['ratio_get_us_median']:.2f}x (median), calls {result['ratio_get_calls']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
