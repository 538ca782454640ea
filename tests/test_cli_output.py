"""The command line's output when its reader goes away (`raftcluster ... | head`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from raftcluster.cli import EXIT_READER_GONE

ROOT = Path(__file__).resolve().parent.parent


def test_a_closed_stdout_ends_the_command_quietly() -> None:
    command = [sys.executable, "-m", "raftcluster", "chaos", "run", "--seed", "0",
               "--nodes", "3", "--duration", "2", "--json"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the command writes anything
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == EXIT_READER_GONE
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
