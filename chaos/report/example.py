"""A synthetic run record, for the docs and the tests: `python -m chaos.report.example OUTDIR`.

Five nodes for 12 s. Node 1 leads term 1; a partition `{1,2} | {3,4,5}` from 3 s to 6 s
lets node 3 win term 2 while node 1, cut off with node 2, keeps answering reads from its
stale state (the planted bug); node 4 is killed at 8 s and restarts at 9.2 s, node 5 is
paused for 0.6 s, and 2% of messages are lost from 7 s to 9.5 s. Four clients run a
register workload (read, write, cas): writes sent to the minority time out (info),
requests without a leader fail, and the stale reads make the history non-linearizable.
The linearizability checker runs on the history, so the witness in the report is real.
With `--no-violation` the minority refuses reads instead, and the history is linearizable.

Nothing here reads a clock but the checker's timing, which goes in `run.wall`; the same
seed gives the same record otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from chaos.checker import EffortClock, Verdict, check, history_from_events, make_model
from chaos.report.directory import history_events, write_report
from chaos.report.record import (
    CheckerRun,
    ClientOp,
    Engine,
    Fault,
    Interval,
    IntervalKind,
    Mode,
    OpType,
    Record,
    RunInfo,
    RunVerdict,
    Violation,
)

NODES: Final = (1, 2, 3, 4, 5)
DURATION_MS: Final = 12_000
PARTITION: Final = (3_000, 6_000)
NEW_LEADER_AT: Final = 3_450
KILL: Final = (8_000, 9_200)
PAUSE: Final = (10_200, 10_800)
LOSS: Final = (7_000, 9_500)
PROCESSES: Final = 4
MINORITY_CLIENT: Final = 0  # talks to node 1, which ends up on the minority side
TIMEOUT_MS: Final = 500
MODEL: Final = "register"
OPTIONS: Final = {"initial": 0}


@attrs.frozen
class Example:
    """An example run: its record and the files `write_report` takes."""

    record: Record
    history: list[str]
    trace: list[str]


@attrs.define
class _Op:
    process: int
    f: str
    input: Any
    invoke_ms: float
    complete_ms: float | None
    type: OpType
    node: int | None
    output: Any = None
    error: str | None = None
    stale: bool = False  # answered from node 1's state at the partition


def _intervals() -> list[Interval]:
    L, F, C = IntervalKind.LEADER, IntervalKind.FOLLOWER, IntervalKind.CANDIDATE
    end = DURATION_MS
    return [
        Interval(1, C, 0, 160, 1),
        Interval(1, L, 160, 6_020, 1),
        Interval(1, F, 6_020, end, 2),
        Interval(2, F, 0, end, 1),
        Interval(3, F, 0, 3_310, 1),
        Interval(3, C, 3_310, NEW_LEADER_AT, 2),
        Interval(3, L, NEW_LEADER_AT, end, 2),
        Interval(4, F, 0, KILL[0], 1),
        Interval(4, IntervalKind.CRASHED, *KILL),
        Interval(4, F, KILL[1], end, 2),
        Interval(5, F, 0, end, 1),
        Interval(5, IntervalKind.PAUSED, *PAUSE),
    ]


def _faults() -> list[Fault]:
    return [
        Fault("partition", *PARTITION, (1, 2, 3, 4, 5), "{1,2} | {3,4,5}", ((1, 2), (3, 4, 5))),
        Fault("loss", *LOSS, NODES, "2% of messages dropped on every link"),
        Fault("kill", *KILL, (4,), "kill -9 node 4, restart at 9,200 ms (unsynced writes lost)"),
        Fault("pause", *PAUSE, (5,), "SIGSTOP node 5 for 600 ms"),
    ]


def _leader_at(t: float) -> int | None:
    if t < 160 or PARTITION[0] <= t < NEW_LEADER_AT:
        return None
    return 1 if t < NEW_LEADER_AT else 3


def _draft(rng: random.Random, process: int, violation: bool) -> list[_Op]:
    """A process's operations, outcomes decided but outputs of reads not yet known."""
    ops: list[_Op] = []
    t = round(200 + rng.uniform(0, 150), 1)
    while t < DURATION_MS - 400:
        minority = process == MINORITY_CLIENT and PARTITION[0] <= t < PARTITION[1]
        f = rng.choices(("read", "write", "cas"), (5, 4, 2))[0]
        if minority:
            # Cut off, the client first writes (it times out: an unknown outcome), then
            # reads, and the old leader's stale answers expose the bug.
            timed_out = any(op.type is OpType.INFO for op in ops)
            f = "read" if timed_out else "write"
        # Values written while the partition lasts are new ones (5 to 9): a read of the
        # old leader's state is then visibly stale.
        fresh = 5 if PARTITION[0] <= t < PARTITION[1] else 0
        arg: Any = None if f == "read" else fresh + rng.randrange(5)
        if f == "cas":
            arg = [rng.randrange(5), rng.randrange(5)]
        latency = rng.uniform(6, 30) + (rng.random() < 0.08) * rng.uniform(40, 160)
        leader = 1 if minority else _leader_at(t)
        if minority and f != "read":  # the old leader cannot commit: the client times out
            latency = TIMEOUT_MS
        end = round(t + latency, 1)  # times to a tenth of a millisecond, for legibility
        if minority and f == "read":
            kind = OpType.OK if violation else OpType.FAIL
            op = _Op(process, f, arg, t, end, kind, 1, stale=violation)
        elif minority:
            op = _Op(process, f, arg, t, end, OpType.INFO, 1, error="timeout")
        elif leader is None:
            op = _Op(process, f, arg, t, end, OpType.FAIL, None, error="no leader")
        else:
            op = _Op(process, f, arg, t, end, OpType.OK, leader)
        ops.append(op)
        t = round(end + rng.uniform(150, 600), 1)
    return ops


