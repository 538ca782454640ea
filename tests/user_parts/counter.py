"""A user part for the tests: a counter that never goes below zero, loaded by import path.

`COUNTER` is the part (``tests.user_parts.counter:COUNTER``); `COUNTER_V2` is the same
part under another version, `PARTS` both a list and `make_parts` a factory of it, for
the loader's kinds. Tags 10100-10199 belong to this module.
"""

from __future__ import annotations

import attrs

from statemachine.codec import Message, int_range, tagged
from statemachine.errors import Rejected
from statemachine.part import ApplyContext, PartSpec, expect_snapshot

NAME = "counter"
BELOW_ZERO = 10_100  # the counter's own failure code


@tagged(10100)
@attrs.frozen
class Add(Message):
    by: int = attrs.field(validator=int_range(-1000, 1000))


@tagged(10101)
@attrs.frozen
class Total(Message):
    value: int


@tagged(10102)
@attrs.frozen
class ReadTotal(Message):
    pass


@tagged(10103)
@attrs.frozen
class CounterSnapshot(Message):
    value: int


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def apply(self, command: Message, context: ApplyContext) -> Message:
        assert isinstance(command, Add)
        if self.value + command.by < 0:
            raise Rejected("the counter cannot go below 0", code=BELOW_ZERO, detail=self.value)
        self.value += command.by
        context.emit(Total(self.value))
        return Total(self.value)

    def query(self, query: Message) -> Message:
        return Total(self.value)

    def snapshot(self) -> Message:
        return CounterSnapshot(self.value)

    def restore(self, snapshot: Message) -> None:
        self.value = expect_snapshot(snapshot, CounterSnapshot, NAME).value


COUNTER = PartSpec(NAME, Counter, commands=(Add,), queries=(ReadTotal,))
COUNTER_V2 = attrs.evolve(COUNTER, version=2)
PARTS = [COUNTER]


def make_parts() -> tuple[PartSpec, ...]:
    return (COUNTER,)
