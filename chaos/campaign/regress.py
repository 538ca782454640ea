"""Regression seeds: a run that once failed, kept in a data file that the test suite
replays (`tests/regressions/seeds.json`, read by `tests/test_regressions.py`).

An entry holds the run (a `RunSpec`), what it is expected to give now (`expect`: `ok`,
or what it found: the invariant's name, `not linearizable`, `error: Type`), what it found
when first recorded (`found`), and the trace hash with the fingerprint of the code that
made it. Replaying an entry (`replay_entry`) requires:

- the outcome to be `expect`. A seed recorded while it fails keeps failing the same way
  until the bug is fixed; then its test fails and says to record it again (the same
  `raftcluster chaos regress` command, which now records `ok`): from then on the seed must
  pass. `--expect ok` records a failing seed as a test that fails until the fix lands;
- the same trace hash, when the code that decides the trace (statemachine, raftcluster
  and chaos.sim) is byte for byte what recorded it. Any change to that code may change
  the trace, so the hash is only compared then; `--refresh` records new hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import attrs

import chaos.sim
import raftcluster
import statemachine
from chaos.campaign.campaign import finding, run_json
from chaos.campaign.spec import RunSpec
from statemachine.errors import InvalidArgument

FORMAT: Final = 1
FILE: Final = "seeds.json"
OK: Final = "ok"
MAX_ENTRIES: Final = 10_000


def engine_fingerprint() -> str:
    """A digest of every Python source file that decides a simulated run's trace."""
    digest = hashlib.sha256()
    for package in (statemachine, raftcluster, chaos.sim):
        assert package.__file__ is not None
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            name = f"{package.__name__}/{path.relative_to(root).as_posix()}"
            data = path.read_bytes()
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()[:16]


@attrs.frozen
class Regression:
    spec: RunSpec
    expect: str  # what a replay must give: "ok" or a finding
    found: str  # what the run found when first recorded
    trace_hash: str
    engine: str  # engine_fingerprint() when trace_hash was recorded
    note: str = ""

    @property
    def name(self) -> str:
        s = self.spec
        return f"seed{s.seed}-n{s.nodes}-d{s.duration_s:g}-{s.nemesis}-{s.workload}"

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.spec.to_json(),
            "replay": self.spec.replay(),
            "expect": self.expect,
            "found": self.found,
            "trace_hash": self.trace_hash,
            "engine": self.engine,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Any) -> Regression:
        if not isinstance(data, dict):
            raise InvalidArgument("seeds", "each entry must be an object")
        try:
            return cls(
                spec=RunSpec.from_json(data["run"]),
                expect=str(data["expect"]),
                found=str(data["found"]),
                trace_hash=str(data["trace_hash"]),
                engine=str(data["engine"]),
                note=str(data.get("note", "")),
            )
        except (KeyError, TypeError) as e:
            raise InvalidArgument("seeds", f"an entry is malformed: {e}") from None


def outcome(data: dict[str, Any]) -> str:
    """A run's outcome as an entry states it: "ok" or its finding."""
    return OK if data["verdict"] == OK else finding(data)


def read_entries(directory: str | Path) -> list[Regression]:
    """The entries of `directory`/seeds.json (none if the file does not exist)."""
    path = Path(directory) / FILE
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidArgument(str(path), f"is not a regression file of format {FORMAT}")
    entries = data.get("seeds")
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise InvalidArgument(str(path), f"must hold a list of at most {MAX_ENTRIES} seeds")
    return [Regression.from_json(entry) for entry in entries]


def write_entries(directory: str | Path, entries: Iterable[Regression]) -> Path:
    """Write the entries (sorted by name: a new seed is a small diff)."""
    path = Path(directory) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(entries, key=lambda e: (e.spec.seed, e.name))
    document = {
        "format": FORMAT,
        "about": "Seeds replayed by tests/test_regressions.py; add one with "
        "`raftcluster chaos regress --seed N ...` (docs/chaos.md).",
        "seeds": [entry.to_json() for entry in ordered],
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    temporary.replace(path)
    return path


def record(
    directory: str | Path, spec: RunSpec, expect_ok: bool = False, note: str = ""
) -> tuple[Regression, dict[str, Any]]:
    """Run `spec` and add it to the file (replacing an entry for the same run, whose
    `found` and note are kept). Returns the entry and the run's JSON document."""
    entries = read_entries(directory)  # first: a bad file fails before the run, not after
    result, elapsed = spec.run()
    data = run_json(spec, result, elapsed)
    now = outcome(data)
    old = next((e for e in entries if e.spec == spec), None)
    entry = Regression(
        spec=spec,
        expect=OK if expect_ok else now,
        found=old.found if old is not None and old.found != OK else now,
        trace_hash=result.trace_hash,
        engine=engine_fingerprint(),
        note=note or (old.note if old is not None else ""),
    )
    write_entries(directory, [e for e in entries if e.spec != spec] + [entry])
    return entry, data


def refresh(directory: str | Path) -> list[tuple[Regression, str]]:
    """Re-run every entry and record its trace hash under the current code. Entries whose
    outcome is no longer what they expect are left as they are, and returned with it."""
    entries, mismatched, fresh = read_entries(directory), [], []
    fingerprint = engine_fingerprint()
    for entry in entries:
        result, elapsed = entry.spec.run()
        now = outcome(run_json(entry.spec, result, elapsed))
        if now != entry.expect:
            mismatched.append((entry, now))
            fresh.append(entry)
        else:
            fresh.append(attrs.evolve(entry, trace_hash=result.trace_hash, engine=fingerprint))
    write_entries(directory, fresh)
    return mismatched


def replay_entry(entry: Regression, fingerprint: str) -> list[str]:
    """Run the entry; what is wrong with the run (nothing: the list is empty)."""
    result, elapsed = entry.spec.run()
    data = run_json(entry.spec, result, elapsed)
    now = outcome(data)
    problems = []
    if now != entry.expect:
        problem = f"{entry.spec.replay()} gave {now!r}, expected {entry.expect!r}"
        if now == OK:
            problem += (
                f" (first found: {entry.found!r}). Fixed? Record it as a passing seed: "
                f"raftcluster chaos regress {' '.join(entry.spec.flags())}"
            )
        problems.append(problem)
    if fingerprint == entry.engine and result.trace_hash != entry.trace_hash:
        problems.append(
            f"{entry.spec.replay()}: the code is the one that recorded the entry, but the "
            f"trace differs ({result.trace_hash} != {entry.trace_hash}): a run is no longer "
            "a function of its seed"
        )
    return problems