def _settle(ops: list[_Op]) -> None:
    """Outputs from a register applied at each successful operation's midpoint."""
    value, at_partition = OPTIONS["initial"], None
    for op in sorted(ops, key=lambda o: (o.invoke_ms + (o.complete_ms or o.invoke_ms)) / 2):
        mid = (op.invoke_ms + (op.complete_ms or op.invoke_ms)) / 2
        if at_partition is None and mid >= PARTITION[0]:
            at_partition = value
        if op.type is not OpType.OK:
            continue
        if op.f == "read":
            op.output = at_partition if op.stale else value
        elif op.f == "write":
            value = op.input
        elif op.input[0] == value:
            value = op.input[1]
        else:
            op.type, op.error = OpType.FAIL, "precondition failed"


def _operations(seed: int, violation: bool, processes: int) -> list[ClientOp]:
    rng = random.Random(seed)
    drafts = [op for p in range(processes) for op in _draft(rng, p, violation)]
    _settle(drafts)
    drafts.sort(key=lambda o: (o.invoke_ms, o.process))
    return [
        ClientOp(
            index=i,
            process=op.process,
            f=op.f,
            input=op.input,
            output=op.output if op.type is OpType.OK else None,
            type=op.type,
            invoke_ms=op.invoke_ms,
            complete_ms=op.complete_ms,
            node=op.node,
            error=op.error,
        )
        for i, op in enumerate(drafts)
    ]


def _trace(intervals: Sequence[Interval], faults: Sequence[Fault]) -> list[str]:
    events = [
        {"t_ms": i.start_ms, "node": i.node, "event": i.kind.value, "term": i.term}
        for i in intervals
    ]
    events += [
        {"t_ms": f.start_ms, "event": "fault", "kind": f.kind, "detail": f.detail} for f in faults
    ]
    events.sort(key=lambda e: (e["t_ms"], json.dumps(e, sort_keys=True)))
    return [json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in events]


def build(seed: int = 7, violation: bool = True, processes: int = PROCESSES) -> Example:
    """The example run for `seed`; with `violation` False, a linearizable one. About 30
    operations per process (`processes` 300 gives some 9,000, to see a large report)."""
    intervals, faults = _intervals(), _faults()
    ops = _operations(seed, violation, processes)
    draft = Record(
        _run(seed, violation, RunVerdict.OK, {}, ops, processes),
        tuple(intervals),
        tuple(faults),
        tuple(ops),
    )
    events = history_events(draft)
    started = time.perf_counter()
    # The budgets run on an effort clock, not on time: the witness's core is then a
    # function of the history alone, as the record must be (the wall time goes in wall).
    result = check(
        history_from_events(events),
        make_model(MODEL, OPTIONS),
        timeout_s=30,
        core_timeout_s=5,
        clock=EffortClock(),
    )
    checker_s = time.perf_counter() - started
    violations = []
    if result.verdict is Verdict.ILLEGAL:
        violations.append(Violation.linearizability(result, draft.operations))
    checker = CheckerRun.linearizability(result)
    verdict = RunVerdict.VIOLATION if violations else checker.verdict
    trace = _trace(intervals, faults)
    record = attrs.evolve(
        draft,
        run=_run(seed, violation, verdict, {"checker_s": round(checker_s, 6)}, ops, processes),
        violations=tuple(violations),
        checkers=(checker,),
        trace_hash=hashlib.sha256("".join(trace).encode()).hexdigest(),
        notes=("A synthetic run made by chaos.report.example, to show the report.",),
    )
    return Example(record, [e.to_json_line(i) + "\n" for i, e in enumerate(events)], trace)


def _run(
    seed: int,
    violation: bool,
    verdict: RunVerdict,
    wall: dict[str, Any],
    ops: Sequence[ClientOp],
    processes: int,
) -> RunInfo:
    counts = {
        "elections": 2,
        "faults.partition": 1,
        "faults.loss": 1,
        "faults.kill": 1,
        "faults.pause": 1,
        "ops.ok": sum(1 for op in ops if op.type is OpType.OK),
        "ops.fail": sum(1 for op in ops if op.type is OpType.FAIL),
        "ops.info": sum(1 for op in ops if op.type is OpType.INFO),
        "nodes.restarts": 1,
    }
    replay = f"python -m chaos.report.example OUTDIR --seed {seed}"
    replay += "" if violation else " --no-violation"
    replay += "" if processes == PROCESSES else f" --processes {processes}"
    return RunInfo(
        seed=seed,
        engine=Engine.RAFTCLUSTER,
        mode=Mode.SIM,
        nodes=NODES,
        duration_ms=DURATION_MS,
        nemeses=("partition-halves", "kill", "pause", "loss"),
        workload="register",
        replay=replay,
        verdict=verdict,
        counts=counts,
        wall=wall,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.report.example", description=__doc__.split("\n")[0]
    )
    parser.add_argument("outdir", help="the report directory to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-violation", action="store_true", help="a linearizable run")
    parser.add_argument(
        "--processes", type=int, default=PROCESSES, help="client processes, ~30 operations each"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.processes <= 5_000:
        parser.error("--processes must be between 1 and 5000")
    example = build(args.seed, not args.no_violation, args.processes)
    paths = write_report(Path(args.outdir), example.record, example.history, example.trace)
    print(f"{example.record.run.verdict.value}: {paths.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
