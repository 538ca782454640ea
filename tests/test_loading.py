"""Import paths for user parts: every kind a path may name, and every error naming the path.

The modules with errors are real files written into `tmp_path` and put on `sys.path`,
each under a name of its own (a module is imported once per process).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from raftcluster.loading import PartLoadError, load_object, load_parts, split_path
from statemachine.cluster import ClusterState
from statemachine.part import PartSpec
from tests.user_parts import counter

GOOD = "tests.user_parts.counter:COUNTER"


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path for the test's own modules (removed from sys.modules after)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("loadme_"):
            del sys.modules[name]


def write(directory: Path, name: str, source: str) -> str:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


PART_HEADER = """
    import attrs
    from statemachine.codec import Message, tagged
    from statemachine.part import PartSpec
    from tests.user_parts.counter import Counter
"""


def test_a_path_names_a_spec_a_list_or_a_factory() -> None:
    assert load_parts([GOOD]) == (counter.COUNTER,)
    assert load_parts(["tests.user_parts.counter:PARTS"]) == (counter.COUNTER,)
    assert load_parts(["tests.user_parts.counter:make_parts"]) == (counter.COUNTER,)
    assert load_parts([]) == ()
    assert load_parts([GOOD])[0].version == 1 and counter.COUNTER_V2.version == 2
    state = ClusterState()
    for spec in load_parts([GOOD]):
        state.register(spec)
    assert state.part_names == ("counter", "groups", "kv", "sessions")


def test_a_dotted_name_walks_attributes() -> None:
    found = load_object(
        "tests.user_parts.counter:COUNTER.factory",
        expected="a class",
        check=lambda o: isinstance(o, type),
    )
    assert found is counter.Counter


@pytest.mark.parametrize(
    "path", ["counter", "a:", ":B", "a:b:c", "a b:C", "a.:B", "1a:B", "x" * 600 + ":B"]
)
def test_a_malformed_path_says_what_a_path_looks_like(path: str) -> None:
    with pytest.raises(PartLoadError, match="expected 'module:NAME'") as caught:
        split_path(path)
    assert caught.value.path.startswith(path[:20])


def test_one_string_instead_of_a_list_is_refused() -> None:
    with pytest.raises(PartLoadError, match="expected a list of import paths"):
        load_parts(GOOD)


def test_a_module_that_does_not_exist() -> None:
    with pytest.raises(PartLoadError, match="no module named 'loadme_absent'") as caught:
        load_parts(["loadme_absent.sub:X"])
    assert caught.value.path == "loadme_absent.sub:X"
    assert str(caught.value).startswith("loadme_absent.sub:X: ")


def test_a_module_that_raises_or_imports_something_missing(modules: Path) -> None:
    raising = write(modules, "loadme_raises", "raise RuntimeError('no database here')\n")
    with pytest.raises(PartLoadError, match="RuntimeError: no database here"):
        load_parts([f"{raising}:X"])
    missing = write(modules, "loadme_needs", "import loadme_not_there\n")
    with pytest.raises(PartLoadError, match="importing loadme_needs failed.*loadme_not_there"):
        load_parts([f"{missing}:X"])
    broken = write(modules, "loadme_syntax", "def (:\n")
    with pytest.raises(PartLoadError, match="SyntaxError"):
        load_parts([f"{broken}:X"])


def test_a_name_that_is_missing() -> None:
    with pytest.raises(PartLoadError, match="counter has no attribute 'BANK'"):
        load_parts(["tests.user_parts.counter:BANK"])
    with pytest.raises(PartLoadError, match=r"counter\.COUNTER has no attribute 'nope'"):
        load_parts(["tests.user_parts.counter:COUNTER.nope"])


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("NAME", "a str"),
        ("Counter", "the class Counter"),
        ("BELOW_ZERO", "a int"),
    ],
)
def test_a_name_of_the_wrong_kind(name: str, kind: str) -> None:
    with pytest.raises(PartLoadError, match=f"{name} is {kind}, expected a PartSpec"):
        load_parts([f"tests.user_parts.counter:{name}"])


def test_lists_and_factories_of_the_wrong_kind(modules: Path) -> None:
    source = """
        from tests.user_parts.counter import COUNTER
        EMPTY = []
        MIXED = [COUNTER, "bank"]
        def returns_text():
            return "bank"
        def raises():
            raise KeyError("config")
        def takes_arguments(x):
            return COUNTER
    """
    name = write(modules, "loadme_kinds", source)
    cases = {
        "EMPTY": "EMPTY is an empty list, expected",
        "MIXED": "MIXED is a list of PartSpec, str, expected",
        "returns_text": "calling it returned a str, expected a PartSpec",
        "raises": "calling it raised KeyError: 'config'",
        "takes_arguments": "calling it raised TypeError",
    }
    for attribute, reason in cases.items():
        with pytest.raises(PartLoadError, match=reason) as caught:
            load_parts([f"{name}:{attribute}"])
        assert caught.value.path == f"{name}:{attribute}"


def test_parts_that_collide_with_each_other_or_the_built_ins(modules: Path) -> None:
    source = (
        PART_HEADER
        + """
    from statemachine.kv import Put
    from tests.user_parts.counter import Add, ReadTotal

    @tagged(10190)
    @attrs.frozen
    class Other(Message):
        pass

    class Untagged(Other):  # inherits Other's tag: not a class of its own
        pass

    SAME_NAME = PartSpec("counter", Counter, (Other,))
    BUILTIN_NAME = PartSpec("kv", Counter, (Other,))
    SAME_CLASS = PartSpec("again", Counter, (Add,))
    LOW_TAG = PartSpec("sneaky", Counter, (Put,))
    UNTAGGED = PartSpec("untagged", Counter, (Untagged,))
    NOT_A_MESSAGE = PartSpec("odd", Counter, (int,))
    BAD_FACTORY = PartSpec("broken", lambda: 1 / 0, (Other,))
    """
    )
    name = write(modules, "loadme_collide", source)
    cases = {
        "SAME_NAME": "part 'counter': PartSpec.name: a part named 'counter' exists",
        "BUILTIN_NAME": "part 'kv': the name of a built-in part",
        "SAME_CLASS": r"part 'again': again: already routed elsewhere: \['Add'\]",
        "LOW_TAG": "tag 100 is below 10000",
        "UNTAGGED": "Untagged is not the class registered under its tag 10190",
        "NOT_A_MESSAGE": "is not a Message class",
        "BAD_FACTORY": "part 'broken': building it raised ZeroDivisionError",
    }
    for attribute, reason in cases.items():
        with pytest.raises(PartLoadError, match=reason) as caught:
            load_parts([GOOD, f"{name}:{attribute}"])
        assert caught.value.path == f"{name}:{attribute}"


def test_an_import_that_takes_over_a_tag_is_refused(modules: Path) -> None:
    # A class of the same name and tag as the counter's, in another module: the codec
    # would silently route tag 10100 to it from then on.
    clash = write(
        modules,
        "loadme_clash",
        PART_HEADER
        + """
    @tagged(10100)
    @attrs.frozen
    class Add(Message):
        by: int

    CLASH = PartSpec("clash", Counter, (Add,))
    """,
    )
    before = load_parts([GOOD])
    with pytest.raises(PartLoadError, match="tag 10100 of tests.user_parts.counter.Add was taken"):
        load_parts([f"{clash}:CLASH"])
    # Put the counter's class back for the tests that follow in this process.
    from statemachine.codec import tagged

    tagged(10100)(counter.Add)
    assert before == (counter.COUNTER,)


def test_an_import_whose_tag_is_another_class_name_fails_to_import(modules: Path) -> None:
    clash = write(
        modules,
        "loadme_taken",
        PART_HEADER
        + """
    @tagged(100)
    @attrs.frozen
    class Mine(Message):
        pass
    """,
    )
    with pytest.raises(PartLoadError, match="tag 100 already used by"):
        load_parts([f"{clash}:Mine"])


def test_load_object_checks_the_kind_it_is_asked_for() -> None:
    with pytest.raises(PartLoadError, match="COUNTER is a PartSpec, expected a Workload class"):
        load_object(GOOD, expected="a Workload class", check=lambda o: isinstance(o, type))
    assert isinstance(load_object(GOOD, expected="a part", check=lambda o: True), PartSpec)
