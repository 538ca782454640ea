"""The bank on three real node processes started by `raftcluster up`, as
docs/your-state-machine.md runs it: `[state] parts = ["examples.bank:BANK"]` in
cluster.toml, and a client that only imports `examples.bank`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from examples.bank import Account, Balances, GetBalances, Open, Transfer
from examples.bank.part import INSUFFICIENT_FUNDS
from raftcluster import Rejected
from raftcluster.client.connect import connect
from raftcluster.client.probe import Target, probe
from raftcluster.config import ClusterFile, client_transport_config, init_cluster, load_cluster

ROOT = Path(__file__).resolve().parents[2]
FAST = {"timing.election_timeout_ms": 600, "timing.heartbeat_interval_ms": 60}
WAIT_S = 45.0


def bank_cluster(directory: Path) -> ClusterFile:
    cluster = init_cluster(directory, nodes=3, settings=FAST)
    text = cluster.path.read_text()
    parts = '\n[state]\nparts = ["examples.bank:BANK"]\n'
    cluster.path.write_text(text.replace("\n[state]\n", parts))
    return load_cluster(cluster.path)


def answers(cluster: ClusterFile, node_id: int) -> bool:
    entry = cluster.find(node_id)
    assert entry is not None
    config = client_transport_config(cluster)
    found = trio.run(lambda: probe(Target(node_id, entry.addresses), config, timeout_ms=1000))
    return found.info is not None


async def bank_day(cluster: ClusterFile) -> tuple[Balances, Rejected]:
    async with connect(cluster) as client:
        await client.write(Open("alice", 100))
        await client.write(Open("bob", 20))
        await client.write(Transfer("alice", "bob", 70))
        with pytest.raises(Rejected) as refused:
            await client.write(Transfer("alice", "bob", 31))  # alice holds 30
        balances = await client.read(GetBalances())
    assert isinstance(balances, Balances)
    return balances, refused.value


def test_the_bank_on_three_processes_started_by_up(tmp_path: Path) -> None:
    cluster = bank_cluster(tmp_path / "bank")
    log = (tmp_path / "up.out").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "raftcluster", "up", str(cluster.path.parent)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT_S
        while not all(answers(cluster, i) for i in (1, 2, 3)):
            assert time.monotonic() < deadline, "the nodes did not answer"
            time.sleep(0.2)
        balances, refused = trio.run(bank_day, cluster)
        assert balances == Balances((Account("alice", 30), Account("bob", 90)))
        assert refused.code == INSUFFICIENT_FUNDS and refused.detail == 30
        teller = [sys.executable, "-m", "examples.bank.teller", str(cluster.path.parent)]
        done = subprocess.run(
            [*teller, "transfer", "bob", "alice", "40"], cwd=ROOT, capture_output=True,
            text=True, timeout=WAIT_S, check=False,
        )  # fmt: skip
        assert (done.returncode, done.stdout, done.stderr) == (0, "alice 70\nbob 50\n", "")
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=WAIT_S) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
