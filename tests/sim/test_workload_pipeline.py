"""Pipelined sessions in the kv workload: several history processes share one client
(one session), so the session has several writes in flight, answered out of order, while
each process keeps one operation at a time (what the checker needs)."""

from __future__ import annotations

import random
from collections import Counter

from chaos.sim import KvWorkload, SimConfig, simulate
from chaos.sim.workload import SessionShape


def shapes(seed: int) -> tuple[SessionShape, ...]:
    return KvWorkload().draw_shapes(random.Random(seed), 3)


def test_the_seed_draws_the_shape_and_the_reader_stays_alone() -> None:
    drawn = [shapes(seed) for seed in range(40)]
    assert all(s[0] == SessionShape() for s in drawn)  # the reader's session
    assert all(2 <= s[1].depth <= KvWorkload.MAX_DEPTH for s in drawn)
    assert {s[2].depth for s in drawn} == {1, 2, 3, 4}
    assert {s[1].bursty for s in drawn} == {True, False}
    assert drawn == [shapes(seed) for seed in range(40)]  # a pure function of the seed
    assert KvWorkload(pipelined=False).draw_shapes(random.Random(1), 3) == (SessionShape(),) * 3


def test_a_think_time_keeps_a_session_about_as_busy_as_one_process() -> None:
    assert SessionShape().max_think_ms(200) == 200
    assert SessionShape(3).max_think_ms(200) == 600
    # A burst starts at the first of three think times (a third of 1200 ms on average).
    assert SessionShape(3, bursty=True).max_think_ms(200) == 1200


def test_processes_share_sessions_and_each_runs_one_operation_at_a_time() -> None:
    seen_depth = Counter[int]()  # the most writes in flight on one session, per run
    out_of_order = 0  # writes of one session completed before an earlier one
    for seed in range(1, 4):
        workload = KvWorkload()
        result = simulate(SimConfig(seed=seed, nodes=3, duration_ms=10_000), workload=workload)
        assert result.ok, result.violation or result.error
        depth = sum(shape.depth for shape in workload.shapes)
        assert workload.processes == depth > len(workload.shapes)
        session_of = {}
        for shape_index, shape in enumerate(workload.shapes):
            for _ in range(shape.depth):
                session_of[len(session_of)] = shape_index
        open_ops: dict[int, int] = {}  # process -> the invoke's position
        writes: dict[int, list[int]] = {}  # session -> its puts in flight, by invoke order
        most = 0
        for position, event in enumerate(workload.history()):
            session = session_of[event.process]
            if event.type == "invoke":
                assert event.process not in open_ops, "two operations of one process"
                open_ops[event.process] = position
                if event.f == "put":
                    writes.setdefault(session, []).append(position)
                    most = max(most, len(writes[session]))
                continue
            started = open_ops.pop(event.process)
            if event.f == "put":
                in_flight = writes[session]
                out_of_order += in_flight[0] != started
                in_flight.remove(started)
        seen_depth[most] += 1
    assert max(seen_depth) >= 2, seen_depth
    assert out_of_order > 0
