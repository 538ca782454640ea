"""The linearizability checker on the corpus, against porcupine's times in its manifest.

For every history of shared/corpora/linearizability (every 8th with --quick) the
history is parsed once, then `check` (verdict only: no core) runs several times and the
median is compared with `porcupine_ms`, porcupine's median in Go on a 2-core machine.
Rows: per folder and overall, the geometric mean of our time and of porcupine's (their
ratio is the geometric mean of the per-file ratios) with the worst file; the total; and
one failed row per wrong verdict (a wrong answer fails `make bench`, a slow one does not).

Then the hard histories of bench/hard_histories.py (many clients, many pending writes;
every 5th with --quick), each checked once in a fresh process with the command line's
budget (60 s): time, the memory the search kept as it counts it, and the process's peak
resident memory, beside porcupine's time and memory on the same history where it gave a
verdict in 60 s. Any answer but `ok` fails the row.

    python -m bench bench_checker [--quick]
"""

from __future__ import annotations

import math
import multiprocessing
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from bench.hard_histories import CASES, HardCase, recorded
from bench.table import Row
from chaos.checker import Verdict, check, history_from_events, load_history, make_model
from chaos.checker.corpus import CorpusEntry, find_corpus, load_manifest

PEER = "porcupine (Go, manifest)"
MIN_RUNS = 3
MAX_RUNS = 25
SPEND_S = 0.3  # per file: stop repeating once this much has been spent (after MIN_RUNS)
TIMEOUT_S = 300.0
HARD_TIMEOUT_S = 60.0  # the command line's default budget
HARD_PEER = "porcupine (Go, measured by hand)"


def time_entry(entry: CorpusEntry) -> tuple[float, Verdict]:
    """The median time of `check` on one history, in ms, and its verdict."""
    history = load_history(find_corpus() / entry.file)
    model = make_model(entry.model, entry.options)
    times: list[float] = []
    verdict = Verdict.UNKNOWN
    spent = 0.0
    while len(times) < MIN_RUNS or (spent < SPEND_S and len(times) < MAX_RUNS):
        started = time.perf_counter()
        verdict = check(history, model, timeout_s=TIMEOUT_S).verdict
        elapsed = time.perf_counter() - started
        times.append(elapsed * 1000)
        spent += elapsed
    return statistics.median(times), verdict


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def summary(name: str, timed: list[tuple[CorpusEntry, float, Verdict]]) -> Row:
    ours = [ms for _, ms, _ in timed]
    theirs = [e.porcupine_ms for e, _, _ in timed]
    worst = max(timed, key=lambda t: t[1] / t[0].porcupine_ms)
    ratio = geomean(ours) / geomean(theirs)
    wrong = [e.file for e, _, v in timed if v.value != e.expected_verdict]
    return Row(
        name=f"checker {name} ({len(timed)} files) geomean",
        value=geomean(ours),
        unit="ms",
        peer=PEER,
        peer_value=geomean(theirs),
        higher_is_better=False,
        note=(
            f"{ratio:.2f}x porcupine's time; worst {worst[1] / worst[0].porcupine_ms:.1f}x "
            f"{worst[0].file} ({worst[1]:.3g} ms vs {worst[0].porcupine_ms:.3g} ms)"
            + (f"; {len(wrong)} WRONG" if wrong else "")
        ),
        failed=bool(wrong),
    )


def check_hard(case: HardCase) -> tuple[float, str, int, int]:
    """In a fresh process: ms to the verdict, the verdict, MiB the search kept, peak RSS MiB."""
    history = history_from_events(recorded(case))
    model = make_model(case.model, case.options)
    started = time.perf_counter()
    result = check(history, model, timeout_s=HARD_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return elapsed * 1000, result.verdict.value, result.memory >> 20, peak_kib >> 10


def hard_rows(quick: bool) -> list[Row]:
    cases = CASES[::5] if quick else CASES
    rows = []
    ratios = []
    for case in cases:
        # One process per history, so that its peak memory is its own.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            ms, verdict, kept, peak = pool.submit(check_hard, case).result()
        theirs = (
            f"porcupine {case.porcupine_ms / 1000:.1f} s, {case.porcupine_mib:.0f} MiB"
            if case.porcupine_ms is not None
            else f"porcupine: no verdict in 60 s ({case.porcupine_mib:.0f} MiB)"
        )
        if case.porcupine_ms is not None:
            ratios.append(ms / case.porcupine_ms)
        rows.append(
            Row(
                name=f"checker hard {case.name}",
                value=ms,
                unit="ms",
                peer=HARD_PEER,
                peer_value=case.porcupine_ms,
                higher_is_better=False,
                note=f"{verdict}; kept {kept} MiB, peak RSS {peak} MiB; {theirs}",
                failed=verdict != "ok",
            )
        )
    if ratios:
        rows.append(
            Row(
                name=f"checker hard histories ({len(ratios)} porcupine decides) geomean ratio",
                value=geomean(ratios),
                unit="x porcupine",
                higher_is_better=False,
                note="our time / porcupine's, per history; below 1 is faster",
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    entries = load_manifest(find_corpus())
    if quick:
        entries = entries[::8]
    timed = []
    for entry in entries:
        ms, verdict = time_entry(entry)
        timed.append((entry, ms, verdict))
    rows = []
    for folder in sorted({e.folder for e in entries}):
        rows.append(summary(folder, [t for t in timed if t[0].folder == folder]))
    rows.append(summary("all", timed))
    slowest = max(timed, key=lambda t: t[1])
    rows.append(
        Row(
            name="checker total over the corpus",
            value=sum(ms for _, ms, _ in timed),
            unit="ms",
            peer=PEER,
            peer_value=sum(e.porcupine_ms for e, _, _ in timed),
            higher_is_better=False,
            note=f"slowest {slowest[0].file} {slowest[1]:.0f} ms",
        )
    )
    for entry, ms, verdict in timed:
        if verdict.value != entry.expected_verdict:
            rows.append(
                Row(
                    name=f"checker WRONG VERDICT {entry.file}",
                    value=ms,
                    unit="ms",
                    note=f"{verdict.value}, expected {entry.expected_verdict}",
                    failed=True,
                )
            )
    return rows + hard_rows(quick)
