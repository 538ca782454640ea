"""`make bench`: run every benchmark module, print one table, write JSON to bench/results/.

A benchmark module defines `run(quick: bool) -> list[Row]`; one whose `run` also takes
`trials` (bench_failover) gets `--trials N` when it is given. Figures that have a peer
measured in the same run are reported as ratios against it, because machines here
are noisy and absolute figures travel badly.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path

from bench.table import Row, render

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("only", nargs="*", help="benchmark module names (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--trials", type=int, help="trials of each measurement, for benchmarks that take it"
    )
    args = parser.parse_args()
    names = args.only or sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_")
    )
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name} ==", flush=True)
        started = time.time()
        extra = {}
        if args.trials is not None and "trials" in inspect.signature(module.run).parameters:
            extra["trials"] = args.trials
        rows: list[Row] = module.run(quick=args.quick, **extra)
        print(render(rows), flush=True)
        record = {
            "benchmark": name,
            "started_unix": started,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "quick": args.quick,
            **extra,
            "rows": [r.as_dict() for r in rows],
        }
        (args.out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        failed += sum(1 for r in rows if r.failed)
    print(f"results written to {args.out}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
