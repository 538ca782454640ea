"""The linearizability checker on the corpus, against porcupine's times in its manifest.

For every history of shared/corpora/linearizability (every 8th with --quick) the
history is parsed once, then `check` (verdict only: no core) runs several times and the
median is compared with `porcupine_ms`, porcupine's median in Go on a 2-core machine.
Rows: per folder and overall, the geometric mean of our time and of porcupine's (their
ratio is the geometric mean of the per-file ratios) with the worst file; the total; and
one failed row per wrong verdict (a wrong answer fails `make bench`, a slow one does not).

    python -m bench bench_checker [--quick]
"""

from __future__ import annotations

import math
import statistics
import time

from bench.table import Row
from chaos.checker import Verdict, check, load_history, make_model
from chaos.checker.corpus import CorpusEntry, find_corpus, load_manifest

PEER = "porcupine (Go, manifest)"
MIN_RUNS = 3
MAX_RUNS = 25
SPEND_S = 0.3  # per file: stop repeating once this much has been spent (after MIN_RUNS)
TIMEOUT_S = 300.0


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
    return rows
