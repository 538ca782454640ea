"""The one JSON mechanism of the run record (chaos.report.convert): every kind of type
hint it follows, a field's own reader, and records and corrupted documents."""

from __future__ import annotations

import copy
import enum
import json
from typing import Annotated, Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.report import convert, record
from chaos.report import reading as rd
from chaos.report.errors import RecordError
from chaos.report.reading import JsonValue, Limit, Pairs, Signed, Text
from chaos.report.record import Record
from tests.report_records import json_values, names, records, texts
from tests.test_report_record import DELETE, paths, replace

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Inner:
    name: str
    size: float = 0.0

    def __attrs_post_init__(self) -> None:
        rd.require(self.size >= 0, "size", "must not be negative")


def _even(value: Any, path: str) -> int:
    number: int = rd.count(value, path)
    rd.require(number % 2 == 0, path, "must be even")
    return number


@attrs.frozen
class Toy:
    """One field of every kind the converter reads."""

    count: int
    signed: Signed
    flag: bool
    ratio: float
    label: str
    note: Text
    colour: Colour
    maybe: int | None
    nothing: None
    items: Annotated[tuple[int, ...], Limit(3)]
    point: tuple[int, str]
    names: Pairs[str, int] = attrs.field(converter=rd.sorted_pairs)
    by_index: Pairs[int, Text] = attrs.field(converter=rd.sorted_pairs)
    inner: Inner
    inners: tuple[Inner, ...]
    value: JsonValue = attrs.field(converter=rd.frozen_json, metadata=convert.meta(missing=None))
    even: int = attrs.field(default=0, metadata=convert.meta(_even))
    listed: tuple[str, ...] = attrs.field(default=(), metadata=convert.meta(required=True))


finite = st.floats(allow_nan=False, allow_infinity=False)
inners = st.builds(Inner, names, st.floats(0, 1e9))
toys = st.builds(
    Toy,
    count=st.integers(0, rd.MAX_INT),
    signed=st.integers(-rd.MAX_INT - 1, rd.MAX_INT),
    flag=st.booleans(),
    ratio=finite,
    label=names,
    note=texts,
    colour=st.sampled_from(Colour),
    maybe=st.none() | st.integers(0, 9),
    nothing=st.none(),
    items=st.lists(st.integers(0, 9), max_size=3).map(tuple),
    point=st.tuples(st.integers(0, 9), names),
    names=st.dictionaries(names, st.integers(0, 9), max_size=3),
    by_index=st.dictionaries(st.integers(0, 10**6), texts, max_size=3),
    inner=inners,
    inners=st.lists(inners, max_size=2).map(tuple),
    value=json_values,
    even=st.integers(0, 100).map(lambda n: 2 * n),
    listed=st.lists(names, max_size=2).map(tuple),
)


@SETTINGS
@given(toys)
def test_every_kind_of_hint_round_trips(toy: Toy) -> None:
    data = convert.to_json(toy)
    text = json.dumps(data, allow_nan=False)  # plain JSON data, nothing else
    assert convert.from_json(Toy, json.loads(text)) == toy


def sample_toy() -> dict[str, Any]:
    toy = Toy(
        1, -1, True, 0.5, "a", "", Colour.RED, None, None, (1,), (2, "b"),
        {"k": 1}, {10: "ten", 2: "two"}, Inner("i"), (Inner("j", 1.5),), [1, {"x": None}],
    )  # fmt: skip
    data: dict[str, Any] = convert.to_json(toy)
    return data


