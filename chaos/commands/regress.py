"""`raftcluster chaos regress --seed N [run flags] [--into DIR] [--expect-ok] [--json]`

Turns a run (typically a failing seed a campaign printed) into a regression test: runs it
and records its settings, its outcome and its trace hash in DIR/seeds.json
(default tests/regressions/), which `tests/test_regressions.py` replays in `make test`.
Recording the same run again replaces its entry (after a fix, it records `ok`).
`--refresh` re-runs every entry and records the trace hashes of the current code.

Exit status: 0 recorded; 1 `--refresh` found entries whose outcome changed; 2 bad
arguments or an unreadable file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from chaos.campaign import regress
from chaos.commands.run import add_run_flags, spec_from_args
from raftcluster.cli.output import add_json_flag, emit
from statemachine.errors import ClusterError

DEFAULT_INTO = "tests/regressions"


def register(chaos_sub: Any) -> None:
    parser: argparse.ArgumentParser = chaos_sub.add_parser(
        "regress",
        help="record a seed as a regression test (tests/regressions/seeds.json)",
        description=(
            "Run a seed and record it, with its outcome and trace hash, in DIR/seeds.json, "
            "which tests/test_regressions.py replays. Exit status: 0 recorded, 1 --refresh "
            "found changed outcomes, 2 error."
        ),
    )
    add_run_flags(parser)
    parser.add_argument(
        "--into",
        default=DEFAULT_INTO,
        metavar="DIR",
        help=f"the directory of seeds.json (default {DEFAULT_INTO})",
    )
    parser.add_argument(
        "--expect-ok",
        action="store_true",
        help="expect the seed to pass even if it fails now (its test fails until it is fixed)",
    )
    parser.add_argument("--note", default="", help="a remark kept with the entry")
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="re-run every entry and record the trace hashes of the current code",
    )
    add_json_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.refresh:
            return _refresh(args)
        if args.seed is None:
            raise ValueError("--seed is required (or --refresh)")
        spec = spec_from_args(args)
        entry, data = regress.record(args.into, spec, args.expect_ok, args.note)
    except (ClusterError, ValueError, OSError) as e:
        print(f"raftcluster chaos regress: error: {e}", file=sys.stderr)
        return 2
    answer = {"entry": entry.to_json(), "file": f"{args.into}/{regress.FILE}", "run": data}
    emit(args, answer, _human)
    return 0


def _refresh(args: argparse.Namespace) -> int:
    mismatched = regress.refresh(args.into)
    answer = {
        "file": f"{args.into}/{regress.FILE}",
        "changed": [
            {"replay": entry.spec.replay(), "expect": entry.expect, "now": now}
            for entry, now in mismatched
        ],
    }
    emit(args, answer, _human_refresh)
    return 1 if mismatched else 0


def _human(answer: dict[str, Any]) -> str:
    entry = answer["entry"]
    expect = entry["expect"]
    lines = [
        f"recorded {entry['replay']} in {answer['file']}: expect {expect}"
        + ("" if expect == entry["found"] else f" (found {entry['found']})"),
        "tests/test_regressions.py replays it in `make test`",
    ]
    if expect != regress.OK:
        lines.append("once the bug is fixed its test fails: run this command again to expect ok")
    return "\n".join(lines)


def _human_refresh(answer: dict[str, Any]) -> str:
    lines = [f"refreshed the trace hashes in {answer['file']}"]
    lines += [
        f"  outcome changed, left as it was: {c['replay']}: expect {c['expect']}, now {c['now']}"
        for c in answer["changed"]
    ]
    return "\n".join(lines)
