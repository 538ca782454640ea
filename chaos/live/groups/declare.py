"""The groups a live run or the failover benchmark declares, each one probe resource
(pure: builds specs, starts nothing).

`probe_resource` is a `process` resource that runs the probe (`probe.py`) as a file,
not with `-m`: the file imports only the standard library, so the probe starts in a few
tens of milliseconds instead of the half second the `chaos` package takes to import,
and every failover timed includes that start. Its health check is `tcp:` on its port.

`live_groups` are the four groups of `raftcluster chaos live --workload groups`, one
per failback policy, with different preferred owners.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from statemachine.groups.messages import Failback, GroupSpec, ResourceSpec

PROBE_FILE: Final = Path(__file__).resolve().parent / "probe.py"
ROOT: Final = PROBE_FILE.parents[3]  # the repository: the probe's working directory
RESOURCE = "probe"

# Quick monitoring and short timeouts: a probe starts in tens of ms and stops at once.
MONITOR_INTERVAL_MS = 500
MONITOR_TIMEOUT_MS = 1_000
START_TIMEOUT_MS = 5_000
STOP_TIMEOUT_MS = 2_000


def probe_resource(port: int, log: Path, lock: Path, python: str = sys.executable) -> ResourceSpec:
    """The probe on `port`, appending to `log`, with the group's `lock` file."""
    command = [python, str(PROBE_FILE), "--port", str(port), "--log", str(log),
               "--lock", str(lock)]  # fmt: skip
    params = (
        ("command", shlex.join(command)),
        ("cwd", str(ROOT)),
        ("health", f"tcp:127.0.0.1:{port}"),
    )
    return ResourceSpec(
        RESOURCE, "process", params, monitor_interval_ms=MONITOR_INTERVAL_MS,
        monitor_timeout_ms=MONITOR_TIMEOUT_MS, start_timeout_ms=START_TIMEOUT_MS,
        stop_timeout_ms=STOP_TIMEOUT_MS,
    )  # fmt: skip


# name, preferred owners (by position in the node list), failback, stable_ms, and the
# window's end hour (from hour 0; 24: the whole day)
_LIVE: Final = (
    ("web", (0, 1), Failback.IMMEDIATE, 0, 0),
    ("db", (1,), Failback.NEVER, 0, 0),
    ("cache", (2, 0), Failback.STABLE, 2_000, 0),
    ("queue", (), Failback.WINDOW, 0, 24),
)
# Failures a chaos run causes must not leave a group FAILED: the most failures allowed,
# forgotten after a short period.
FAILOVER_THRESHOLD = 100
FAILOVER_PERIOD_MS = 10_000
LIVE_GROUP_NAMES: Final = tuple(name for name, *_ in _LIVE)


def live_groups(
    nodes: Sequence[int], ports: Mapping[str, int], directory: Path
) -> tuple[GroupSpec, ...]:
    """The groups of a live run on `nodes` (ports by group; logs and locks in
    `directory`): every probe appends to `directory/probes.jsonl`."""
    specs = []
    for name, ranks, failback, stable_ms, window_end_hour in _LIVE:
        preferred = tuple(dict.fromkeys(nodes[r] for r in ranks if r < len(nodes)))
        resource = probe_resource(ports[name], directory / "probes.jsonl",
                                  directory / f"{name}.lock")  # fmt: skip
        specs.append(
            GroupSpec(name, (resource,), preferred_owners=preferred, failback=failback,
                      failover_threshold=FAILOVER_THRESHOLD,
                      failover_period_ms=FAILOVER_PERIOD_MS, stable_ms=stable_ms,
                      window_end_hour=window_end_hour)
        )  # fmt: skip
    return tuple(specs)
