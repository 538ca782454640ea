"""Campaigns: many seeds with one set of settings, a summary of each and in total.

`run_campaign(specs, ...)` runs the seeds in this process one after the other, or with
`jobs` > 1 as that many `raftcluster chaos run --json` subprocesses at once (each seed is
deterministic, so where it runs does not change its result). Every seed gives the same
JSON document `chaos run --json` prints (`run_json`); the campaign's summary holds them
all, in order of seed, with totals and the replay command of every failing seed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from chaos.campaign.sim_report import write_sim_report
from chaos.campaign.spec import RunSpec
from chaos.sim import SimResult
from statemachine.errors import InvalidArgument

MAX_SEEDS = 1_000_000
MAX_JOBS = 64
SUMMARY = "summary.json"
INDEX = "index.html"


def parse_seeds(text: str) -> range:
    """`A..B` (both included) or one seed `N`. Raises `InvalidArgument`."""
    first, sep, last = text.partition("..")
    try:
        a = int(first)
        b = int(last) if sep else a
    except ValueError:
        raise InvalidArgument("--seeds", f"{text!r} is not A..B (two integers)") from None
    if b < a:
        raise InvalidArgument("--seeds", f"{text!r} ends before it starts")
    if b - a + 1 > MAX_SEEDS:
        raise InvalidArgument("--seeds", f"{text!r} is more than {MAX_SEEDS:,} seeds")
    return range(a, b + 1)


def seed_dir(seed: int) -> str:
    """The name of a seed's report directory inside a campaign's."""
    return f"seed-{seed}"


def run_json(spec: RunSpec, result: SimResult, elapsed_s: float) -> dict[str, Any]:
    """What `chaos run --json` prints for one run: the result, the replay command, and
    `wall` (the only field that differs between two runs of the seed)."""
    data = result.to_json()
    data["replay"] = spec.replay()
    data["wall"] = {"elapsed_s": round(elapsed_s, 3)}
    return data


@attrs.frozen
class SeedRow:
    """One line of the summary table, read from a run's JSON document."""

    seed: int
    verdict: str
    elections: int
    ops: int
    faults: int
    wall_s: float
    virtual_s: float
    replay: str
    finding: str  # what failed, in a few words ("" when ok)
    # The groups workload: each failover's time (ms), from the owner's failure to online
    # on another node.
    failover_ms: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeedRow:
        counts = data.get("counts") or {}
        return cls(
            seed=data["seed"],
            verdict=data["verdict"],
            elections=_int(counts.get("elections")),
            ops=_total(counts.get("operations")),
            faults=_total(counts.get("faults")),
            wall_s=float((data.get("wall") or {}).get("elapsed_s", 0.0)),
            virtual_s=_int(data.get("end_ms")) / 1000,
            replay=data.get("replay", ""),
            finding=finding(data),
            failover_ms=tuple(
                t for t in ((counts.get("groups") or {}).get("failover_ms") or ()) if _int(t)
            ),
        )

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _total(value: Any) -> int:
    return sum(_int(v) for v in value.values()) if isinstance(value, Mapping) else 0


def distribution(samples: Sequence[int]) -> dict[str, int] | None:
    """count, min, p50, p90, p99 and max of `samples` (None when there are none); a
    percentile is the sample at or above that share of the sorted samples."""
    if not samples:
        return None
    ordered = sorted(samples)

    def at(share: float) -> int:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {"count": len(ordered), "min": ordered[0], "p50": at(0.5), "p90": at(0.9),
            "p99": at(0.99), "max": ordered[-1]}  # fmt: skip


def finding(data: Mapping[str, Any]) -> str:
    """What a failing run found, in a few words ("" for an ok run)."""
    if data.get("violation"):
        return str(data["violation"].get("invariant", "violation"))
    if data.get("error"):
        return f"error: {data['error'].get('type', '?')}"
    lin = data.get("linearizability") or {}
    if lin.get("verdict") == "illegal":
        return "not linearizable"
    return "" if data.get("verdict") == "ok" else str(data.get("verdict"))


