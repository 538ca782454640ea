"""The report page: well formed, self-contained, escaped, deterministic, bounded in size,
and showing what matters (the violation's operations, the witness in words)."""

from __future__ import annotations

import hashlib
import math
import os
import re
import subprocess
import sys

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from chaos.report.example import build
from chaos.report.fmt import nice_step
from chaos.report.html import render
from chaos.report.latency import YScale
from chaos.report.record import Fault, Interval, IntervalKind, Record, dumps, loads
from chaos.report.timeline import MAX_DRAWN_OPS, MAX_LANES
from tests.report_records import (
    HOSTILE,
    hostile_record,
    large_record,
    parse_page,
    records,
    resource_loads,
)

# A 10,000-operation run must give a page a browser opens at once.
MAX_PAGE_BYTES = 2_000_000


@pytest.fixture(scope="module")
def example() -> Record:
    return build(7).record


def test_the_example_page_is_well_formed_and_loads_nothing(example: Record) -> None:
    page = render(example)
    checker = parse_page(page)
    assert checker.errors == [] and checker.stack == []
    assert resource_loads(checker) == []
    assert "http://" not in page and "https://" not in page
    assert page.startswith("<!DOCTYPE html>")
    assert [tag for tag, _ in checker.tags].count("script") == 1
    (csp,) = [a for a in checker.elements("meta") if a.get("http-equiv")]
    assert "default-src 'none'" in (csp["content"] or "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_any_record_gives_a_well_formed_deterministic_page(record: Record) -> None:
    page = render(record)
    checker = parse_page(page)
    assert checker.errors == [] and checker.stack == []
    assert resource_loads(checker) == []
    assert render(loads(dumps(record))) == page


def test_hostile_values_are_shown_not_run() -> None:
    page = render(hostile_record())
    checker = parse_page(page)
    assert checker.errors == [] and checker.stack == []
    assert resource_loads(checker) == []
    tags = [tag for tag, _ in checker.tags]
    assert tags.count("script") == 1 and tags.count("style") == 1
    assert "img" not in tags and "iframe" not in tags
    handlers = [
        name for _, attributes in checker.tags for name in attributes if name.startswith("on")
    ]
    assert handlers == []
    # Nothing from the record reaches the script or the style sheet.
    assert "alert" not in "".join(checker.texts["script"] + checker.texts["style"])
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    for hostile in HOSTILE:
        assert hostile not in page or not re.search(r"[<>\"']", hostile), hostile


def test_violation_operations_are_marked(example: Record) -> None:
    checker = parse_page(render(example))
    classes = {
        attributes["id"]: (attributes.get("class") or "").split()
        for _, attributes in checker.tags
        if (attributes.get("id") or "").startswith("op-")
    }
    (violation,) = example.violations
    assert violation.witness is not None
    named = set(violation.ops) | set(violation.witness.candidates)
    assert named
    for index in named:
        assert {"hl", "blk"} & set(classes[f"op-{index}"]), index
    assert "blk" in classes[f"op-{violation.witness.blocked}"]
    unnamed = set(range(len(example.operations))) - named
    assert all(not {"hl", "blk"} & set(classes[f"op-{i}"]) for i in unnamed)


def test_the_witness_is_explained_in_words(example: Record) -> None:
    page = render(example)
    (violation,) = example.violations
    witness = violation.witness
    assert witness is not None
    assert f"put <b>{len(witness.prefix)}</b> operations in a legal order" in page
    assert f'href="#op-{witness.blocked}"' in page
    assert "the history is not linearizable" in page
    assert "core of" in page


def test_ten_thousand_operations_stay_small_and_keep_the_violation() -> None:
    record = large_record(10_000, 16)
    page = render(record)
    assert len(page.encode()) < MAX_PAGE_BYTES
    assert f"more than {MAX_DRAWN_OPS:,}" in page  # the page says it aggregated
    checker = parse_page(page)
    assert checker.errors == [] and checker.stack == []
    ids = {a.get("id") for _, a in checker.tags}
    for index in record.violations[0].ops:
        assert f"op-{index}" in ids  # violation operations are still drawn one by one


def test_many_processes_share_lanes() -> None:
    record = large_record(2_000, MAX_LANES + 36)
    page = render(record)
    assert f"{MAX_LANES + 36} processes share {MAX_LANES} client lanes" in page
    lanes = re.findall(r'class="lanel">(process \d+|p\d+ \+\d+)<', page)
    assert len(lanes) == MAX_LANES and "p0 +1" in lanes


def test_same_record_same_bytes_in_fresh_interpreters(example: Record, tmp_path: object) -> None:
    """No dict, set or hash order leaks into the page: two interpreters with different
    hash seeds render the example's record to the same bytes."""
    code = (
        "import hashlib, sys\n"
        "from chaos.report.record import loads\n"
        "from chaos.report.html import render\n"
        "page = render(loads(sys.stdin.buffer.read()))\n"
        "print(hashlib.sha256(page.encode()).hexdigest())\n"
    )
    digests = set()
    for seed in ("1", "2"):
        run = subprocess.run(
            [sys.executable, "-c", code],
            input=dumps(example).encode(),
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=120,
            check=True,
        )
        digests.add(run.stdout.decode().strip())
    digests.add(hashlib.sha256(render(example).encode()).hexdigest())
    assert len(digests) == 1


def test_the_engines_settings_are_in_the_summary(example: Record) -> None:
    run = attrs.evolve(example.run, settings={"pre_vote": True, "election_timeout_ms": 250})
    page = render(attrs.evolve(example, run=run))
    assert (
        '<p class="facts settings">raftcluster settings: election_timeout_ms <b>250</b>'
        " \u00b7 pre_vote <b>true</b></p>" in page
    )
    assert "settings:" not in render(attrs.evolve(example, run=attrs.evolve(run, settings={})))


def test_wall_clock_fields_do_not_reach_the_page(example: Record) -> None:
    other = attrs.evolve(example, run=attrs.evolve(example.run, wall={"started": "tomorrow"}))
    assert render(other) == render(example)


@pytest.mark.soak
def test_a_record_at_the_schemas_limits_stays_under_four_megabytes() -> None:
    record = large_record(200_000, 64)
    intervals = tuple(
        Interval(1 + k % 3, IntervalKind.FOLLOWER, k * 0.3, k * 0.3 + 0.3, k)
        for k in range(200_000)
    )
    faults = tuple(
        Fault("partition", k * 0.6, k * 0.6 + 0.5, (1, 2, 3), "{1} | {2,3}", ((1,), (2, 3)))
        for k in range(100_000)
    )
    page = render(attrs.evolve(record, intervals=intervals, faults=faults))
    assert len(page.encode()) < 4_000_000
    assert "The timeline draws the first 1,000 of 100,000 faults" in page


def test_scales_survive_spans_and_latencies_that_underflow() -> None:
    """Found by the test above: a run of 5e-324 ms (a denormal), and an operation of that
    latency beside one of 1 ms, made the scales take log10(0)."""
    assert nice_step(5e-324, 14) == 1.0
    assert nice_step(float("inf"), 4) == 1.0
    assert nice_step(1000.0, 4) == 500.0
    scale = YScale.fit([5e-324, 1.0])
    ticks = scale.ticks()
    assert scale.log and ticks[0] > 0 and ticks[-1] >= 1.0
    assert all(math.isfinite(scale.y(v)) for v in (5e-324, 1.0))
