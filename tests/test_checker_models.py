"""The models: options, what each operation means, the promises the search relies on.

Their semantics are cross-checked against an independent statement in
test_checker_bruteforce.py; here are the rules stated one by one, the `read_only` and
`only_in` promises as properties, partitions, errors, and the docs' example model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.checker import (
    MODELS,
    ModelError,
    Operation,
    Status,
    Verdict,
    check,
    freeze,
    history_from_events,
    make_model,
)
from chaos.checker.model import Model
from chaos.checker.search import ANYWHERE

ROOT = Path(__file__).resolve().parent.parent


def op(f: str, status: str = "ok", value: Any = None, output: Any = None, **kw: Any) -> Operation:
    return Operation(
        id=kw.get("id", 0),
        process=kw.get("process", 1),
        f=f,
        key=freeze(kw.get("key")),
        input=freeze(value),
        output=freeze(output),
        status=Status(status),
        call=0,
        complete=1,
        line=7,
    )


def legal(model: Model, operation: Operation, state: Any) -> bool | None:
    """None when the model leaves the operation out; else whether it is legal in `state`."""
    prepared = model.prepare(operation)
    if prepared is None:
        return None
    return model.step(state, prepared.input, prepared.output)[0]


def test_make_model_rejects_unknown_models_and_options() -> None:
    with pytest.raises(
        ModelError, match=r"unknown model \(known: .*kv, multi-register, mutex, register"
    ):
        make_model("queue")
    with pytest.raises(ModelError, match="unknown option colour"):
        make_model("register", {"colour": "red"})
    with pytest.raises(ModelError, match="fail must be one of did-not-happen, definite"):
        make_model("register", {"fail": "sometimes"})
    with pytest.raises(ModelError, match="read_nil must be one of"):
        make_model("multi-register", {"read_nil": 3})
    with pytest.raises(ModelError, match="initial must be a string"):
        make_model("kv", {"initial": 0})
    with pytest.raises(ModelError, match="initial must be an object"):
        make_model("multi-register", {"initial": [1]})


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("register", {"initial": None, "fail": "definite", "read_nil": "only-while-absent"}),
        ("register", {"initial": 0, "fail": "did-not-happen", "read_nil": "unknown-value"}),
        ("kv", {"initial": ""}),
        ("mutex", {"fail": "did-not-happen"}),
        (
            "multi-register",
            {"initial": {"x": 0}, "fail": "did-not-happen", "read_nil": "unknown-value"},
        ),
    ],
)
def test_options_are_reported_as_given(name: str, options: dict[str, Any]) -> None:
    assert make_model(name, options).options() == options


def test_register_rules() -> None:
    definite = make_model("register", {"initial": None, "fail": "definite"})
    loose = make_model("register", {"initial": 0, "read_nil": "unknown-value"})
    assert legal(definite, op("read", output=None), None) is True  # absent
    assert legal(definite, op("read", output=None), 3) is False
    assert legal(loose, op("read", output=None), 3) is None  # unknown value: no constraint
    assert legal(definite, op("read", "fail"), 3) is None
    assert legal(definite, op("read", "info"), 3) is None
    assert legal(definite, op("write", "fail", 2), 3) is None
    assert legal(definite, op("cas", "ok", [1, 2]), 1) is True
    assert legal(definite, op("cas", "ok", [1, 2]), 3) is False
    assert legal(definite, op("cas", "info", [1, 2]), 3) is False  # took effect: it matched
    assert legal(definite, op("cas", "fail", [1, 2]), 3) is True  # saw a different value
    assert legal(definite, op("cas", "fail", [1, 2]), 1) is False
    assert legal(loose, op("cas", "fail", [1, 2]), 1) is None  # did not happen
    prepared = definite.prepare(op("cas", "ok", [1, 2]))
    assert prepared is not None
    assert definite.step(1, prepared.input, prepared.output) == (True, 2)


def test_mutex_rules() -> None:
    definite = make_model("mutex", {"fail": "definite"})
    assert legal(definite, op("acquire", process=4), None) is True
    assert legal(definite, op("acquire", process=4), 5) is False
    assert legal(definite, op("release", process=4), 4) is True
    assert legal(definite, op("release", process=4), 5) is False  # only by the holder
    assert legal(definite, op("acquire", "fail", process=4), 5) is True  # saw it held
    assert legal(definite, op("acquire", "fail", process=4), None) is False
    assert legal(definite, op("release", "fail", process=4), 4) is False
    assert legal(make_model("mutex"), op("acquire", "fail"), None) is None


def test_kv_and_multi_register_rules() -> None:
    kv = make_model("kv")
    assert legal(kv, op("get", key="a", output=""), ()) is True
    assert legal(kv, op("get", key="a", output="x"), (("a", "x"),)) is True
    assert legal(kv, op("get", key="a", output="x"), (("b", "x"),)) is False
    appended = kv.prepare(op("append", value="y", key="a"))
    assert appended is not None
    assert kv.step((("a", "x"),), appended.input, None) == (True, (("a", "xy"),))
    assert legal(kv, op("put", "fail", "z", key="a"), ()) is None
    multi = make_model("multi-register", {"initial": {"x": 0}})
    txn = op(
        "txn",
        value=[["read", "x", None], ["write", "y", 1]],
        output=[["read", "x", 0], ["write", "y", 1]],
    )
    assert legal(multi, txn, ()) is True
    assert (
        legal(multi, op("txn", value=[["read", "y", None]], output=[["read", "y", None]]), ())
        is True
    )
    info = multi.prepare(op("txn", "info", [["read", "x", None], ["write", "y", 2]]))
    assert info is not None and info.input == (("write", "y", 2),)
    assert multi.prepare(op("txn", "info", [["read", "x", None]])) is None


@pytest.mark.parametrize(
    ("name", "operation", "words"),
    [
        ("register", op("push", value=1), "line 7: no operation 'push'"),
        ("register", op("cas", value=[1]), "cas takes [expected, new]"),
        ("kv", op("get", output=""), "get needs a key"),
        ("kv", op("put", value=3, key="a"), "values are strings"),
        ("mutex", op("lock"), "no operation 'lock'"),
        ("multi-register", op("txn", value=[["inc", "x", 1]]), "is not"),
        ("multi-register", op("txn", value=3), "txn takes a list"),
        (
            "multi-register",
            op("txn", value=[["read", "x", None]], output=[["read", "y", 1]]),
            "differ from the invoke's",
        ),
    ],
)
def test_operations_a_model_cannot_read_are_errors(
    name: str, operation: Operation, words: str
) -> None:
    model = make_model(name)
    with pytest.raises(ModelError) as caught:
        model.for_partition([operation]).prepare(operation)
    assert words in str(caught.value)


values = st.sampled_from([None, 0, 1, 2])


@given(
    st.sampled_from(["read", "write", "cas"]),
    st.sampled_from(["ok", "fail", "info"]),
    st.tuples(values, values),
    values,
    values,
    st.sampled_from(["did-not-happen", "definite"]),
)
def test_register_keeps_the_promises_the_search_relies_on(
    f: str, status: str, args: tuple[Any, Any], output: Any, state: Any, fail: str
) -> None:
    model = make_model("register", {"fail": fail})
    value = list(args) if f == "cas" else args[0]
    prepared = model.prepare(op(f, status, value, output))
    if prepared is None:
        return
    ok, new = model.step(state, prepared.input, prepared.output)
    if prepared.read_only:
        assert new == state  # read_only: the state never changes
    if prepared.only_in is not ANYWHERE:
        assert prepared.read_only and ok == (state == prepared.only_in)


@given(st.sampled_from(["", "x", "xy"]), st.sampled_from(["", "x", "xy"]))
def test_a_kv_partition_model_keeps_the_promises(state: str, seen: str) -> None:
    get = op("get", key="k", output=seen)
    model = make_model("kv").for_partition([get])
    prepared = model.prepare(get)
    assert prepared is not None and prepared.read_only and prepared.only_in == seen
    assert model.step(state, prepared.input, prepared.output) == (state == seen, state)


def test_partitions() -> None:
    kv = make_model("kv")
    ops = [op("get", key=k, output="", id=i) for i, k in enumerate(["a", "b", "a", 1])]
    groups = kv.partition(ops)
    assert sorted(len(g) for g in groups) == [1, 1, 2]
    assert all(len({(type(o.key), o.key) for o in g}) == 1 for g in groups)
    multi = make_model("multi-register")

    def txn(status: str, *micro: tuple[str, str, Any], id: int) -> Operation:
        asked = [[f, k, None if f == "read" else v] for f, k, v in micro]
        return op("txn", status, asked, [list(m) for m in micro], id=id)

    txns = [
        txn("ok", ("read", "x", 1), id=0),
        txn("ok", ("read", "y", 1), ("write", "z", 1), id=1),
        txn("ok", ("write", "w", 1), id=2),
        txn("ok", ("write", "z", 2), ("read", "x", 1), id=3),
        # The model keeps only the writes of a pending transaction, and nothing of a failed
        # one: they tie no other registers together.
        txn("info", ("read", "w", None), ("write", "v", 1), id=4),
        txn("fail", ("read", "x", None), ("write", "w", 2), id=5),
    ]
    assert sorted(sorted(o.id for o in g) for g in multi.partition(txns)) == [
        [0, 1, 3],
        [2],
        [4],
        [5],
    ]


def test_every_model_is_registered() -> None:
    assert {"register", "kv", "mutex", "multi-register"} <= set(MODELS)


def test_the_docs_example_model_works() -> None:
    """docs/checker.md's "Adding a model" example, run as written."""
    text = (ROOT / "docs" / "checker.md").read_text()
    match = re.search(r"<!-- example: counter-model -->\n```python\n(.*?)```", text, re.S)
    assert match, "the example is marked in docs/checker.md"
    exec(compile(match.group(1), "docs/checker.md", "exec"), {})  # noqa: S102
    counter = make_model("counter", {"initial": 5})

    def history(*events: tuple[int, str, str, Any]) -> Any:
        return history_from_events(
            {"process": p, "type": t, "f": f, "value": v} for p, t, f, v in events
        )

    racing = history(
        (1, "invoke", "add", 2),
        (2, "invoke", "read", None),
        (2, "ok", "read", 7),
        (1, "info", "add", 2),
        (3, "invoke", "read", None),
        (3, "ok", "read", 5),
    )
    assert check(racing, counter).verdict is Verdict.ILLEGAL  # 7, then 5: cannot go back
    lost = history(
        (1, "invoke", "add", 2),
        (1, "info", "add", 2),
        (3, "invoke", "read", None),
        (3, "ok", "read", 5),
    )
    assert check(lost, counter).verdict is Verdict.OK  # the add may never have happened
    with pytest.raises(ModelError, match="unknown option"):
        make_model("counter", {"start": 1})


