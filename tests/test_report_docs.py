"""docs/report.md matches the code: its schema tables name every field, and its writer
example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from chaos.report import record

DOC = Path(__file__).resolve().parent.parent / "docs" / "report.md"
CLASSES = [
    record.Record,
    record.RunInfo,
    record.Interval,
    record.Fault,
    record.ClientOp,
    record.Violation,
    record.LinearizabilityWitness,
    record.CheckerRun,
]


def table_fields(text: str, name: str) -> set[str]:
    """The backquoted names in the first column of the table under `### `Name``."""
    section = re.search(rf"### `{name}`[^\n]*\n(?:[^|\n][^\n]*\n|\n)*((?:\|[^\n]*\n)+)", text)
    assert section, f"docs/report.md has no table for {name}"
    fields: set[str] = set()
    for line in section.group(1).splitlines()[2:]:
        fields.update(re.findall(r"`(\w+)`", line.split("|")[1]))
    return fields


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_field_is_documented(cls: type) -> None:
    documented = table_fields(DOC.read_text(), cls.__name__)
    fields = {f.name for f in attrs.fields(cls)} | ({"format"} if cls is record.Record else set())
    assert documented == fields


def test_the_writer_example_runs() -> None:
    match = re.search(r"<!-- example: writer -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, "the example is marked in docs/report.md"
    exec(compile(match.group(1), "docs/report.md", "exec"), {})  # noqa: S102
