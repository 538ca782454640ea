"""The processes of sessions, found in /proc (Linux only).

A session's id is the pid of the process that called setsid(); every process it forks
stays in the session unless it calls setsid() itself, even after the session leader
exits and the others are re-parented to init. So a session id names everything a
resource started, daemons included, and `kill_sessions` can end all of it.

Zombies (state Z or X) are not counted: they are already dead and cannot be signalled;
their parent (or init) reaps them. A pid can be reused once its process is reaped, so a
session id is only meaningful while its leader is not reaped or members remain; callers
forget a session once it is empty. Pure standard library: the watchdog process imports
it too.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

PROC = "/proc"
# /proc/<pid>/stat is one short line (comm is at most 16 bytes; the rest are numbers).
MAX_STAT_BYTES = 4096


def _session_of(pid: int) -> int | None:
    """The session id of a live (non-zombie) process, or None (gone, zombie, unreadable)."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as stat:
            line = stat.read(MAX_STAT_BYTES)
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses,
    # so split after the last ')'.
    fields = line[line.rfind(b")") + 2 :].split()
    if len(fields) < 4 or fields[0] in (b"Z", b"X"):
        return None
    try:
        return int(fields[3])
    except ValueError:
        return None


def members(sids: Iterable[int]) -> dict[int, list[int]]:
    """The live processes of each session in `sids` (one scan of /proc): sid -> pids."""
    wanted = {sid for sid in sids if sid > 0}
    found: dict[int, list[int]] = {sid: [] for sid in wanted}
    if not wanted:
        return found
    try:
        names = os.listdir(PROC)
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        pid = int(name)
        sid = _session_of(pid)
        if sid in found:
            found[sid].append(pid)
    return found


def kill_sessions(sids: Iterable[int], sig: int = signal.SIGKILL) -> dict[int, int]:
    """Send `sig` to every live process of each session; sid -> processes signalled."""
    counts: dict[int, int] = {}
    for sid, pids in members(sids).items():
        counts[sid] = 0
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:  # gone meanwhile (or not ours): nothing to kill
                continue
            counts[sid] += 1
    return counts
