"""docs/chaos.md matches the code: its commands parse, its flags exist, the campaign
document has the fields it lists, and its workload example runs as written."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from chaos.campaign.campaign import run_campaign
from chaos.campaign.spec import RunSpec
from chaos.sim import catalog
from raftcluster.cli import build_parser

DOC = Path(__file__).resolve().parent.parent / "docs" / "chaos.md"
# Sections other engineers' docs describe: their commands are not this guide's to check.
ELSEWHERE = ("## Live mode", "## pysyncobj as a target")


def text() -> str:
    """The guide, without the sections that point elsewhere."""
    doc = DOC.read_text()
    for heading in ELSEWHERE:
        start = doc.index(heading)
        end = doc.find("\n## ", start + 1)
        doc = doc[:start] + (doc[end:] if end >= 0 else "")
    return doc


def chaos_parsers() -> dict[str, argparse.ArgumentParser]:
    def sub(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(action.choices)

    return sub(sub(build_parser())["chaos"])


def commands() -> list[str]:
    doc = text()
    found = [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", doc, re.S)
        for line in block.splitlines()
        if line.strip().startswith("raftcluster chaos")
    ]
    found += re.findall(r"`(raftcluster chaos [^`]+)`", doc)
    return [c for c in found if "--help" not in c]


def test_the_guide_shows_commands_of_every_chaos_subcommand_it_covers() -> None:
    shown = {shlex.split(c)[2] for c in commands()}
    assert shown == {"run", "check", "regress"}


@pytest.mark.parametrize("command", commands())
def test_every_command_in_the_guide_parses(command: str) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.run)


def test_every_flag_in_the_guide_exists() -> None:
    known = {
        option
        for parser in chaos_parsers().values()
        for action in parser._actions
        for option in action.option_strings
    }
    flags = set(re.findall(r"`[^`]*?(--[a-z][a-z-]*)", text()))
    assert flags and flags <= known, flags - known


def test_the_sections_other_guides_fill_point_at_them() -> None:
    doc = DOC.read_text()
    for heading, link in zip(ELSEWHERE, ("chaos-live.md", "chaos-pysyncobj.md"), strict=True):
        section = doc[doc.index(heading) :].split("\n## ")[0]
        assert f"]({link})" in section


def test_the_campaign_document_has_the_fields_the_guide_lists() -> None:
    listed = re.search(
        r"`--json` prints the whole summary as one document: (.*?)\n- ", text(), re.S
    )
    assert listed
    names = set(re.findall(r"`(\w+)`", listed.group(1))) - {"first", "last", "ok", "chaos"}
    result = run_campaign([RunSpec(seed=1, nodes=3, duration_s=1, check_timeout_s=0)])
    assert names == set(result.to_json())


def test_the_workload_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "WORKLOADS", dict(catalog.WORKLOADS))
    match = re.search(r"<!-- example: workload -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, "the example is marked in docs/chaos.md"
    exec(compile(match.group(1), "docs/chaos.md", "exec"), {})  # noqa: S102
    assert "one-key-register" in catalog.WORKLOADS
    workload = catalog.make_workload("one-key-register")
    assert workload.name == "one-key-register"
