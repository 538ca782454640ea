"""`raftcluster chaos check FILE --model M [--option k=v ...] [--timeout S] [--json]`.

Checks a recorded history for linearizability (docs/checker.md). Exit status:
0 the history is linearizable, 1 it is not, 2 unknown (the time budget ran out) or the
command could not run (bad arguments, unreadable history, unknown model or option).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chaos.checker import (
    MODELS,
    CheckResult,
    HistoryError,
    HistoryLimits,
    ModelError,
    Verdict,
    Witness,
    check,
    load_history,
    make_model,
)
from chaos.checker.search import MAX_MEMORY
from raftcluster.cli.output import add_json_flag, emit

EXIT_OK = 0
EXIT_ILLEGAL = 1
EXIT_UNKNOWN = 2  # also every error: the question was not answered
EXIT_STATUS = {Verdict.OK: EXIT_OK, Verdict.ILLEGAL: EXIT_ILLEGAL, Verdict.UNKNOWN: EXIT_UNKNOWN}
# How many operations of the prefix the text output shows (the JSON has them all).
SHOWN_PREFIX = 8


class UsageError(ValueError):
    """A command-line argument that cannot be used (reported with exit status 2)."""


def register(chaos_sub: Any) -> None:
    parser: argparse.ArgumentParser = chaos_sub.add_parser(
        "check",
        help="check a recorded history for linearizability",
        description=(
            "Check a JSONL history (docs/checker.md) against a model. Exit status: 0 "
            "linearizable, 1 not linearizable, 2 unknown (time budget ran out) or error."
        ),
    )
    parser.add_argument("file", help="the history: one JSON event per line")
    parser.add_argument("--model", required=True, help=f"the model ({', '.join(sorted(MODELS))})")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model option; VALUE is read as JSON when it parses, else as a string "
        "(--option initial=null --option fail=definite)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="time budget in seconds for the verdict (default 60); past it the verdict is unknown",
    )
    parser.add_argument(
        "--core-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="time budget in seconds for the search of a minimal core of a violation "
        "(default 5; 0 skips it)",
    )
    parser.add_argument(
        "--max-operations",
        type=int,
        default=HistoryLimits().max_operations,
        metavar="N",
        help="refuse histories with more operations (default %(default)s)",
    )
    parser.add_argument(
        "--max-memory",
        type=int,
        default=MAX_MEMORY >> 20,
        metavar="MIB",
        help="memory budget of the search, in MiB (default %(default)s): past it the "
        "verdict is unknown, before the machine runs out",
    )
    parser.add_argument(
        "--linearization",
        action="store_true",
        help="with --json, include a linearization of each partition when ok",
    )
    add_json_flag(parser)
    parser.set_defaults(run=run)


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """`["k=v", ...]` as a dict; each value is JSON when it parses, else a string."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE")
        if key in options:
            raise UsageError(f"--option {key} given twice")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def run(args: argparse.Namespace) -> int:
    try:
        if args.timeout <= 0 or args.core_timeout < 0:
            raise UsageError("--timeout must be positive and --core-timeout not negative")
        if args.max_operations <= 0 or args.max_memory <= 0:
            raise UsageError("--max-operations and --max-memory must be positive")
        model = make_model(args.model, parse_options(args.option))
        history = load_history(args.file, HistoryLimits(max_operations=args.max_operations))
        result = check(
            history,
            model,
            timeout_s=args.timeout,
            core_timeout_s=args.core_timeout or None,
            max_memory=args.max_memory << 20,
        )
    except (UsageError, ModelError, HistoryError) as e:  # prepare() may reject an operation
        return _fail(args, e)
    emit(args, result.to_json(include_linearization=args.linearization), lambda _: human(result))
    return EXIT_STATUS[result.verdict]


def _fail(args: argparse.Namespace, error: Exception) -> int:
    kind = "history" if isinstance(error, HistoryError) else "model"
    if isinstance(error, UsageError):
        kind = "usage"
    detail: dict[str, Any] = {"kind": kind, "message": str(error)}
    if isinstance(error, HistoryError):
        detail.update(file=error.source, line=error.line, reason=error.reason)
    if args.json:
        emit(args, {"verdict": None, "error": detail}, str)
    print(f"raftcluster chaos check: error: {error}", file=sys.stderr)
    return EXIT_UNKNOWN


def human(result: CheckResult) -> str:
    """The answer as people read it."""
    unexamined = f", {result.unexamined} not examined" if result.unexamined else ""
    lines = [
        f"{result.source}: {result.verdict.value.upper()} ({result.model}; "
        f"{result.operations} operations, {result.checked} checked{unexamined}, "
        f"{result.partitions} partition(s); {result.elapsed_s * 1000:.3g} ms)"
    ]
    if result.reason:
        lines.append(f"  {result.reason}")
    witness = result.witness
    if witness is None:
        return "\n".join(lines)
    lines.append(f"  {witness.explanation()}")
    shown = witness.prefix[-SHOWN_PREFIX:]
    if shown:
        more = len(witness.prefix) - len(shown)
        lines.append("  linearized last" + (f" ({more} before)" if more else "") + ":")
        lines.extend(f"    {_op_line(witness, i)}" for i in shown)
    lines.append("  none of these can follow:")
    lines.extend(f"    {_op_line(witness, i)}" for i in witness.candidates)
    if witness.core is not None:
        quality = "minimal" if witness.core_minimal else "not proven minimal"
        lines.append(f"  a {quality} non-linearizable core of {len(witness.core)} operations:")
        lines.extend(f"    {_op_line(witness, i)}" for i in witness.core)
    return "\n".join(lines)


def _op_line(witness: Witness, op_id: int) -> str:
    op = witness.describe(op_id)
    span = f"events {op['call']}..{op['complete'] if op['complete'] is not None else 'end'}"
    return f"#{op_id} process {op['process']}: {op['description']} [{span}]"
