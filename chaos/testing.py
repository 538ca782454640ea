"""A simulator seed inside a Hypothesis test: your parts, workload and model, named by
import path, under seeded faults, within a time budget per example.

    from chaos.testing import simulator_test

    test_bank_under_faults = simulator_test(
        parts=("examples.bank:BANK",), workload="examples.bank:BankWorkload",
        max_examples=3, budget_s=20,
    )

`simulator_test(...)` returns a test function that Hypothesis feeds seeds: each example
runs one seed (`run_seed`) and fails with the violation or the error, and the
`raftcluster chaos run` command that replays the seed; a `vacuous` seed is rejected, not
counted (see `simulator_test`). `budget_s` is the
wall-clock deadline of one example (Hypothesis's `deadline`) and the linearizability
check's effort budget; keep `duration_ms` short enough to fit. Hypothesis does not
shrink seeds (a seed has no smaller version); it reports the failing one.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence

from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st

from chaos.campaign.spec import RunSpec
from chaos.checker.stats import VACUOUS
from chaos.sim import SimResult

MAX_SEED = 2**63 - 1


def spec_for(
    seed: int,
    *,
    parts: Sequence[str] = (),
    workload: str = "kv",
    model: str | None = None,
    nemesis: str = "random",
    nodes: int = 3,
    duration_ms: int = 5_000,
    budget_s: float = 10.0,
) -> RunSpec:
    """The `RunSpec` of one seed (its `replay()` is the command that reruns it)."""
    spec = RunSpec(
        seed=seed,
        nodes=nodes,
        duration_s=duration_ms / 1000,
        nemesis=nemesis,
        workload=workload,
        check_timeout_s=budget_s,
        parts=tuple(parts),
        model=model,
    )
    spec.validate()  # a bad path fails here, naming it
    return spec


def run_seed(seed: int, *, allow_vacuous: bool = False, **options: object) -> SimResult:
    """Run one seed (options as `spec_for`); AssertionError unless its verdict is ok (or
    vacuous, with `allow_vacuous`), saying what was found and how to replay it."""
    spec = spec_for(seed, **options)  # type: ignore[arg-type]
    result, _ = spec.run()
    verdict = result.verdict
    if verdict == "ok" or (verdict == VACUOUS and allow_vacuous):
        return result
    found = result.violation or result.error
    if verdict == VACUOUS and result.stats is not None:
        found = {"proved nothing": list(result.stats.gaps)}
    lin = result.linearizability
    if found is None and lin is not None:
        found = {"linearizability": lin.verdict.value, "reason": lin.reason}
    raise AssertionError(f"seed {seed}: {verdict}: {found}\n  replay: {spec.replay()}")


def simulator_test(
    *,
    max_examples: int = 5,
    budget_s: float = 10.0,
    allow_vacuous: bool = False,
    **options: object,
) -> Callable[[], None]:
    """A Hypothesis test that runs `max_examples` seeds (options as `spec_for`), each
    within `budget_s` wall seconds. Bad import paths fail when the test is made.

    A seed whose verdict is `vacuous` proved nothing (its faults kept a majority down
    while they were on, say): it neither passes nor fails; Hypothesis rejects it and draws
    another seed, so the `max_examples` that count each proved something. If Hypothesis
    cannot find enough such seeds, it fails the test (Unsatisfiable). `allow_vacuous`
    counts a vacuous seed as a pass instead."""
    spec_for(0, budget_s=budget_s, **options)  # type: ignore[arg-type]

    @settings(
        max_examples=max_examples,
        deadline=datetime.timedelta(seconds=budget_s),
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=False,
    )
    @given(seed=st.integers(0, MAX_SEED))
    def test(seed: int) -> None:
        result = run_seed(seed, allow_vacuous=True, budget_s=budget_s, **options)
        if result.verdict == VACUOUS and not allow_vacuous:
            reject()  # proved nothing: not an example (see the docstring)

    return test
