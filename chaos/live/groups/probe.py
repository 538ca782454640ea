"""The probe: a group's resource in live chaos and in the failover benchmark.

    python -m chaos.live.groups.probe --port P --log FILE --lock FILE
    (or RAFTCLUSTER_PROBE_PORT, RAFTCLUSTER_PROBE_LOG, RAFTCLUSTER_PROBE_LOCK)

Who it is comes from the environment every resource process gets: RAFTCLUSTER_GROUP,
RAFTCLUSTER_NODE, RAFTCLUSTER_EPOCH (`--group`, `--node`, `--epoch` override them).

The contract:
1. At start it takes `flock(LOCK_EX | LOCK_NB)` on the lock file (one per group, shared
   by every node on this machine; the kernel releases it when the process dies, even
   by SIGKILL). If another process holds it, another instance of the group is alive at
   this instant: the probe appends `{"double_run": {...}}` naming itself and the holder
   (whom the holder wrote into the lock file) and then waits for the lock, so that two
   instances never serve at once.
2. Holding the lock, it writes who it is into the lock file, binds the port
   (SO_REUSEADDR), appends `{"event": "start", "group", "node", "epoch", "pid",
   "mono_ns"}` to the log and answers every connection with one line
   `group node epoch pid`, then closes it.
3. On SIGTERM it appends `{"event": "end", ...}` and exits 0. SIGKILL leaves no end
   record, which is why the lock, not the intervals, is the proof of a double run.

Log records are JSON lines, each one `os.write` on a file opened with O_APPEND, so the
order of lines is the order in which they were written, across every process on this
machine. `mono_ns` is CLOCK_MONOTONIC, one clock for every process on the machine.

Plain blocking sockets, one connection at a time, and only the standard library: the
probe starts in a few tens of milliseconds, which is part of every failover it times.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

HOST = "127.0.0.1"
BACKLOG = 64  # connections waiting to be answered: a few pollers at a time, far fewer
MAX_LOCK_NOTE_BYTES = 256  # the holder's line in the lock file ("node epoch pid")
BIND_ATTEMPTS = 100  # a port still held by a dying predecessor frees within ms
BIND_RETRY_S = 0.02
SEND_TIMEOUT_S = 1.0  # a client that does not read its line is dropped


class Terminated(Exception):
    """SIGTERM arrived (raised from the signal handler in the main thread)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextlib.contextmanager
def _terminated_on_sigterm() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Probe:
    def __init__(self, *, group: str, node: int, epoch: int, port: int, log: str, lock: str):
        self.group = group
        self.node = node
        self.epoch = epoch
        self.port = port
        self.pid = os.getpid()
        self._log = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        self.served = False

    def me(self) -> dict[str, Any]:
        return {"group": self.group, "node": self.node, "epoch": self.epoch, "pid": self.pid}

    def record(self, fields: dict[str, Any]) -> None:
        """One JSON line, one write (O_APPEND: never interleaved with another process's)."""
        os.write(self._log, (json.dumps(fields, sort_keys=True) + "\n").encode())

    def lock(self) -> None:
        """Take the group's lock; if another instance holds it, record the double run
        (both named) and wait for it. SIGTERM while waiting raises Terminated."""
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(self._lock, MAX_LOCK_NOTE_BYTES, 0))
            self.record(
                {"double_run": {**self.me(), "mono_ns": time.monotonic_ns(), "holder": holder}}
            )
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        note = f"{self.group} {self.node} {self.epoch} {self.pid}\n".encode()
        os.ftruncate(self._lock, 0)
        os.pwrite(self._lock, note, 0)

    def serve(self) -> None:
        """Bind, record the start, answer until SIGTERM (raises Terminated)."""
        listener = _bind(self.port)
        self.record({"event": "start", **self.me(), "mono_ns": time.monotonic_ns()})
        self.served = True
        line = f"{self.group} {self.node} {self.epoch} {self.pid}\n".encode()
        while True:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(SEND_TIMEOUT_S)
                with contextlib.suppress(OSError):
                    connection.sendall(line)

    def end(self) -> None:
        self.record(
            {"event": "end", **self.me(), "mono_ns": time.monotonic_ns(), "served": self.served}
        )


def _holder(note: bytes) -> dict[str, Any] | None:
    """Who wrote the lock file ("group node epoch pid"), None if unreadable."""
    parts = note.decode("utf-8", "replace").split()
    if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
        return None
    return {"group": parts[0], "node": int(parts[1]), "epoch": int(parts[2]), "pid": int(parts[3])}


def _bind(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for attempt in range(BIND_ATTEMPTS):
        try:
            listener.bind((HOST, port))
            break
        except OSError:
            if attempt == BIND_ATTEMPTS - 1:
                raise
            time.sleep(BIND_RETRY_S)
    listener.listen(BACKLOG)
    return listener


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m chaos.live.groups.probe")
    parser.add_argument("--port", type=int, default=env.get("RAFTCLUSTER_PROBE_PORT"))
    parser.add_argument("--log", default=env.get("RAFTCLUSTER_PROBE_LOG"))
    parser.add_argument("--lock", default=env.get("RAFTCLUSTER_PROBE_LOCK"))
    parser.add_argument("--group", default=env.get("RAFTCLUSTER_GROUP"))
    parser.add_argument("--node", type=int, default=env.get("RAFTCLUSTER_NODE"))
    parser.add_argument("--epoch", type=int, default=env.get("RAFTCLUSTER_EPOCH"))
    args = parser.parse_args(argv)
    missing = [
        k for k in ("port", "log", "lock", "group", "node", "epoch") if getattr(args, k) is None
    ]
    if missing:
        parser.error("missing: " + ", ".join(missing) + " (flags or environment)")
    with _terminated_on_sigterm():
        try:
            probe = Probe(
                group=args.group, node=args.node, epoch=args.epoch,
                port=args.port, log=args.log, lock=args.lock,
            )  # fmt: skip
        except Terminated:
            return 0
        try:
            probe.lock()
            probe.serve()
        except Terminated:
            probe.end()
            return 0
    return 0  # pragma: no cover - serve() returns only by Terminated


if __name__ == "__main__":
    sys.exit(main())
