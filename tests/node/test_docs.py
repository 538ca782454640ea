"""docs/engine.md states the defaults of ReplicaConfig and ClientConfig: they must match."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from raftcluster.client.core import ClientConfig
from raftcluster.node.config import ReplicaConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def documented(section: str) -> dict[str, str]:
    text = DOC.read_text()
    start = text.index(f"`{section}` (")
    end = text.index("\n\n", text.index("| --- |", start))
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", text[start:end], re.MULTILINE)
    return {name: default.strip() for name, default in rows}


@pytest.mark.parametrize("cls", [ReplicaConfig, ClientConfig])
def test_every_setting_is_documented_with_its_default(cls: type) -> None:
    rows = documented(cls.__name__)
    fields = attrs.fields(cls)
    assert set(rows) == {f.name for f in fields}
    for field in fields:
        if field.default is attrs.NOTHING:
            assert rows[field.name] == "(required)"
        else:
            assert rows[field.name].split(" ")[0] == str(field.default), field.name
