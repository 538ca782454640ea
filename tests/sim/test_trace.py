"""The trace's hash: one line per event (its kind and fields, a fault's event as
canonical CBOR), whatever the batches."""

from __future__ import annotations

import hashlib

import cbor2
import pytest

from chaos.sim import trace as trace_module
from chaos.sim.events import CycleDone, Event, FaultInjected, Sent, plain
from chaos.sim.faults import Partition
from chaos.sim.trace import Trace

EVENTS: list[tuple[type[Event], tuple[object, ...]]] = [
    (Sent, (12_345, 1, 2, "AppendEntries", 7, 310, (12_350, 12_361))),
    (Sent, (0, 1000, 3, "Submit", 2**40, 0, ())),
    (Sent, (5, 4, 1004, "Written", 1, 70_000, (9,))),
    (CycleDone, (99, 3, (4, 2, 17), 18, 17, 0, 0, 4, 1)),
    (CycleDone, (2**33, 5, None, 0, 0, 2**20, 300, 0, 0)),
]


def expected_line(kind: type[Event], values: tuple[object, ...]) -> bytes:
    return (repr((kind.KIND, *values)) + "\n").encode()


def test_the_hash_is_that_of_one_line_per_event() -> None:
    trace = Trace()
    digest = hashlib.sha256()
    for kind, values in EVENTS:
        trace.add_values(kind, *values)
        digest.update(expected_line(kind, values))
    assert trace.hexdigest() == digest.hexdigest()
    assert trace.records == [kind(*values) for kind, values in EVENTS]


def test_an_event_with_a_fault_is_hashed_as_its_canonical_cbor() -> None:
    event = FaultInjected(7, Partition(((1, 2), (3,))))
    trace = Trace()
    trace.add(event)
    data = cbor2.dumps([event.KIND, 7, plain(event.fault)], canonical=True)
    line = (repr((event.KIND, data)) + "\n").encode()
    assert trace.hexdigest() == hashlib.sha256(line).hexdigest()


@pytest.mark.parametrize("read_every", [1, 7, trace_module.HASH_BATCH_EVENTS, 10**9])
def test_the_digest_does_not_depend_on_where_a_batch_ends(read_every: int) -> None:
    """(The digest may be read before the run ends: the batches then end early.)"""
    whole, read = Trace(keep=False), Trace(keep=False)
    for i, (kind, values) in enumerate(EVENTS * 700):
        whole.add_values(kind, *values)
        read.add_values(kind, *values)
        if i % read_every == 0:
            read.hexdigest()
    assert read.hexdigest() == whole.hexdigest()
    assert read.count == whole.count == 5 * 700 and read.records == []
