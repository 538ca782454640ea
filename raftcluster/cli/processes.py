"""Node processes of one cluster file, run as children of this process.

Used by `raftcluster up`, the demo and the live tests. Each node runs as
``python -m raftcluster node run --config FILE --id N --supervised`` in a session (and so a
process group) of its own: a Ctrl-C in the terminal reaches only the supervisor, which
then stops the nodes in order. Its standard input is a pipe from the supervisor, so a
node whose supervisor dies (even by SIGKILL) sees it closed and stops by itself. Its
standard output and error go to `node.log` in its data directory.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from raftcluster.config.schema import ClusterFile

LOG_FILE = "node.log"
STOP_TIMEOUT_S = 15.0
MAX_TAIL_BYTES = 64 * 1024


class NodeProcesses:
    def __init__(
        self,
        cluster: ClusterFile,
        *,
        log_level: str = "info",
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.cluster = cluster
        self._log_level = log_level
        self._python = python
        self._extra_args = tuple(extra_args)
        self._processes: dict[int, trio.Process] = {}

    def log_path(self, node_id: int) -> Path:
        entry = self.cluster.find(node_id)
        assert entry is not None, f"no node {node_id} in {self.cluster.path}"
        return entry.data_dir / LOG_FILE

    def process(self, node_id: int) -> trio.Process | None:
        return self._processes.get(node_id)

    def pid(self, node_id: int) -> int:
        process = self._processes.get(node_id)
        return process.pid if process is not None else 0

    def alive(self, node_id: int) -> bool:
        process = self._processes.get(node_id)
        return process is not None and process.returncode is None

    async def start(self, node_id: int) -> trio.Process:
        """Start node `node_id` (it must not be running). Returns once the process exists;
        whether the node came up shows in its log and in `raftcluster status`.
        Cancellation: the process is started anyway (trio spawns it in a thread that
        cannot be interrupted) and recorded, so `close()` kills it."""
        assert not self.alive(node_id), f"node {node_id} is running"
        log_path = self.log_path(node_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            self._python, "-m", "raftcluster", "node", "run",
            "--config", str(self.cluster.path), "--id", str(node_id),
            "--supervised", "--log-level", self._log_level, *self._extra_args,
        ]  # fmt: skip
        with log_path.open("ab") as log:
            process = await trio.lowlevel.open_process(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._processes[node_id] = process
        return process

    def kill(self, node_id: int, signum: int = signal.SIGKILL) -> None:
        """Send `signum` (default SIGKILL) to node `node_id`, if it runs."""
        if self.alive(node_id):
            self._processes[node_id].send_signal(signum)

    async def wait(self, node_id: int) -> int:
        """Wait for node `node_id` to exit; its exit status (-N: killed by signal N).
        Cancellation: stops waiting; the process is left as it is."""
        return await self._processes[node_id].wait()

    async def stop(self, node_id: int, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout_s`. Returns the exit
        status (None if it was not started). Cancellation: the node may be left running;
        `close()` kills it."""
        process = self._processes.get(node_id)
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with trio.move_on_after(timeout_s):
                await process.wait()
            if process.returncode is None:
                process.kill()
        code = await process.wait()
        if process.stdin is not None:
            await process.stdin.aclose()
        return code

    async def stop_all(self, timeout_s: float = STOP_TIMEOUT_S) -> dict[int, int | None]:
        """Stop every node at once (as `stop`); their exit statuses by node id.
        Cancellation: as `stop`, for each node."""
        codes: dict[int, int | None] = {}

        async def one(node_id: int) -> None:
            codes[node_id] = await self.stop(node_id, timeout_s)

        async with trio.open_nursery() as nursery:
            for node_id in list(self._processes):
                nursery.start_soon(one, node_id)
        return codes

    async def close(self) -> None:
        """Kill whatever still runs and reap it. Cancellation-safe (shielded)."""
        with trio.CancelScope(shield=True):
            for process in self._processes.values():
                if process.returncode is None:
                    process.kill()
                await process.wait()
                if process.stdin is not None:
                    await process.stdin.aclose()

    def tail(self, node_id: int, lines: int = 10) -> list[str]:
        """The last `lines` lines of the node's log."""
        path = self.log_path(node_id)
        try:
            with path.open("rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - MAX_TAIL_BYTES))
                data = f.read()
        except OSError:
            return []
        return data.decode("utf-8", "replace").splitlines()[-lines:]


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"
