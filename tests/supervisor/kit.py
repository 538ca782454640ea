"""Helpers for the supervisor's tests: real processes, checked through /proc."""

from __future__ import annotations

import sys
from pathlib import Path

PY = sys.executable


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is dead: it only awaits its reaping)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def py(code: str) -> list[str]:
    return [PY, "-c", code]