def test_how_each_kind_is_written() -> None:
    assert sample_toy() == {
        "count": 1, "signed": -1, "flag": True, "ratio": 0.5, "label": "a", "note": "",
        "colour": "red", "maybe": None, "nothing": None, "items": [1], "point": [2, "b"],
        "names": {"k": 1}, "by_index": {"2": "two", "10": "ten"},
        "inner": {"name": "i", "size": 0.0}, "inners": [{"name": "j", "size": 1.5}],
        "value": [1, {"x": None}], "even": 0, "listed": [],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "path", "words"),
    [
        ("count", -1, "count", "between 0 and"),
        ("count", True, "count", "must be an integer, not a boolean"),
        ("signed", 2**63, "signed", "between"),
        ("flag", 1, "flag", "must be true or false"),
        ("ratio", "1", "ratio", "must be a number, not a string"),
        ("ratio", float("inf"), "ratio", "finite"),
        ("label", "", "label", "must not be empty"),
        ("label", "x" * 201, "label", "over the limit of 200"),
        ("note", 3, "note", "must be a string"),
        ("colour", "green", "colour", "must be one of red, blue, not 'green'"),
        ("maybe", "1", "maybe", "must be an integer"),
        ("nothing", 0, "nothing", "must be null"),
        ("items", [1, 2, 3, 4], "items", "has 4 items, over the limit of 3"),
        ("items", {"0": 1}, "items", "must be a list, not an object"),
        ("point", [1], "point", "must have 2 items, not 1"),
        ("point", [1, 2], "point[1]", "must be a string"),
        ("names", {"a": -1}, "names.a", "between 0"),
        ("names", {"": 1}, "names", "must not be empty"),
        ("names", [["a", 1]], "names", "must be an object, not a list"),
        ("by_index", {"x": "y"}, "by_index.x", "keys must be non-negative integers"),
        ("by_index", {"²": "y"}, "by_index.²", "keys must be non-negative integers"),
        ("by_index", {"01": "y"}, "by_index.01", "without leading zeros"),
        ("inner", {"name": "a", "zz": 1}, "inner.zz", "is not a field of this object"),
        ("inner", {"name": "a", "size": -1.0}, "inner.size", "must not be negative"),
        ("inners", [{"size": 1}], "inners[0].name", "is missing"),
        ("value", {"a": [float("nan")]}, "value.a[0]", "finite"),
        ("even", 3, "even", "must be even"),
        ("listed", DELETE, "listed", "is missing"),
        ("zz", 1, "zz", "is not a field of this object"),
    ],
)
def test_each_kind_refuses_what_it_does_not_hold(
    key: str, value: Any, path: str, words: str
) -> None:
    with pytest.raises(RecordError) as caught:
        convert.from_json(Toy, replace(sample_toy(), (key,), value))
    assert caught.value.path == path
    assert words in caught.value.reason, caught.value.reason


def test_defaults_when_absent() -> None:
    data = sample_toy()
    del data["value"], data["even"]  # `missing` for the one, the attrs default for the other
    toy = convert.from_json(Toy, data)
    assert (toy.value, toy.even) == (None, 0)
    with pytest.raises(RecordError, match="^top.count: is missing$"):
        convert.from_json(Toy, {}, "top")
    with pytest.raises(RecordError, match="^top: must be an object, not a list$"):
        convert.from_json(Toy, [], "top")


def test_a_hint_it_cannot_read_is_a_programming_error() -> None:
    @attrs.frozen
    class Either:
        value: int | str

    @attrs.frozen
    class Dict:
        value: dict[str, int]

    for cls in (Either, Dict):
        with pytest.raises(TypeError, match="no reader"):
            convert.from_json(cls, {"value": 1})


RECORD_CLASSES = [
    record.Record,
    record.RunInfo,
    record.Interval,
    record.Fault,
    record.ClientOp,
    record.LinearizabilityWitness,
    record.Violation,
    record.CheckerRun,
]


@pytest.mark.parametrize("cls", RECORD_CLASSES[1:], ids=lambda c: c.__name__)
def test_no_record_class_converts_itself(cls: type) -> None:
    assert not {"from_json", "to_json"} & set(vars(cls)), "conversions go through convert"


@SETTINGS
@given(records())
def test_records_round_trip(original: Record) -> None:
    data = convert.to_json(original)
    assert convert.from_json(Record, data) == original
    assert Record.from_json(json.loads(json.dumps(data, allow_nan=False))) == original


def place_of(error: RecordError, document: dict[str, Any]) -> bool:
    """Whether the error's path names a value of `document`, or a field of one of its
    objects (a field that is missing, or whose default is refused there)."""
    present = {p for p, _, _ in paths(document)} | {""}
    return error.path in present or error.path.rpartition(".")[0] in present


@st.composite
def corrupted(draw: st.DrawFn) -> dict[str, Any]:
    """A record's document with one value replaced, deleted, or one key or item added."""
    document = draw(records()).to_json()
    places = sorted((p, k) for p, k, _ in paths(document))
    _, keys = draw(st.sampled_from(places))
    how = draw(st.sampled_from(("replace", "delete", "add")))
    if how == "replace":
        return replace(document, keys, draw(json_values | st.sampled_from([-1, 2**64, ""])))
    if how == "delete":
        return replace(document, keys, DELETE)
    document = copy.deepcopy(document)
    target: Any = document
    for key in keys:
        target = target[key]
    if isinstance(target, dict):
        target[draw(names)] = draw(json_values)
    elif isinstance(target, list):
        target.append(draw(json_values))
    return document


@SETTINGS
@given(corrupted())
def test_a_corrupted_document_is_refused_with_a_path_or_read_whole(
    document: dict[str, Any],
) -> None:
    try:
        read = Record.from_json(document)
    except RecordError as e:
        assert place_of(e, document), (e.path, e.reason)
        assert str(e).startswith(e.path or "record:")
    else:  # the change was still a record (a name for another name): it reads back whole
        assert Record.from_json(read.to_json()) == read
