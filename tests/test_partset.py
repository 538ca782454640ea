"""The part-set fingerprint: what it is built from, stable across processes, and the
difference it names between two part sets."""

from __future__ import annotations

import os
import subprocess
import sys

import attrs

from statemachine.cluster import ClusterState
from statemachine.codec import Message, tagged
from statemachine.partset import MARK_BYTES, PartSet
from tests.user_parts.counter import COUNTER, COUNTER_V2, Add, Counter, ReadTotal


@tagged(10150)
@attrs.frozen
class Sub(Message):
    by: int


@tagged(10151)
@attrs.frozen
class Other(Message):
    pass


def fingerprint(*specs: object) -> str:
    return ClusterState(parts=specs).fingerprint  # type: ignore[arg-type]


def test_built_in_parts_are_in_the_set_and_user_parts_change_it() -> None:
    stock = ClusterState().part_set
    assert [p.name for p in stock.parts] == ["groups", "kv", "sessions"]
    assert len(stock.marks) == 3 * MARK_BYTES
    kv = next(p for p in stock.parts if p.name == "kv")
    assert (100, "Put") in kv.commands and (106, "Changes") in kv.queries
    with_counter = ClusterState(parts=[COUNTER]).part_set
    assert len(with_counter.marks) == 4 * MARK_BYTES
    assert with_counter.fingerprint != stock.fingerprint
    assert with_counter.describe().startswith("counter v1, groups v1, kv v1, sessions v1 (")


def test_name_version_tags_and_class_names_each_change_the_fingerprint() -> None:
    base = fingerprint(COUNTER)
    variants = [
        attrs.evolve(COUNTER, name="counter2"),
        COUNTER_V2,
        attrs.evolve(COUNTER, commands=(Add, Sub)),  # one more tag
        attrs.evolve(COUNTER, queries=(ReadTotal, Other)),
        attrs.evolve(COUNTER, commands=(Sub,)),  # another class and tag
    ]
    prints = [fingerprint(v) for v in variants]
    assert base not in prints and len(set(prints)) == len(prints)
    # What does not matter: the factory, the order of classes, the order of registration.
    assert fingerprint(attrs.evolve(COUNTER, factory=lambda: Counter())) == base
    two = attrs.evolve(COUNTER, commands=(Add, Sub))
    assert fingerprint(attrs.evolve(two, commands=(Sub, Add))) == fingerprint(two)
    other = COUNTER_V2.__class__("other", Counter, (Other,))
    assert fingerprint(COUNTER, other) == fingerprint(other, COUNTER)


def test_the_fingerprint_is_the_same_in_another_process() -> None:
    code = (
        "from statemachine.cluster import ClusterState\n"
        "from tests.user_parts.counter import COUNTER\n"
        "print(ClusterState(parts=[COUNTER]).fingerprint)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == fingerprint(COUNTER)


def test_the_difference_names_the_part_and_what_differs() -> None:
    stock = ClusterState().part_set
    counter = ClusterState(parts=[COUNTER]).part_set
    v2 = ClusterState(parts=[COUNTER_V2]).part_set
    retagged = ClusterState(parts=[attrs.evolve(COUNTER, commands=(Add, Sub))]).part_set
    assert counter.difference(counter.marks) == ""
    assert (
        counter.difference(stock.marks, here="node 1", there="node 2")
        == "node 2 has no part 'counter' (node 1 runs v1)"
    )
    assert stock.difference(counter.marks, there="node 2") == (
        "node 2 runs a part here does not have (v1)"
    )
    assert counter.difference(v2.marks, here="node 1", there="node 3") == (
        "part 'counter' is v1 on node 1, v2 on node 3"
    )
    assert counter.difference(retagged.marks, there="node 4") == (
        "part 'counter' v1 has other message tags or classes on node 4 "
        "(on here: commands Add=10100; queries ReadTotal=10102)"
    )
    assert "not a multiple of 16" in counter.difference(b"x" * 5)


def test_a_part_set_is_built_from_specs_in_any_order() -> None:
    assert PartSet.of([COUNTER]).marks == ClusterState(parts=[COUNTER]).part_set.marks[:16]
