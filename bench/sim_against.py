"""The simulator's speed now against an older commit, measured in one run.

    python -m bench.sim_against COMMIT [--rounds N] [--seeds 1,2] [--duration S] [--json]

`COMMIT`'s tree is extracted (`git archive`) into a temporary directory; then the default
seed run (`chaos run --nodes 5 --duration 60`: 5 nodes, random faults, the kv workload,
`bench_sim`'s row "the default seed run") runs in a fresh process of each tree in turn,
`rounds` times, alternating, so that both see the same load on a shared machine. Each
process prints the virtual seconds it simulated and the wall and CPU seconds the run took
(the `Simulator(...).run()` call alone, as `bench_sim` times it). The result: virtual
seconds per wall second and per CPU second of each tree (medians over the rounds), the
best round's per CPU second (the least disturbed by the machine's load, which only ever
adds time), and the ratios now / then of each. The ratios from one run are the figures to
quote: absolute figures move with the machine's load, the ratios far less.

Both trees must have `chaos.sim` with `SimConfig`, `Simulator`, `RandomFaults` and
`KvWorkload` (every commit since the simulator's first). Errors (not a git checkout, an
unknown commit, a run that fails) are one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent  # the tree measured as "now"
# A run's virtual, wall and CPU seconds, as the child process prints them (one JSON line).
CHILD = """
import json, logging, sys, time
logging.getLogger("raftcluster.storage").setLevel(logging.ERROR)
from chaos.sim import KvWorkload, RandomFaults, SimConfig, Simulator
seeds, duration_ms = [int(s) for s in sys.argv[1].split(",")], int(sys.argv[2])
virtual = wall = cpu = 0.0
for seed in seeds:
    sim = Simulator(SimConfig(seed=seed, nodes=5, duration_ms=duration_ms), RandomFaults(),
                    KvWorkload())
    started, cpu_started = time.perf_counter(), time.process_time()
    result = sim.run()
    wall += time.perf_counter() - started
    cpu += time.process_time() - cpu_started
    if not result.ok:
        sys.exit(f"seed {seed} failed: {result.violation or result.error}")
    virtual += result.end_ms / 1000
print(json.dumps({"virtual_s": virtual, "wall_s": wall, "cpu_s": cpu}))
"""
# One run of the default seed takes about 1-3 s; a bound on a stuck child.
CHILD_TIMEOUT_S = 600


class AgainstError(Exception):
    """Why the comparison cannot run (printed as one line)."""


def extract(commit: str, into: Path, repo: Path = HERE) -> Path:
    """`commit`'s tree, extracted into `into` (which must exist). Raises AgainstError."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
            timeout=CHILD_TIMEOUT_S,
        ).stdout
    except subprocess.CalledProcessError as e:
        raise AgainstError(f"git archive {commit}: {e.stderr.decode().strip()}") from None
    tar_path = into / "tree.tar"
    tar_path.write_bytes(archive)
    tree = into / "tree"
    with tarfile.open(tar_path) as tar:
        tar.extractall(tree, filter="data")
    return tree


def alternate(
    rounds: int, run: Callable[[Path], dict[str, float]], then: Path, now: Path
) -> dict[str, list[dict[str, float]]]:
    """`run` of each tree in turn, `rounds` times (so both see the same load)."""
    runs: dict[str, list[dict[str, float]]] = {"then": [], "now": []}
    for _ in range(rounds):
        runs["then"].append(run(then))
        runs["now"].append(run(now))
    return runs


def against(commit: str, compare: Callable[[Path], dict[str, Any]]) -> dict[str, Any] | None:
    """`compare(then)` with `commit`'s tree extracted to `then` (this tree is the other),
    the commit recorded in the result; None after printing the error as one line."""
    try:
        with tempfile.TemporaryDirectory() as scratch:
            result = compare(extract(commit, Path(scratch)))
    except (AgainstError, subprocess.TimeoutExpired, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    result["then_commit"] = commit
    return result


def run_tree(tree: Path, seeds: str, duration_s: int) -> dict[str, float]:
    """One run of the seeds in a fresh process importing `tree`'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, seeds, str(duration_s * 1000)],
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
    return figures


def compare(then: Path, now: Path, rounds: int, seeds: str, duration_s: int) -> dict[str, Any]:
    """Alternate runs of the two trees; medians of each and the ratios now / then."""
    runs = alternate(rounds, lambda tree: run_tree(tree, seeds, duration_s), then, now)
    out: dict[str, Any] = {"rounds": rounds, "seeds": seeds, "duration_s": duration_s}
    for name, figures in runs.items():
        out[name] = {
            "virtual_s_per_wall_s": statistics.median(
                f["virtual_s"] / f["wall_s"] for f in figures
            ),
            "virtual_s_per_cpu_s": statistics.median(f["virtual_s"] / f["cpu_s"] for f in figures),
            # The best round: on a shared machine the load only ever adds time, so the
            # fastest round of each tree is the least disturbed one.
            "best_virtual_s_per_cpu_s": max(f["virtual_s"] / f["cpu_s"] for f in figures),
            "each_per_wall_s": [round(f["virtual_s"] / f["wall_s"], 1) for f in figures],
        }
    for unit in ("virtual_s_per_wall_s", "virtual_s_per_cpu_s", "best_virtual_s_per_cpu_s"):
        out[f"ratio_{unit}"] = out["now"][unit] / out["then"][unit]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_against")
    parser.add_argument("commit", help="the older commit to compare with (e.g. 178e201)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each tree (default 5)")
    parser.add_argument("--seeds", default="1", help="comma-separated seeds (default 1)")
    parser.add_argument("--duration", type=int, default=60, help="virtual s of faults (60)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < 1:
        print("error: --rounds and --duration must be at least 1", file=sys.stderr)
        return 2
    result = against(
        args.commit, lambda then: compare(then, HERE, args.rounds, args.seeds, args.duration)
    )
    if result is None:
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"default seed run (seeds {args.seeds}, 5 nodes, {args.duration} s, random, kv), "
        f"{args.rounds} alternating rounds"
    )
    for name, label in (("then", args.commit), ("now", "this tree")):
        r = result[name]
        print(
            f"  {label:>10}: {r['virtual_s_per_wall_s']:.1f} virtual s per wall s, "
            f"{r['virtual_s_per_cpu_s']:.1f} per CPU s, best round "
            f"{r['best_virtual_s_per_cpu_s']:.1f} per CPU s (each round: {r['each_per_wall_s']} "
            "per wall s)"
        )
    print(
        f"  now / then: {result['ratio_virtual_s_per_wall_s']:.2f}x per wall s, "
        f"{result['ratio_virtual_s_per_cpu_s']:.2f}x per CPU s, "
        f"{result['ratio_best_virtual_s_per_cpu_s']:.2f}x per CPU s in the best rounds"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
