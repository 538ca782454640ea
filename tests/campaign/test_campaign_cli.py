"""`raftcluster chaos run --seeds A..B`: the summary, the report directory, failures and
how to replay them, --stop-on-failure, --jobs, progress."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from chaos.campaign.campaign import parse_seeds
from chaos.campaign.progress import Progress
from raftcluster.cli import main
from statemachine.errors import InvalidArgument
from tests.sim.plant import send_everything_early

SMALL = ["--nodes", "3", "--duration", "5"]


def campaign(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code = main(["chaos", "run", *args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_a_campaign_summarises_every_seed_and_writes_an_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, err = campaign(capsys, "--seeds", "1..3", *SMALL, "--report", str(tmp_path))
    assert code == 0 and data["verdict"] == "ok" and data["failed"] == []
    assert [run["seed"] for run in data["runs"]] == [1, 2, 3]
    totals = data["totals"]
    assert totals["seeds"] == totals["ok"] == 3
    assert totals["elections"] == sum(run["counts"]["elections"] for run in data["runs"])
    assert totals["faults"] == sum(sum(run["counts"]["faults"].values()) for run in data["runs"])
    assert data["settings"]["nodes"] == 3 and data["settings"]["duration_s"] == 5
    assert "chaos: 3/3 seeds, 0 failed" in err  # not a terminal: plain progress lines
    assert json.loads((tmp_path / "summary.json").read_text()) == data
    index = (tmp_path / "index.html").read_text()
    for seed in (1, 2, 3):
        assert (tmp_path / f"seed-{seed}" / "report.html").is_file()
        assert f'href="seed-{seed}/report.html"' in index
        summary = json.loads((tmp_path / f"seed-{seed}" / "summary.json").read_text())
        assert summary["trace_hash"] == data["runs"][seed - 1]["trace_hash"]
        assert data["runs"][seed - 1]["report"] == str(tmp_path / f"seed-{seed}" / "report.html")


def test_the_table_has_a_row_per_seed_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "run", "--seeds", "4..5", *SMALL]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "seed",
        "verdict",
        "elections",
        "ops",
        "faults",
        "wall",
        "s",
        "found",
    ]
    assert [line.split()[0] for line in lines[2:4]] == ["4", "5"]
    assert lines[5].startswith("total") and "2 ok, 0 failed" in lines[5]
    assert re.match(r"[\d.,]+ virtual s in [\d.,]+ wall s", lines[6])


def test_failing_seeds_exit_1_and_print_the_command_that_replays_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    send_everything_early(monkeypatch)
    args = ["--nodes", "5", "--duration", "20"]
    assert main(["chaos", "run", "--seeds", "1..2", *args]) == 1
    out = capsys.readouterr().out
    replays = re.findall(r"seed \d+ failed \(.+\); replay: (.+)", out)
    assert replays == [f"raftcluster chaos run --seed {s} --nodes 5 --duration 20" for s in (1, 2)]
    code, data, _ = campaign(capsys, "--seeds", "1..2", *args)
    assert code == 1 and data["verdict"] == "failed"
    first = data["failed"][0]
    # The printed command replays the very run: same verdict, same trace.
    replay = first["replay"].split()[3:]
    assert main(["chaos", "run", *replay, "--json"]) == 1
    again = json.loads(capsys.readouterr().out)
    assert again["trace_hash"] == data["runs"][0]["trace_hash"]
    assert again["violation"]["invariant"] == first["finding"]


def test_stop_on_failure_starts_no_more_seeds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    send_everything_early(monkeypatch)
    code, data, _ = campaign(
        capsys, "--seeds", "1..4", "--nodes", "5", "--duration", "20", "--stop-on-failure"
    )
    assert code == 1 and data["stopped_early"] is True
    assert [run["seed"] for run in data["runs"]] == [1]


def test_jobs_run_the_same_seeds_in_subprocesses(capsys: pytest.CaptureFixture[str]) -> None:
    _, alone, _ = campaign(capsys, "--seeds", "1..3", *SMALL)
    code, parallel, _ = campaign(capsys, "--seeds", "1..3", *SMALL, "--jobs", "2")
    assert code == 0
    for a, b in zip(alone["runs"], parallel["runs"], strict=True):
        del a["wall"], b["wall"]
        assert a == b


@pytest.mark.parametrize(
    "bad",
    [
        ["--seeds", "5..1"],
        ["--seeds", "x..y"],
        ["--seeds", "1..2", "--seed", "3"],
        ["--seeds", "1..2", "--jobs", "0"],
        ["--seeds", "1..2", "--nodes", "0"],
    ],
)
def test_bad_campaign_arguments_exit_2(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "run", *bad]) == 2
    assert "error" in capsys.readouterr().err


def test_seed_ranges() -> None:
    assert parse_seeds("3..5") == range(3, 6)
    assert parse_seeds("7") == range(7, 8)
    assert parse_seeds("-2..-1") == range(-2, 0)
    with pytest.raises(InvalidArgument):
        parse_seeds("0..1000000")


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    tty, plain = io.StringIO(), io.StringIO()
    bar, lines = Progress(12, tty, tty=True), Progress(12, plain, tty=False)
    for seed in range(12):
        bar.update(seed, ok=seed != 3)
        lines.update(seed, ok=seed != 3)
    assert tty.getvalue().count("\r[") == 12 and tty.getvalue().endswith("\n")
    assert "[" + "#" * 30 + "] 12/12 failed 1" in tty.getvalue()
    assert [line.split(",")[0] for line in plain.getvalue().splitlines()] == [
        "chaos: 5/12 seeds",
        "chaos: 10/12 seeds",
        "chaos: 12/12 seeds",
    ]
