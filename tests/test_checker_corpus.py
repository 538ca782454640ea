"""Every history of shared/corpora/linearizability gets its known verdict, with a true witness.

The corpus is found beside the repository, or else in the copy the repository keeps
(chaos/checker/corpus.py says where it looks); without either these tests fail at
collection, they do not skip. The whole corpus takes a
couple of seconds on an idle machine; the budget below is generous so that a loaded CI
machine still gives every verdict, and the test refuses "unknown".
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chaos.checker import Operation, Status, Verdict, check, load_history, make_model
from chaos.checker.corpus import (
    RELATIVE,
    REPO_ROOT,
    VENDORED,
    CorpusEntry,
    corpus_candidates,
    find_corpus,
    load_manifest,
)
from chaos.checker.model import Model
from chaos.checker.verdict import relax
from chaos.checker.witness import Witness

CORPUS = find_corpus()
ENTRIES = load_manifest(CORPUS)
ILLEGAL = [e for e in ENTRIES if not e.expected_linearizable]
BUDGET_S = 300.0  # never reached on any machine we know: a verdict, not a timing, is tested
# Illegal histories whose minimal core is found quickly (the core is best effort elsewhere).
CORE_FILES = [
    "etcd-register/etcd_000.jsonl",
    "etcd-register/etcd_040.jsonl",
    "knossos-register/bad/rethink-fail-smaller.jsonl",
    "knossos-register/bad/rethink-fail-minimal.jsonl",
    "kv/c10-bad.jsonl",
]


def test_the_corpus_is_complete() -> None:
    assert len(ENTRIES) == 230
    for entry in ENTRIES:
        assert (CORPUS / entry.file).is_file(), entry.file
    folders = {e.folder for e in ENTRIES}
    assert folders == {
        "etcd-register",
        "kv",
        "knossos-register",
        "knossos-mutex",
        "knossos-multi-register",
    }


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.file)
def test_verdict(entry: CorpusEntry) -> None:
    history = load_history(CORPUS / entry.file)
    model = make_model(entry.model, entry.options)
    result = check(history, model, timeout_s=BUDGET_S)
    assert result.verdict is not Verdict.UNKNOWN, f"no verdict: {result.reason}"
    assert result.verdict.value == entry.expected_verdict
    assert result.operations == len(history.operations)
    if result.verdict is Verdict.ILLEGAL:
        assert result.witness is not None
        return
    # The linearization found is a certificate: each partition's order replays legally,
    # respects real time, and holds every operation the model keeps that returned.
    assert result.witness is None
    by_id = {op.id: op for op in history.operations}
    placed: set[int] = set()
    for order in result.linearizations:
        ops = [by_id[i] for i in order]
        replay(model, ops)
        for a in range(len(ops)):
            for b in range(a + 1, len(ops)):
                assert not returned_before(ops[b], ops[a])
        placed.update(order)
    for op in history.operations:
        if returns(op) and model.prepare(op) is not None:
            assert op.id in placed, f"#{op.id} is missing"


@pytest.mark.parametrize("entry", ILLEGAL, ids=lambda e: e.file)
def test_dead_end_is_true(entry: CorpusEntry) -> None:
    """The witness's prefix is a legal linearization and nothing can follow it.

    Checked from the history itself, with the partition's model: the prefix respects real
    time and replays legally to the witness's state; every operation of the partition
    that returned before the blocked one did is in the prefix; the candidates are exactly
    the others called before that return; and each of them is illegal in that state.
    """
    history = load_history(CORPUS / entry.file)
    result = check(history, make_model(entry.model, entry.options), timeout_s=BUDGET_S)
    witness = result.witness
    assert witness is not None
    model = witness.model
    ops = witness.ops  # the failing partition's operations, by id
    prefix = [ops[i] for i in witness.prefix]
    state = replay(model, prefix)
    assert state == witness.state
    for a in range(len(prefix)):
        for b in range(a + 1, len(prefix)):
            assert not returned_before(prefix[b], prefix[a])
    blocked = ops[witness.blocked]
    assert blocked.id in witness.candidates and blocked.id not in witness.prefix
    assert blocked.complete is not None and blocked.status is not Status.INFO
    rest = [op for op in ops.values() if op.id not in set(witness.prefix)]
    for op in rest:
        if returns(op) and op.complete is not None:
            assert op.complete >= blocked.complete, f"#{op.id} returned first"
    called = {op.id for op in rest if op.call < blocked.complete}
    assert set(witness.candidates) == called
    for op_id in witness.candidates:
        assert not legal(model, ops[op_id], witness.state), f"#{op_id} is legal there"
    assert witness.explanation()
    assert witness.to_json()["blocked"] == blocked.id


@pytest.mark.parametrize("name", CORE_FILES)
def test_core_is_a_minimal_violation(name: str) -> None:
    entry = next(e for e in ENTRIES if e.file == name)
    history = load_history(CORPUS / entry.file)
    model = make_model(entry.model, entry.options)
    result = check(history, model, timeout_s=BUDGET_S, core_timeout_s=BUDGET_S)
    witness = result.witness
    assert witness is not None and witness.core is not None and witness.core_minimal
    core = set(witness.core)
    assert core, "a core is never empty"
    relaxed = relax(history.operations, core, model)
    assert check(relaxed, model, timeout_s=BUDGET_S).verdict is Verdict.ILLEGAL
    for op_id in core:
        fewer = relax(history.operations, core - {op_id}, model)
        assert check(fewer, model, timeout_s=BUDGET_S).verdict is Verdict.OK, op_id


def returns(op: Operation) -> bool:
    return op.status is not Status.INFO


def returned_before(a: Operation, b: Operation) -> bool:
    """Real-time order: `a` returned before `b` was called."""
    return returns(a) and a.complete is not None and a.complete < b.call


def replay(model: Model, ops: Sequence[Operation]) -> object:
    state = model.init()
    for op in ops:
        prepared = model.prepare(op)
        assert prepared is not None, f"#{op.id} is not one the model checks"
        ok, state = model.step(state, prepared.input, prepared.output)
        assert ok, f"#{op.id} is illegal in the replay"
    return state


def legal(model: Model, op: Operation, state: object) -> bool:
    prepared = model.prepare(op)
    assert prepared is not None
    return model.step(state, prepared.input, prepared.output)[0]


def test_witness_names_only_its_partition() -> None:
    entry = next(e for e in ENTRIES if e.file == "kv/c10-bad.jsonl")
    history = load_history(CORPUS / entry.file)
    result = check(history, make_model(entry.model, entry.options), timeout_s=BUDGET_S)
    witness: Witness | None = result.witness
    assert witness is not None
    keys = {witness.ops[i].key for i in (*witness.prefix, *witness.candidates)}
    assert len(keys) == 1


def test_the_repository_keeps_a_copy_of_the_shared_corpus_byte_for_byte() -> None:
    """The fallback for a machine without `shared/` holds every file of the manifest, and
    where the shared corpus is present too, the two are the same bytes."""
    vendored = REPO_ROOT / VENDORED
    assert corpus_candidates()[-1] == vendored
    kept = load_manifest(vendored)
    assert len(kept) == 230 and all((vendored / e.file).is_file() for e in kept)
    shared = [p for p in corpus_candidates()[:-1] if (p / "manifest.json").is_file()]
    for place in shared:
        files = sorted(p.relative_to(place) for p in place.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(vendored) for p in vendored.rglob("*") if p.is_file())
        for name in files:
            assert (place / name).read_bytes() == (vendored / name).read_bytes(), name
    assert RELATIVE.parts[-1] == VENDORED.parts[-1]
