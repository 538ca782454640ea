"""docs/client.md and docs/kv-cli.md say what the code does: the options and their
defaults, every method, the exit statuses; the synchronous façade mirrors the client;
every Python example parses."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import attrs
import pytest

from raftcluster import Client, ClientOptions, SyncClient
from raftcluster.cli import kv

DOCS = Path(__file__).resolve().parent.parent / "docs"
CLIENT = (DOCS / "client.md").read_text()
KV_CLI = (DOCS / "kv-cli.md").read_text()


def public(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_the_options_table_has_the_defaults() -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+_ms|max_inflight_writes)` \| (\d+) \|", CLIENT, re.M))
    defaults = {f.name: str(f.default) for f in attrs.fields(ClientOptions)}
    assert rows == defaults


def test_every_method_is_documented() -> None:
    methods = {n for n in public(Client) if callable(getattr(Client, n))} - {
        "read_changes",
        "wait_changes",
    }
    documented = set(re.findall(r"^\| `([a-z_]+)\(", CLIENT, re.M))
    documented |= {
        m
        for pair in re.findall(r"^\| `([a-z_]+)\(.*?\)` / `([a-z_]+)\(", CLIENT, re.M)
        for m in pair
    }
    assert methods <= documented, methods - documented


def test_the_sync_client_mirrors_the_client() -> None:
    internal = {"read_changes", "wait_changes", "attempts_in_doubt"}
    assert public(Client) - internal <= public(SyncClient) | {"close"}
    for name in public(Client) - internal:
        mine = getattr(Client, name)
        theirs = getattr(SyncClient, name)
        if callable(mine):
            assert list(inspect.signature(mine).parameters) == list(
                inspect.signature(theirs).parameters
            ), name


def test_the_exit_statuses_are_the_commands() -> None:
    table = dict(re.findall(r"^\| (\d+) \| ([^|]+) \|", KV_CLI, re.M))
    assert set(table) == {
        "0",
        str(kv.EXIT_ERROR),
        str(kv.EXIT_UNAVAILABLE),
        str(kv.EXIT_UNKNOWN),
        "130",
    }
    assert "unavailable" in table[str(kv.EXIT_UNAVAILABLE)]
    assert "unknown" in table[str(kv.EXIT_UNKNOWN)]


@pytest.mark.parametrize("doc", ["client.md", "quickstart.md", "../README.md"])
def test_the_python_examples_parse(doc: str) -> None:
    text = (DOCS / doc).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        ast.parse(block)
