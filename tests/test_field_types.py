"""Every message checks its field types when built, naming the field; so do the errors a
part raises (`Rejected`...), so that a typo in a part's error path is a failure result on
every replica, not an exception at apply."""

from __future__ import annotations

import enum

import attrs
import pytest

from statemachine.cluster import ClusterState
from statemachine.codec import Message, decode, encode, tagged
from statemachine.errors import (
    Code,
    DecodeError,
    FieldTypeError,
    InvalidArgument,
    LimitExceeded,
    Rejected,
)
from statemachine.kv import Compare, CompareOp, CompareTarget, Put, Txn
from statemachine.part import ApplyContext, PartSpec
from statemachine.results import Failure, failure_of


class Colour(enum.IntEnum):
    RED = 1
    BLUE = 2


@tagged(10160)
@attrs.frozen
class Every(Message):
    number: int
    flag: bool
    data: bytes
    text: str
    ratio: float
    colour: Colour
    inner: Put
    many: tuple[bytes, ...]
    pair: tuple[int, str]
    maybe: bytes | None
    any_message: Message


def every(**changes: object) -> Every:
    fields: dict[str, object] = {
        "number": 1, "flag": True, "data": b"d", "text": "t", "ratio": 0.5,
        "colour": Colour.RED, "inner": Put(b"k", b"v"), "many": (b"a", b"b"),
        "pair": (1, "x"), "maybe": None, "any_message": Failure(1, "f"),
    }  # fmt: skip
    return Every(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("number", "1", "expected int, got str '1'"),
        ("number", True, "expected int, got bool True"),
        ("number", 1.0, "expected int, got float 1.0"),
        ("number", 2**64, r"expected int, got int 18446744073709551616 \(outside the 64-bit"),
        ("flag", 1, "expected bool, got int 1"),
        ("data", "d", "expected bytes, got str 'd'"),
        ("data", bytearray(b"d"), "expected bytes, got bytearray"),
        ("text", b"t", "expected str, got bytes b't'"),
        ("ratio", "0.5", "expected float, got str"),
        ("ratio", 2**60, "expected float, got int"),
        ("colour", "RED", "expected Colour, got str 'RED'"),
        ("inner", Failure(1, "f"), "expected Put, got Failure"),
        ("many", [b"a"], r"expected tuple\[bytes, \.\.\.\], got list \[b'a'\]"),
        ("many", (b"a", "b"), r"expected tuple\[bytes, \.\.\.\], got tuple"),
        ("pair", (1,), r"expected tuple\[int, str\], got tuple \(1,\)"),
        ("pair", ("x", 1), r"expected tuple\[int, str\]"),
        ("maybe", "x", r"expected bytes \| None, got str 'x'"),
        ("any_message", b"x", "expected Message, got bytes"),
    ],
)
def test_a_field_of_the_wrong_type_is_named_when_built(
    field: str, value: object, expected: str
) -> None:
    with pytest.raises(FieldTypeError, match=f"^Every.{field}: {expected}") as caught:
        every(**{field: value})
    assert caught.value.field == f"Every.{field}"
    assert isinstance(caught.value, InvalidArgument) and isinstance(caught.value, TypeError)


def test_what_encodes_to_an_equal_message_is_accepted() -> None:
    built = every(number=Code.REJECTED, ratio=3, maybe=b"m", colour=Colour.BLUE)
    assert decode(encode(built), Every) == built
    assert decode(encode(every()), Every) == every()
    assert attrs.evolve(built, number=5).number == 5
    with pytest.raises(FieldTypeError, match="Every.text"):
        attrs.evolve(built, text=None)


def test_a_validator_that_meets_the_wrong_type_still_names_the_field() -> None:
    # Validators run first (the limits); one that cannot take the value's type fails on
    # it with an error of its own, which the check replaces with one naming the field.
    with pytest.raises(FieldTypeError, match="^Failure.code: expected int, got str 'x'"):
        Failure("x", "message")  # type: ignore[arg-type]
    with pytest.raises(FieldTypeError, match="^Put.key: expected bytes, got int 5"):
        Put(5, b"v")  # type: ignore[arg-type]
    with pytest.raises(FieldTypeError, match=r"^Txn.compares: expected tuple\[Compare, \.\.\.\]"):
        Txn([Compare(b"k", CompareTarget.VERSION, CompareOp.EQUAL, 1)], (), ())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        Put(b"k")  # type: ignore[call-arg]


def test_the_limits_still_apply() -> None:
    with pytest.raises(LimitExceeded):
        Failure(1, "x" * 5000)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: Rejected("no", detail="text"), "Rejected.detail: expected int, got str 'text'"),
        (lambda: Rejected("no", code=True), "Rejected.code: expected int, got bool True"),
        (lambda: Rejected(b"no"), "Rejected.message: expected str, got bytes b'no'"),
        (lambda: InvalidArgument("f", 3), "InvalidArgument.reason: expected str, got int 3"),
        (lambda: DecodeError(None, "r"), "DecodeError.field: expected str, got NoneType None"),
        (lambda: LimitExceeded("f", "9", 10), "LimitExceeded.limit: expected int, got str '9'"),
    ],
)
def test_errors_check_their_fields_when_built(build: object, expected: str) -> None:
    with pytest.raises(FieldTypeError) as caught:
        build()  # type: ignore[operator]
    assert str(caught.value) == expected
    assert Rejected("fine", code=Code.COMPACTED, detail=3).detail == 3


@tagged(10161)
@attrs.frozen
class Withdraw(Message):
    amount: int


class Careless:
    """A part whose error path has a typo: `detail` given a text."""

    def apply(self, command: Message, context: ApplyContext) -> Message:
        raise Rejected("not enough money", code=10_600, detail="balance 3")  # type: ignore[arg-type]

    def query(self, query: Message) -> Message:
        raise NotImplementedError

    def snapshot(self) -> Message:
        return Failure(1, "none")

    def restore(self, snapshot: Message) -> None:
        pass


def test_a_typo_in_a_parts_error_path_is_a_failure_result_on_every_replica() -> None:
    replicas = [ClusterState(parts=[PartSpec("careless", Careless, (Withdraw,))]) for _ in "ab"]
    results = [r.apply(1, encode(Withdraw(5))).result for r in replicas]
    assert results[0] == results[1]
    failure = decode(results[0], Failure)
    assert failure.code == Code.INVALID_ARGUMENT
    assert failure.message == "Rejected.detail: expected int, got str 'balance 3'"
    assert failure_of(FieldTypeError("X.y", "int", "str")).code == Code.INVALID_ARGUMENT
