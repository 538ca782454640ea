"""What a simulator run is made of, as the command line gives it: `RunSpec`.

One spec is one seed with its settings. It builds the simulator's config, nemesis and
workload, runs, and says the exact command line that replays it. `chaos run`, campaigns
and regression seeds all share it, so a replay command always means the same run.

A user's state machine is named by import paths (`raftcluster.loading`): `parts`
(``--part bank:BANK``, repeatable), the workload (``--workload bank:BankWorkload``) and
the model (``--model bank:BankModel``; without it the workload's own). A regression
seed keeps them, so its replay imports the same modules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import attrs

from chaos.checker import make_model
from chaos.sim import SimConfig, SimResult, simulate
from chaos.sim.catalog import make_nemesis, make_workload
from chaos.sim.named import parts_of
from chaos.sim.nemesis import Nemesis
from chaos.sim.planted import PLANTS
from chaos.sim.workload import Workload
from statemachine.errors import InvalidArgument

DEFAULT_NODES = 5
DEFAULT_DURATION_S = 60.0
DEFAULT_HEAL_TIMEOUT_S = 30.0
DEFAULT_NEMESIS = "random"
DEFAULT_WORKLOAD = "kv"
DEFAULT_CHECK_TIMEOUT_S = 30.0
DEFAULT_ENGINE = "raftcluster"
ENGINES = ("raftcluster", "pysyncobj")
MAX_SECONDS = 10**7


def _ms(seconds: float, flag: str) -> int:
    if not 0 <= seconds <= MAX_SECONDS:
        raise InvalidArgument(flag, f"must be between 0 and {MAX_SECONDS} seconds")
    return round(seconds * 1000)


def _paths(paths: Iterable[str]) -> tuple[str, ...]:
    if isinstance(paths, str):
        raise InvalidArgument("--part", "expected a list of import paths, got one str")
    return tuple(paths)


@attrs.frozen
class RunSpec:
    """One seed and its settings (seconds as on the command line)."""

    seed: int
    nodes: int = DEFAULT_NODES
    duration_s: float = DEFAULT_DURATION_S
    heal_timeout_s: float = DEFAULT_HEAL_TIMEOUT_S
    nemesis: str = DEFAULT_NEMESIS
    workload: str = DEFAULT_WORKLOAD
    check_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S  # effort seconds; 0 skips the check
    plant: str | None = None  # a planted bug (chaos/sim/planted.py) instead of the real part
    engine: str = DEFAULT_ENGINE  # the system under test: ours, or pysyncobj
    # The user's parts, as import paths ("bank:BANK"), registered on every node.
    parts: tuple[str, ...] = attrs.field(default=(), converter=_paths)
    model: str | None = None  # the model that judges the history (None: the workload's)

    def config(self, keep_trace: bool = False) -> SimConfig:
        """The simulator's config. Raises `InvalidArgument` (or ValueError from SimConfig)."""
        return SimConfig(
            seed=self.seed,
            nodes=self.nodes,
            duration_ms=_ms(self.duration_s, "--duration"),
            heal_timeout_ms=_ms(self.heal_timeout_s, "--heal-timeout"),
            keep_trace=keep_trace,
            parts=self.parts,
        )

    def validate(self) -> None:
        """Raise `InvalidArgument` / `ValueError` if the spec cannot be run (a path that
        does not load: `PartLoadError` or `ModelError`, both `ClusterError`s)."""
        self.config()
        make_nemesis(self.nemesis)
        parts_of(self.parts)
        make_workload(self.workload)
        if self.model is not None:
            make_model(self.model)
        if not 0 <= self.check_timeout_s <= MAX_SECONDS:
            raise InvalidArgument("--check-timeout", "must be between 0 and 10^7 seconds")
        if self.plant is not None and self.plant not in PLANTS:
            raise InvalidArgument("--plant", f"{self.plant!r} is not one of {sorted(PLANTS)}")
        if self.engine not in ENGINES:
            raise InvalidArgument("--engine", f"{self.engine!r} is not one of {list(ENGINES)}")
        if self.engine != DEFAULT_ENGINE and self.plant is not None:
            raise InvalidArgument("--plant", "plants a bug in our engine: not with --engine")
        if self.engine == "pysyncobj" and (self.parts or self.model is not None):
            raise InvalidArgument("--part", "the pysyncobj engine runs the built-in kv part only")
        if self.engine == "pysyncobj" and self.workload != "kv":
            raise InvalidArgument("--workload", "the pysyncobj engine runs the kv workload only")
        if self.engine == "pysyncobj" and "membership" in self.nemesis.split(","):
            raise InvalidArgument("--nemesis", "membership is not driven on the pysyncobj engine")

    def run(self, keep_trace: bool = False) -> tuple[SimResult, float]:
        """Run the seed; the result and the wall seconds it took."""
        config = self.config(keep_trace)
        nemesis, workload = make_nemesis(self.nemesis), make_workload(self.workload)
        # Torn tails are expected here by the hundred: the counts report them, not the log.
        logging.getLogger("raftcluster.storage").setLevel(logging.ERROR)
        started = time.perf_counter()
        result = self._simulate(config, nemesis, workload)
        return result, time.perf_counter() - started

    def _simulate(self, config: SimConfig, nemesis: Nemesis, workload: Workload) -> SimResult:
        check_timeout_s = self.check_timeout_s or None
        if self.engine == "pysyncobj":
            # Imported only when asked for: pysyncobj is a test dependency, not a runtime one.
            try:
                from chaos.sim.pysyncobj_engine import simulate_pysyncobj
            except ImportError as e:
                raise InvalidArgument("--engine", f"pysyncobj needs pysyncobj ({e})") from e
            return simulate_pysyncobj(config, nemesis, workload, check_timeout_s=check_timeout_s)
        return simulate(
            config,
            nemesis,
            workload,
            check_timeout_s=check_timeout_s,
            plant=self.plant,
            model=self.model,
        )

    def flags(self) -> list[str]:
        """The command-line flags that give this spec (defaults left out, but for the
        seed, nodes and duration, which a reader wants to see)."""
        out = ["--seed", str(self.seed), "--nodes", str(self.nodes)]
        out += ["--duration", f"{self.duration_s:g}"]
        if self.heal_timeout_s != DEFAULT_HEAL_TIMEOUT_S:
            out += ["--heal-timeout", f"{self.heal_timeout_s:g}"]
        if self.nemesis != DEFAULT_NEMESIS:
            out += ["--nemesis", self.nemesis]
        if self.workload != DEFAULT_WORKLOAD:
            out += ["--workload", self.workload]
        if self.check_timeout_s != DEFAULT_CHECK_TIMEOUT_S:
            out += ["--check-timeout", f"{self.check_timeout_s:g}"]
        if self.plant is not None:
            out += ["--plant", self.plant]
        if self.engine != DEFAULT_ENGINE:
            out += ["--engine", self.engine]
        for part in self.parts:
            out += ["--part", part]
        if self.model is not None:
            out += ["--model", self.model]
        return out

    def replay(self) -> str:
        """The exact command that replays this run."""
        return " ".join(["raftcluster chaos run", *self.flags()])

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["parts"] = list(self.parts)  # JSON's list, as a reader gets it back
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        """From `to_json()`'s dict; raises `InvalidArgument` on a field it does not know."""
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidArgument("spec", f"unknown fields {sorted(unknown)}")
        return cls(**data)
