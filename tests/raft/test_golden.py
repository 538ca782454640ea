"""Golden interaction tests: scripts in testdata/*.txt with their expected output inline.

A file is a sequence of blocks:

    # comments and blank lines between blocks are kept
    command args
    ----
    expected output
    (ends at a blank line)

`RAFT_REWRITE=1 pytest tests/raft/test_golden.py` rewrites the expected output from what
the code does now; review the diff before committing it: that is the point of the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.raft.script import Script

TESTDATA = Path(__file__).parent / "testdata"
SEPARATOR = "----"


def parse(text: str) -> list[tuple[list[str], str | None, list[str]]]:
    """(leading comment lines, command or None at the end, expected output lines)."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lead = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
            lead.append(lines[i])
            i += 1
        if i == len(lines):
            blocks.append((lead, None, []))
            break
        command = lines[i]
        i += 1
        assert i < len(lines) and lines[i] == SEPARATOR, f"line {i + 1}: expected {SEPARATOR}"
        i += 1
        expected = []
        while i < len(lines) and lines[i].strip():
            expected.append(lines[i])
            i += 1
        blocks.append((lead, command, expected))
    return blocks


def render(blocks: list[tuple[list[str], str | None, list[str]]]) -> str:
    out: list[str] = []
    for lead, command, expected in blocks:
        out += lead
        if command is not None:
            out += [command, SEPARATOR, *expected]
    return "\n".join(out).rstrip("\n") + "\n"


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.stem)
def test_script(path: Path) -> None:
    blocks = parse(path.read_text())
    script = Script()
    actual_blocks = []
    mismatches = []
    for lead, command, expected in blocks:
        if command is None:
            actual_blocks.append((lead, None, []))
            continue
        actual = script.run(command)
        actual_blocks.append((lead, command, actual))
        if actual != expected:
            diff = "\n".join(["expected:", *expected, "actual:", *actual])
            mismatches.append(f"{path.name}: {command}\n{diff}")
    if os.environ.get("RAFT_REWRITE"):
        path.write_text(render(actual_blocks))
        return
    assert not mismatches, "\n\n".join(mismatches[:3])


def test_parse_and_render_round_trip() -> None:
    text = "# c\n\ncreate 1\n----\nok\n\n# d\nstatus\n----\n1: x\n2: y\n"
    assert render(parse(text)) == text


def test_every_scenario_the_issue_names_has_a_script() -> None:
    names = {p.stem for p in TESTDATA.glob("*.txt")}
    required = {
        "election",
        "prevote_blocked_by_healthy_leader",
        "checkquorum_step_down",
        "conflict_resolution",
        "snapshot_install",
        "membership_change",
        "leadership_transfer",
        "read_index_deposed_leader",
        "duplicate_vote_reply",
    }
    assert required <= names, f"missing scripts: {sorted(required - names)}"