def test_a_partition_leaves_out_the_pending_writes_nothing_can_see() -> None:
    """The rules; that leaving them out never changes a verdict is test_checker_bruteforce's."""

    def kept(name: str, pending: Operation, *others: Operation, **options: Any) -> bool:
        model = make_model(name, options)
        assert model.prepare(pending) is not None  # the whole model leaves nothing out
        return model.for_partition([pending, *others]).prepare(pending) is not None

    def get(seen: str) -> Operation:
        return op("get", output=seen, key="k", id=2)

    # kv: a put is seen by a get whose string starts with it, an append by one containing it.
    put, append = op("put", "info", "ab", key="k"), op("append", "info", "ab", key="k")
    assert kept("kv", put, get("abc")) and kept("kv", append, get("cabd"))
    assert not kept("kv", put, get("cab"), get("a")) and not kept("kv", append, get("ba"))
    assert kept("kv", op("put", "ok", "ab", key="k"))  # one that returned is never left out
    # register: a value is seen by a read of it or a cas expecting it; while a definitely
    # failed cas is there, every value counts as seen. A pending cas sets its new value.
    write, cas = op("write", "info", 5), op("cas", "info", [1, 5])
    assert not kept("register", write) and not kept("register", cas, op("read", output=1))
    assert kept("register", write, op("read", output=5))
    assert kept("register", write, op("cas", "ok", [5, 6]))
    assert not kept("register", write, op("cas", "fail", [1, 6]))  # did not happen
    assert kept("register", write, op("cas", "fail", [1, 6]), fail="definite")
    nil = op("write", "info", None)
    assert kept("register", nil, op("read", output=None))
    assert not kept("register", nil, op("read", output=None), read_nil="unknown-value")
    # multi-register: a transaction is seen when a read of one of its writes is.
    txn = op("txn", "info", [["write", "x", 1], ["write", "y", 2]])
    reads = [["read", "x", None], ["read", "y", None]]
    assert kept("multi-register", txn, op("txn", value=reads, output=[reads[0], ["read", "y", 2]]))
    assert not kept(
        "multi-register", txn, op("txn", value=reads, output=[reads[0], ["read", "y", 1]])
    )


