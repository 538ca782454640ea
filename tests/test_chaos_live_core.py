"""The pure parts of the live mode: the seeded fault schedule, the history recorder and
the node timeline (no processes here: tests/test_chaos_live.py runs real ones)."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.checker import Verdict, check, history_from_events, make_model
from chaos.live import Observations, judge
from chaos.live.config import NEMESES, LiveConfig
from chaos.live.history import Recorder
from chaos.live.schedule import HOLD_MS, plan
from chaos.live.timeline import Timeline
from chaos.live.workload import next_op
from chaos.report import ClientOp, IntervalKind, OpType, Record, RunInfo, RunVerdict
from chaos.report.record import Engine, Fault, Mode
from statemachine.errors import InvalidArgument

nemeses = st.lists(st.sampled_from(NEMESES), min_size=1, max_size=4, unique=True)
node_sets = st.integers(1, 7).map(lambda n: tuple(range(1, n + 1)))


@given(st.integers(0, 2**63 - 1), nemeses, node_sets, st.integers(1_000, 120_000))
def test_the_schedule_is_a_function_of_the_seed_and_its_faults_never_overlap(
    seed: int, names: list[str], nodes: tuple[int, ...], duration_ms: int
) -> None:
    steps = plan(random.Random(seed), names, nodes, duration_ms=duration_ms, warmup_ms=1_000)
    again = plan(random.Random(seed), names, nodes, duration_ms=duration_ms, warmup_ms=1_000)
    assert steps == again
    for step, after in zip(steps, steps[1:], strict=False):
        assert step.end_ms < after.start_ms
    for step in steps:
        assert step.start_ms >= 1_000 and step.end_ms <= duration_ms
        assert step.nemesis in names and step.node in nodes
        if step.groups:
            assert sorted(n for g in step.groups for n in g) == list(nodes)
            assert all(step.groups)
        assert 0.0 <= step.drop_probability <= 1.0 and step.delay_ms >= 0


@given(st.integers(0, 2**32), nemeses, node_sets)
def test_a_run_long_enough_fires_every_nemesis_asked_for(
    seed: int, names: list[str], nodes: tuple[int, ...]
) -> None:
    enough_ms = 1_000 + len(names) * (HOLD_MS[1] + 1_500)
    steps = plan(random.Random(seed), names, nodes, duration_ms=enough_ms, warmup_ms=1_000)
    assert {s.nemesis for s in steps[: len(names)]} == set(names)


@given(st.integers(0, 2**32), st.integers(0, 5), st.integers(0, 999_999))
def test_register_writes_are_unique_per_client_and_count(
    seed: int, client: int, count: int
) -> None:
    rng = random.Random(seed)
    op = next_op(rng, "register", client, count, last_seen=7)
    if op.f == "write":
        assert op.value == (client + 1) * 1_000_000 + count
    if op.f == "cas":
        assert op.value == [7, (client + 1) * 1_000_000 + count]
    assert next_op(random.Random(seed), "register", client, count, None).f != "cas"


def test_config_refuses_unknown_nemeses_and_bad_sizes() -> None:
    with pytest.raises(InvalidArgument, match="--nemesis"):
        LiveConfig(nemeses=("partition", "flood"))
    with pytest.raises(InvalidArgument, match="--nodes"):
        LiveConfig(nodes=0)
    with pytest.raises(InvalidArgument, match="--duration"):
        LiveConfig(duration_ms=10)


def test_the_recorder_gives_the_checker_and_the_report_the_same_operations() -> None:
    recorder = Recorder()
    a = recorder.invoke(0, "write", 1, None, 0.0)
    b = recorder.invoke(1, "read", None, None, 1.5)  # overlaps the write
    recorder.complete(a, OpType.OK, 1, 2.0)
    recorder.complete(b, OpType.OK, None, 2.5)  # may read before the write
    c = recorder.invoke(0, "write", 2, None, 3.0)
    recorder.complete(c, OpType.INFO, None, 9.0, error="OutcomeUnknown")
    d = recorder.invoke(2, "read", None, None, 10.0)
    recorder.complete(d, OpType.OK, 2, 11.0)  # the unknown write did happen
    e = recorder.invoke(1, "read", None, None, 12.0)  # never answered
    ops = recorder.operations()
    assert [op.type for op in ops] == [OpType.OK] * 2 + [OpType.INFO, OpType.OK, OpType.INFO]
    assert ops[e].complete_ms is None and ops[c].complete_ms == 9.0
    history = history_from_events(recorder.events)
    assert check(history, make_model("register", {"initial": None})).verdict is Verdict.OK
    run = RunInfo(
        seed=1, engine=Engine.RAFTCLUSTER, mode=Mode.LIVE, nodes=(1,), duration_ms=12,
        nemeses=(), workload="register", replay="-", verdict=RunVerdict.OK,
    )  # fmt: skip
    Record(run, operations=ops)  # validates: one operation in flight per process


def test_the_recorder_history_can_be_illegal() -> None:
    recorder = Recorder()
    w = recorder.invoke(0, "write", 1, None, 0.0)
    recorder.complete(w, OpType.OK, 1, 1.0)
    r = recorder.invoke(1, "read", None, None, 2.0)
    recorder.complete(r, OpType.OK, None, 3.0)  # the write was answered: a stale read
    history = history_from_events(recorder.events)
    assert check(history, make_model("register", {"initial": None})).verdict is Verdict.ILLEGAL
    assert isinstance(recorder.operations()[0], ClientOp)


@given(
    st.lists(
        st.tuples(
            st.integers(1, 3),
            st.sampled_from(["leader", "follower", "candidate", "pre_candidate", None]),
            st.integers(1, 5),
        ),
        max_size=40,
    )
)
def test_the_timeline_gives_one_role_at_a_time_per_node(
    polls: list[tuple[int, str | None, int]],
) -> None:
    timeline = Timeline((1, 2, 3))
    for now, (node, role, term) in enumerate(polls):
        timeline.role(node, role, term, float(now))
    timeline.begin(1, IntervalKind.CRASHED, 5.0)
    intervals = timeline.intervals(float(len(polls) + 1))
    for node in (1, 2, 3):
        roles = [i for i in intervals if i.node == node and i.kind.value in ROLE_NAMES]
        for first, second in zip(roles, roles[1:], strict=False):
            assert first.end_ms <= second.start_ms
        assert all(i.term is not None for i in roles if i.kind is IntervalKind.LEADER)
    assert any(i.kind is IntervalKind.CRASHED and i.node == 1 for i in intervals)


ROLE_NAMES = {"leader", "follower", "candidate"}


def _observed(**changes: object) -> Observations:
    recorder = Recorder()
    w = recorder.invoke(0, "write", 1, None, 0.0)
    recorder.complete(w, OpType.OK, 1, 1.0)
    observed = Observations(
        LiveConfig(duration_ms=1_000), tuple(recorder.events), recorder.operations(),
        (), (), {"ops.ok": 1}, (), 2.0, 3.0, 4.0, "", 5.0, {}, (1, 2, 3), (),
    )  # fmt: skip
    return attrs.evolve(observed, **changes)


def test_judge_passes_a_run_that_healed_and_converged() -> None:
    judgement = judge(_observed(), replay="-")
    assert judgement.verdict is RunVerdict.OK
    assert {c.name: c.verdict for c in judgement.record.checkers} == {
        "linearizability": RunVerdict.OK,
        "liveness": RunVerdict.OK,
        "convergence": RunVerdict.OK,
        "stats": RunVerdict.OK,
    }


def test_judge_says_a_run_in_which_nothing_succeeded_after_the_last_heal_proved_nothing() -> None:
    fault = Fault("kill", 0.5, 2.0, (1, 2))  # healed at 2.0 ms; the only write ended at 1.0
    judgement = judge(_observed(faults=(fault,)), replay="-")
    assert judgement.verdict is RunVerdict.VACUOUS
    (stats,) = [c for c in judgement.record.checkers if c.name == "stats"]
    assert stats.verdict is RunVerdict.VACUOUS
    assert stats.reason == "no write succeeded after the last heal"


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"write_after_heal_ms": None}, "liveness"),
        ({"converged_after_heal_ms": None}, "convergence"),
        ({"divergence": "node 1: {'a': '1'}; node 2: {}"}, "convergence"),
    ],
)
def test_judge_reports_no_write_after_healing_and_diverged_replicas(
    changes: dict[str, object], kind: str
) -> None:
    judgement = judge(_observed(**changes), replay="-")
    assert judgement.verdict is RunVerdict.VIOLATION
    assert [v.kind for v in judgement.record.violations] == [kind]
