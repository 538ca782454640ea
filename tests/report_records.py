"""Run records for the report tests: Hypothesis strategies for valid ones, a large one,
a hostile one, and an HTML checker (well-formedness and resource loads)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import attrs
from hypothesis import strategies as st

from chaos.report.record import (
    CheckerRun,
    ClientOp,
    Engine,
    Fault,
    Interval,
    IntervalKind,
    LinearizabilityWitness,
    Mode,
    OpType,
    Record,
    RunInfo,
    RunVerdict,
    Violation,
)

# ---------------------------------------------------------------------------------------
# Strategies

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
times = st.integers(0, 20_000) | st.floats(0, 20_000, allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | texts


@st.composite
def intervals(draw: st.DrawFn, nodes: tuple[int, ...]) -> Interval:
    kind = draw(st.sampled_from(IntervalKind))
    start = draw(times)
    term = (
        draw(st.integers(0, 50))
        if kind is IntervalKind.LEADER
        else draw(st.none() | st.integers(0, 50))
    )
    return Interval(draw(st.sampled_from(nodes)), kind, start, start + draw(times), term)


@st.composite
def faults(draw: st.DrawFn, nodes: tuple[int, ...]) -> Fault:
    start = draw(times)
    end = draw(st.none() | times.map(lambda t: start + t))
    cut = draw(st.lists(st.sampled_from(nodes), unique=True, min_size=1))
    groups: tuple[tuple[int, ...], ...] = ()
    if len(cut) > 1 and draw(st.booleans()):
        split = draw(st.integers(1, len(cut) - 1))
        groups = (tuple(cut[:split]), tuple(cut[split:]))
    kind = draw(st.sampled_from(("partition", "kill", "clock-skew")) | names)
    return Fault(kind, start, end, tuple(cut), draw(texts), groups)


@st.composite
def operations(draw: st.DrawFn, nodes: tuple[int, ...], max_ops: int) -> tuple[ClientOp, ...]:
    """Per process, one operation after another; then all in order of call."""
    drafts = []
    for process in range(draw(st.integers(0, 4))):
        t: float = draw(times)
        for n in range(draw(st.integers(0, max_ops // 2))):
            kind = draw(st.sampled_from(OpType))
            latency = draw(times)
            last = n == max_ops // 2 - 1
            answered = kind is not OpType.INFO or not draw(st.booleans())
            if not answered and not last:
                answered = True  # only a process's last operation may stay unanswered
            complete = t + latency if answered else None
            drafts.append((t, process, kind, complete))
            t = (complete if complete is not None else t) + draw(times)
            if complete is None:
                break
    drafts.sort(key=lambda d: (d[0], d[1]))
    return tuple(
        ClientOp(
            index=i,
            process=process,
            f=draw(st.sampled_from(("read", "write", "cas")) | names),
            input=draw(json_values),
            output=draw(json_values),
            type=kind,
            invoke_ms=t,
            complete_ms=complete,
            node=draw(st.none() | st.sampled_from(nodes)),
            key=draw(st.none() | st.integers(0, 9) | texts),
            error=draw(st.none() | texts),
        )
        for i, (t, process, kind, complete) in enumerate(drafts)
    )


@st.composite
def witnesses(draw: st.DrawFn, count: int) -> LinearizabilityWitness:
    ids = st.integers(0, count - 1)
    candidates = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    prefix = draw(st.lists(ids, max_size=6, unique=True))
    core = draw(st.none() | st.lists(ids, max_size=4, unique=True).map(tuple))
    named = sorted(set(prefix) | set(candidates) | set(core or ()))
    described = draw(st.lists(st.sampled_from(named), unique=True))
    return LinearizabilityWitness(
        partition=draw(st.integers(0, 3)),
        prefix=tuple(prefix),
        state=draw(json_values),
        blocked=draw(st.sampled_from(candidates)),
        candidates=tuple(candidates),
        core=core,
        core_minimal=draw(st.booleans()),
        explanation=draw(texts),
        descriptions={i: draw(texts) for i in described},
    )


@st.composite
def violations(draw: st.DrawFn, nodes: tuple[int, ...], count: int) -> Violation:
    ops = draw(st.lists(st.integers(0, count - 1), max_size=4)) if count else []
    witness = draw(st.none() | witnesses(count)) if count else None
    return Violation(
        kind=draw(st.sampled_from(("linearizability", "liveness")) | names),
        message=draw(texts),
        time_ms=draw(st.none() | times),
        nodes=tuple(draw(st.lists(st.sampled_from(nodes), unique=True))),
        ops=tuple(ops),
        witness=witness,
    )


@st.composite
def records(draw: st.DrawFn, max_ops: int = 12) -> Record:
    nodes = tuple(draw(st.lists(st.integers(0, 40), min_size=1, max_size=6, unique=True)))
    ops = draw(operations(nodes, max_ops))
    found = tuple(draw(st.lists(violations(nodes, len(ops)), max_size=2)))
    verdict = (
        RunVerdict.VIOLATION
        if found
        else draw(st.sampled_from((RunVerdict.OK, RunVerdict.UNKNOWN)))
    )
    run = RunInfo(
        seed=draw(st.integers(-(2**63), 2**63 - 1)),
        engine=draw(st.sampled_from(Engine)),
        mode=draw(st.sampled_from(Mode)),
        nodes=nodes,
        duration_ms=draw(times),
        nemeses=tuple(draw(st.lists(names, max_size=3))),
        workload=draw(names),
        replay=draw(texts),
        verdict=verdict,
        counts=draw(st.dictionaries(names, st.integers(0, 10**6), max_size=4)),
        wall=draw(st.dictionaries(names, scalars, max_size=3)),
        settings=draw(st.dictionaries(names, scalars, max_size=3)),
    )
    checkers = draw(
        st.lists(
            st.builds(
                CheckerRun,
                names,
                st.sampled_from(RunVerdict),
                st.none() | names,
                st.dictionaries(texts, json_values, max_size=2),
                texts,
            ),
            max_size=2,
        )
    )
    return Record(
        run=run,
        intervals=tuple(draw(st.lists(intervals(nodes), max_size=6))),
        faults=tuple(draw(st.lists(faults(nodes), max_size=4))),
        operations=ops,
        violations=found,
        checkers=tuple(checkers),
        trace_hash=draw(st.sampled_from(("", "ab" * 32))),
        notes=tuple(draw(st.lists(texts, max_size=2))),
    )


# ---------------------------------------------------------------------------------------
# Built records


def minimal_record(**changes: Any) -> Record:
    run = RunInfo(
        seed=1,
        engine=Engine.RAFTCLUSTER,
        mode=Mode.SIM,
        nodes=(1, 2, 3),
        duration_ms=1000,
        nemeses=(),
        workload="register",
        replay="raftcluster chaos run --seed 1",
        verdict=RunVerdict.OK,
    )
    return attrs.evolve(Record(run), **changes)


def large_record(operations: int, processes: int, seed: int = 3) -> Record:
    """`operations` register operations over 60 s, one violation naming a few of them."""
    rng = random.Random(seed)
    duration = 60_000
    per = operations // processes
    drafts = []
    for process in range(processes):
        for k in range(per):
            t = (k + rng.random() * 0.5) * duration / per
            latency = rng.uniform(1, 0.4 * duration / per)
            kind = rng.choices((OpType.OK, OpType.FAIL, OpType.INFO), (90, 8, 2))[0]
            drafts.append((round(t, 3), process, kind, round(t + latency, 3)))
    drafts.sort(key=lambda d: (d[0], d[1]))
    ops = tuple(
        ClientOp(i, p, "write", i % 7, None, kind, t, c, rng.choice((1, 2, 3)))
        for i, (t, p, kind, c) in enumerate(drafts)
    )
    named = (len(ops) // 2, len(ops) // 2 + 1, len(ops) - 3)
    witness = LinearizabilityWitness(0, (0, 1, 2), 3, named[0], named, None, False, "because")
    violation = Violation(
        "linearizability", "not linearizable", ops[named[0]].complete_ms, (1,), named, witness
    )
    nodes = (1, 2, 3)
    intervals = [Interval(1, IntervalKind.LEADER, 0, duration, 1)]
    intervals += [Interval(n, IntervalKind.FOLLOWER, 0, duration, 1) for n in (2, 3)]
    faults = [Fault("partition", 10_000, 20_000, nodes, "{1} | {2,3}", ((1,), (2, 3)))]
    return minimal_record(
        run=attrs.evolve(minimal_record().run, duration_ms=duration, verdict=RunVerdict.VIOLATION),
        intervals=tuple(intervals),
        faults=tuple(faults),
        operations=ops,
        violations=(violation,),
    )


HOSTILE = (
    '<script>alert("x")</script>',
    '"><img src=x onerror=alert(1)>',
    "</style><style>*{display:none}</style>",
    "</title></svg><iframe src=https://evil.example/>",
    "' onmouseover='alert(1)",
    "https://evil.example/x.js",
    "&amp; &lt; ]]> <!-- -->",
)


def hostile_record() -> Record:
    """Every free text and value of a record is a hostile string."""
    bad = " ".join(HOSTILE)
    ops = (
        ClientOp(0, 0, bad, {"<k>": bad}, bad, OpType.OK, 10, 20, 1, bad, bad),
        ClientOp(1, 1, "read", None, bad, OpType.INFO, 15, None, None),
    )
    witness = LinearizabilityWitness(0, (1,), bad, 0, (0,), (0,), True, bad, {0: bad})
    return minimal_record(
        run=attrs.evolve(
            minimal_record().run,
            nemeses=(bad,),
            workload=bad[:200],
            replay=bad,
            verdict=RunVerdict.VIOLATION,
            counts={bad[:200]: 3, "faults." + bad[:100]: 1},
            wall={"started": bad},
            settings={bad[:200]: bad, "pre_vote": True},
        ),
        intervals=(Interval(1, IntervalKind.LEADER, 0, 100, 1),),
        faults=(Fault(bad[:200], 5, None, (1, 2), bad, ((1,), (2,))),),
        operations=ops,
        violations=(Violation(bad[:200], bad, 20, (1,), (0, 1), witness),),
        checkers=(CheckerRun(bad[:200], RunVerdict.VIOLATION, bad[:200], {bad: bad}, bad),),
        trace_hash=bad[:200],
        notes=(bad,),
    )


# ---------------------------------------------------------------------------------------
# Reading the HTML back

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "wbr"}
RESOURCE_ATTRIBUTES = {
    "src",
    "href",
    "xlink:href",
    "action",
    "formaction",
    "poster",
    "data",
    "srcset",
    "background",
}


class PageChecker(HTMLParser):
    """Well-formedness (every tag closed, in order) and what would load a resource."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, list[str]] = {"script": [], "style": []}

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs_)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs_)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] in self.texts:
            self.texts[self.stack[-1]].append(data)

    def elements(self, tag: str) -> Iterator[dict[str, str | None]]:
        return (attributes for name, attributes in self.tags if name == tag)


def parse_page(page: str) -> PageChecker:
    checker = PageChecker()
    checker.feed(page)
    checker.close()
    return checker


def resource_loads(checker: PageChecker) -> list[str]:
    """Everything in the page that would make a browser fetch something."""
    found = []
    for tag, attributes in checker.tags:
        if tag in {"link", "iframe", "img", "object", "embed", "audio", "video", "image", "use"}:
            found.append(f"<{tag}>")
        for name, value in attributes.items():
            if name in RESOURCE_ATTRIBUTES and not (value or "").startswith("#"):
                found.append(f"<{tag} {name}={value!r}>")
    for style in checker.texts["style"]:
        lowered = style.lower()
        if "@import" in lowered or lowered.replace("url(#", "").count("url("):
            found.append("style loads a url")
    return found