def test_the_register_writes_every_value_nothing_reads_as_one_and_a_witness_shows_it_real() -> None:
    events = [
        {"process": 0, "type": "invoke", "f": "write", "value": 5},
        {"process": 0, "type": "ok", "f": "write", "value": 5},
        {"process": 0, "type": "invoke", "f": "write", "value": 6},
        {"process": 0, "type": "ok", "f": "write", "value": 6},
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": 1, "type": "ok", "f": "read", "value": 7},
    ]
    history = history_from_events(events)
    model = make_model("register", {"initial": 7})
    part = model.for_partition(history.operations)
    five, six = (part.prepare(o) for o in history.operations[:2])
    assert five is not None and six is not None and five.input == six.input  # one value
    assert part.init() == 7  # read: kept as it is
    result = check(history, model)
    assert result.verdict is Verdict.ILLEGAL and result.witness is not None
    assert result.witness.state == 6  # the value the prefix really leaves
    assert result.witness.to_json()["state"] == 6


@pytest.mark.parametrize(
    ("name", "write", "read"),
    [
        ("kv", ("put", "a", "k"), ("get", "a", "k")),
        ("register", ("write", 1, None), ("read", 1, None)),
        ("multi-register", ("txn", [["write", "x", 1]], None), ("txn", [["read", "x", 1]], None)),
    ],
)
def test_a_partition_model_checks_a_history_by_what_that_history_sees(
    name: str, write: tuple[str, Any, Any], read: tuple[str, Any, Any]
) -> None:
    """A partition model given another history rebuilds what it leaves out from that one."""

    def event(process: int, kind: str, f: str, value: Any, key: Any) -> dict[str, Any]:
        return {"process": process, "type": kind, "f": f, "value": value, "key": key}

    asked = [[f, k, None] for f, k, _ in read[1]] if name == "multi-register" else None
    events = [
        event(0, "invoke", write[0], write[1], write[2]),
        event(0, "info", write[0], write[1], write[2]),
        event(1, "invoke", read[0], asked, read[2]),
        event(1, "ok", read[0], read[1], read[2]),
    ]
    history = history_from_events(events)
    alone = make_model(name).for_partition(history.operations[:1])  # sees nothing
    assert alone.prepare(history.operations[0]) is None
    assert check(history, alone).verdict is Verdict.OK  # the read saw the write
