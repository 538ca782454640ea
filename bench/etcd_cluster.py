"""etcd measured beside ours: a local 3-member etcd cluster, and bench/etcd_driver.py run
against it in a process of its own.

- `missing(path)` is None when etcd can be measured here (an `etcd` binary on the PATH,
  and the `aetcd` client importable by this interpreter); otherwise it is the one line
  that says how to install what is missing.
- `members()` runs the cluster and can restart a member (`Members.restart`), for
  bench_failover's leader kills (bench/etcd_failover.py drives those);
- `measure(workloads, duration_s, value_bytes)` starts the cluster, runs the driver, and
  returns the peer's name ("etcd 3.4.23 via aetcd") with the driver's figures for each
  workload. The members are ended on the way out whatever happens (one at a time:
  SIGTERM, then SIGKILL after STOP_TIMEOUT_S) and their directory removed. Only a
  SIGKILL of this process itself can leave them running.

The members run etcd's defaults (fsync of the WAL on every commit, 100 ms heartbeat,
1 s election timeout) on 127.0.0.1 ports the kernel hands out, each with its own data
directory and log file in one temporary directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raftcluster.config.init import free_ports
from statemachine.errors import ClusterError

MEMBERS = 3
WAIT_S = 60.0  # for the cluster to elect a leader (the driver waits this long at most)
STOP_TIMEOUT_S = 10.0  # for a member to exit after SIGTERM, before SIGKILL
LOG_TAIL_BYTES = 2_000  # of each member's log, quoted when the run fails
INSTALL = "apt-get install etcd-server; pip install aetcd (or pip install -e '.[bench]')"


class EtcdBenchError(ClusterError):
    """The etcd side of the benchmark failed: the driver's error and the members' logs."""


def missing(path: str | None = None) -> str | None:
    """None when etcd can be measured; otherwise the line saying how to install it.
    `path` is searched for `etcd` instead of $PATH when given."""
    lacking = []
    if shutil.which("etcd", path=path) is None:
        lacking.append("no etcd binary on the PATH")
    if importlib.util.find_spec("aetcd") is None:
        lacking.append("no aetcd module")
    if not lacking:
        return None
    return f"etcd not measured ({', '.join(lacking)}): install with `{INSTALL}`"


def version(binary: str = "etcd") -> str:
    """etcd's version as the binary reports it ("3.4.23")."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    for line in out.stdout.splitlines():
        if line.startswith("etcd Version:"):
            return line.split(":", 1)[1].strip()
    return "?"


def measure(
    workloads: list[dict[str, Any]], duration_s: float, value_bytes: int
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The peer's name, and for each workload {"ops", "seconds", "errors", "p50_ms",
    "p99_ms"}. Raises EtcdBenchError if the driver fails, subprocess.TimeoutExpired if
    it takes far longer than the workloads should (the driver is killed then)."""
    binary = shutil.which("etcd")
    if binary is None:
        raise EtcdBenchError("no etcd binary on the PATH")
    peer = f"etcd {version(binary)} via aetcd"
    with cluster(binary) as (endpoints, logs):
        command = [
            sys.executable, "-m", "bench.etcd_driver", "--endpoints", ",".join(endpoints),
            "--workloads", json.dumps(workloads), "--duration-s", str(duration_s),
            "--value-bytes", str(value_bytes), "--wait-s", str(WAIT_S),
        ]  # fmt: skip
        # The driver prints one JSON object of a few hundred bytes, and on failure a
        # traceback: small enough to hold whole.
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=WAIT_S + (len(workloads) + 1) * (duration_s + 10),
            cwd=Path(__file__).resolve().parent.parent,
        )
        if done.returncode != 0:
            tails = "\n".join(
                f"--- {log.name}:\n{log.read_bytes()[-LOG_TAIL_BYTES:].decode(errors='replace')}"
                for log in logs
            )
            raise EtcdBenchError(
                f"etcd driver exited with {done.returncode}:\n{done.stderr}\n{tails}"
            )
        results: dict[str, dict[str, Any]] = json.loads(done.stdout)["results"]
        return peer, results


@contextlib.contextmanager
def cluster(binary: str = "etcd") -> Iterator[tuple[list[str], list[Path]]]:
    """A running 3-member cluster: its client endpoints ("127.0.0.1:port") and the
    members' log files. Every member is ended on the way out, whatever happens."""
    with members(binary) as running:
        yield running.endpoints, running.logs


class Members:
    """The members of a running local cluster, each restartable from its data directory
    (bench_failover kills one with SIGKILL and starts it again)."""

    def __init__(self, binary: str, root: Path) -> None:
        ports = free_ports(2 * MEMBERS)
        peer_urls = [f"http://127.0.0.1:{port}" for port in ports[:MEMBERS]]
        client_urls = [f"http://127.0.0.1:{port}" for port in ports[MEMBERS:]]
        initial = ",".join(f"m{i}={url}" for i, url in enumerate(peer_urls))
        self.endpoints = [url.removeprefix("http://") for url in client_urls]
        self.logs = [root / f"m{i}.log" for i in range(MEMBERS)]
        self.commands = [
            [
                binary,
                "--name",
                f"m{i}",
                "--data-dir",
                str(root / f"m{i}"),
                "--listen-peer-urls",
                peer_urls[i],
                "--initial-advertise-peer-urls",
                peer_urls[i],
                "--listen-client-urls",
                client_urls[i],
                "--advertise-client-urls",
                client_urls[i],
                "--initial-cluster",
                initial,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                root.name,
                "--logger",
                "zap",
                "--log-level",
                "warn",
            ]  # fmt: skip
            for i in range(MEMBERS)
        ]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, index: int) -> None:
        """Start member `index` (again: from its data directory, which etcd then reads
        instead of the initial-cluster flags), its output appended to its log."""
        with self.logs[index].open("ab") as log:
            process = subprocess.Popen(
                self.commands[index], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        if index < len(self.processes):
            self.processes[index] = process
        else:
            self.processes.append(process)

    def restart(self, index: int) -> None:
        """Wait for member `index` to have exited (it was killed), then start it again."""
        self.processes[index].wait(timeout=STOP_TIMEOUT_S)
        self.start(index)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]


@contextlib.contextmanager
def members(binary: str = "etcd") -> Iterator[Members]:
    """A running 3-member cluster (`Members`) in a temporary directory. Every member is
    ended on the way out, whatever happens, and the directory removed."""
    root = Path(tempfile.mkdtemp(prefix="bench-etcd-"))
    running = Members(binary, root)
    try:
        for i in range(MEMBERS):
            running.start(i)
        yield running
    finally:
        stop(running.processes)
        shutil.rmtree(root, ignore_errors=True)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """One member at a time: SIGTERM, wait; SIGKILL if still running after STOP_TIMEOUT_S.

    One at a time, because a leader that gets SIGTERM hands its leadership to a follower
    first: with every member stopping at once no follower takes it, and each member
    waits out etcd's transfer timeout (7 s). In turn, each stops in milliseconds."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
