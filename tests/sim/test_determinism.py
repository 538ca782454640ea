"""Same seed, same run: the trace hash is equal byte for byte across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from chaos.sim import SimConfig, simulate


def run_in_process(seed: int, hash_seed: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    args = ["--seed", str(seed), "--nodes", "5", "--duration", "20", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "raftcluster", "chaos", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    del data["wall"]  # the one field that depends on the machine
    return data


def test_one_seed_gives_the_same_trace_and_report_in_two_processes() -> None:
    first = run_in_process(5, "1")
    second = run_in_process(5, "2")
    assert first["trace_hash"] == second["trace_hash"]
    assert first == second


def test_different_seeds_give_different_traces() -> None:
    a = simulate(SimConfig(seed=1, nodes=3, duration_ms=5_000), check_timeout_s=None)
    b = simulate(SimConfig(seed=2, nodes=3, duration_ms=5_000), check_timeout_s=None)
    again = simulate(SimConfig(seed=1, nodes=3, duration_ms=5_000), check_timeout_s=None)
    assert a.trace_hash != b.trace_hash
    assert a.trace_hash == again.trace_hash and a.trace_records == again.trace_records