@attrs.frozen
class CampaignResult:
    specs: tuple[RunSpec, ...]
    runs: tuple[dict[str, Any], ...]  # the runs done, in order of seed
    stopped_early: bool
    elapsed_s: float

    @property
    def rows(self) -> list[SeedRow]:
        return [SeedRow.from_json(data) for data in self.runs]

    @property
    def failed(self) -> list[SeedRow]:
        return [row for row in self.rows if not row.ok]

    def totals(self) -> dict[str, Any]:
        rows = self.rows
        wall = sum(r.wall_s for r in rows)
        virtual = sum(r.virtual_s for r in rows)
        return {
            "seeds": len(rows),
            "ok": sum(r.ok for r in rows),
            "failed": len(rows) - sum(r.ok for r in rows),
            "elections": sum(r.elections for r in rows),
            "ops": sum(r.ops for r in rows),
            "faults": sum(r.faults for r in rows),
            "wall_s": round(wall, 3),
            "virtual_s": round(virtual, 3),
            "virtual_s_per_wall_s": round(virtual / wall, 1) if wall else None,
            "failover_ms": distribution([t for r in rows for t in r.failover_ms]),
        }

    def to_json(self) -> dict[str, Any]:
        first = self.specs[0]
        settings = {k: v for k, v in first.to_json().items() if k != "seed"}
        return {
            "seeds": {"first": self.specs[0].seed, "last": self.specs[-1].seed},
            "settings": settings,
            "verdict": "ok" if not self.failed else "failed",
            "totals": self.totals(),
            "failed": [{"seed": r.seed, "finding": r.finding, "replay": r.replay}
                       for r in self.failed],
            "stopped_early": self.stopped_early,
            "runs": list(self.runs),
            "wall": {"elapsed_s": round(self.elapsed_s, 3)},
        }  # fmt: skip


Listener = Callable[[int, bool], None]


def run_campaign(
    specs: Sequence[RunSpec],
    *,
    report_dir: Path | None = None,
    jobs: int = 1,
    stop_on_failure: bool = False,
    on_done: Listener | None = None,
) -> CampaignResult:
    """Run every spec (in order; with `jobs` > 1, that many at once in subprocesses).
    `on_done(seed, ok)` is called as each finishes. With `stop_on_failure`, no seed is
    started after one fails (those already running finish)."""
    assert specs, "a campaign has at least one seed"
    if not 1 <= jobs <= MAX_JOBS:
        raise InvalidArgument("--jobs", f"must be between 1 and {MAX_JOBS}")
    started = time.perf_counter()
    runner = _in_process(specs, report_dir) if jobs == 1 else _subprocesses(specs, report_dir, jobs)
    runs: list[dict[str, Any]] = []
    stopped = False
    for data in runner:
        runs.append(data)
        ok = data["verdict"] == "ok"
        if on_done is not None:
            on_done(data["seed"], ok)
        if stop_on_failure and not ok:
            stopped = len(runs) < len(specs)
            runner.close()  # the generator stops starting seeds; running ones finish
            break
    runs.sort(key=lambda d: d["seed"])
    return CampaignResult(tuple(specs), tuple(runs), stopped, time.perf_counter() - started)


def _in_process(
    specs: Sequence[RunSpec], report_dir: Path | None
) -> Generator[dict[str, Any], None, None]:
    for spec in specs:
        result, elapsed = spec.run(keep_trace=report_dir is not None)
        data = run_json(spec, result, elapsed)
        if report_dir is not None:
            directory = report_dir / seed_dir(spec.seed)
            paths = write_sim_report(directory, result, replay=data["replay"], wall=data["wall"])
            data["report"] = str(paths.html)  # as `chaos run --report` (in a subprocess) says
        yield data


def _subprocesses(
    specs: Sequence[RunSpec], report_dir: Path | None, jobs: int
) -> Generator[dict[str, Any], None, None]:
    """Up to `jobs` child processes at once; yields each run's document as it ends. On
    close (stop on failure), waits for the children already running, starts no more."""
    waiting = list(reversed(specs))
    running: list[_Child] = []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                running.append(_Child(waiting.pop(), report_dir))
            finished = _wait_any(running)
            running.remove(finished)
            yield finished.collect()
    finally:
        for child in running:
            child.collect()


class _Child:
    """One `chaos run --json` child process. Its output goes to files, not pipes, so it
    never blocks on a full pipe."""

    def __init__(self, spec: RunSpec, report_dir: Path | None) -> None:
        command = [sys.executable, "-m", "raftcluster", "chaos", "run", *spec.flags(), "--json"]
        if report_dir is not None:
            command += ["--report", str(report_dir / seed_dir(spec.seed))]
        self.spec = spec
        # Closed by `collect` (the child outlives this constructor: no `with` fits).
        self.out = tempfile.TemporaryFile()  # noqa: SIM115
        self.err = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.out, stderr=self.err)

    def collect(self) -> dict[str, Any]:
        """Wait for it; its run's document (an error document if it gave none)."""
        status = self.process.wait()
        text, stderr = _read(self.out), _read(self.err)
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and data.get("seed") == self.spec.seed and "verdict" in data:
            return data
        message = f"exit status {status}: {stderr.strip()[-2000:]}"
        return {
            "verdict": "error",
            "seed": self.spec.seed,
            "error": {"type": "subprocess", "message": message},
            "replay": self.spec.replay(),
            "wall": {"elapsed_s": 0.0},
        }


def _read(handle: Any) -> str:
    handle.seek(0)
    text: str = handle.read().decode(errors="replace")
    handle.close()
    return text


def _wait_any(running: list[_Child]) -> _Child:
    while True:
        for child in running:
            if child.process.poll() is not None:
                return child
        time.sleep(0.05)
