"""`raftcluster kv ...` end to end: real node processes, the command run as a subprocess,
its `--json` output and exit status checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.live_kit import WAIT_S, Live, Ran, live_cluster

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


async def kv(live: Live | None, *args: str, stdin: str = "", target: tuple[str, ...] = ()) -> Ran:
    where = target or ("--cluster", str(live.cluster.path if live else ""))
    command = [sys.executable, "-m", "raftcluster", "kv", *args, *where]
    with trio.fail_after(WAIT_S):
        done = await trio.run_process(
            command, stdin=stdin.encode(), capture_stdout=True, capture_stderr=True, check=False
        )
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


async def test_the_kv_commands(tmp_path: Path) -> None:
    async with live_cluster(tmp_path / "c") as live:
        put = await kv(live, "put", "app/a", "1", "--json")
        assert put.code == 0, put.err
        first = put.json()["revision"]
        got = await kv(live, "get", "app/a", "--json")
        assert got.json()["value"] == "1" and got.json()["version"] == 1
        assert (await kv(live, "get", "app/a")).out == "1\n"
        missing = await kv(live, "get", "nope")
        assert (missing.code, missing.out) == (1, "") and "'nope' not found" in missing.err

        # binary keys and values
        assert (await kv(live, "put", "--hex", "6170702f00ff", "00ff01")).code == 0
        assert (await kv(live, "get", "--hex", "6170702f00ff")).out == "00ff01\n"
        listed = (await kv(live, "range", "app/", "--prefix", "--json")).json()
        assert listed["count"] == 2
        binary, text = listed["kvs"]  # b"app/\0\xff" sorts before b"app/a"
        assert (binary["key"], binary["value"]) == ({"base64": "YXBwLwD/"}, {"base64": "AP8B"})
        assert (text["key"], text["value"]) == ("app/a", "1")  # UTF-8 stays text

        # a transaction from standard input (text), both branches; then one in JSON
        claim = "if version lock == 0\nthen put lock me\nelse get lock\n"
        won = (await kv(live, "txn", "--json", stdin=claim)).json()
        assert won["succeeded"] and "put" in won["responses"][0]
        lost = (await kv(live, "txn", "--json", stdin=claim)).json()
        assert not lost["succeeded"]
        assert lost["responses"][0]["get"]["kvs"][0]["value"] == "me"
        document = {"if": [{"field": "value", "key": "lock", "op": "==", "operand": "me"}],
                    "then": [{"op": "del", "key": "lock"}]}  # fmt: skip
        (tmp_path / "release.json").write_text(json.dumps(document))
        released = await kv(live, "txn", str(tmp_path / "release.json"))
        assert released.code == 0 and released.out.startswith("SUCCEEDED")
        bad = await kv(live, "txn", stdin="then put lock\n")
        assert bad.code == 1 and "line 1: put takes KEY VALUE" in bad.err

        # watch: every change from a revision on, one JSON object per line, until Ctrl-C
        now = (await kv(live, "put", "w/0", "a", "--json")).json()["revision"]
        events = await _watch(live, now)
        assert [(e["type"], e["key"], e["mod_revision"]) for e in events] == [
            ("PUT", "w/0", now), ("PUT", "w/1", now + 1), ("DELETE", "w/0", now + 2),
        ]  # fmt: skip

        # compaction, then an old read fails clearly
        assert (await kv(live, "compact", str(now))).code == 0
        old = await kv(live, "get", "app/a", "--revision", str(first))
        assert old.code == 1 and "compacted" in old.err

        await _errors(live, tmp_path)


async def _watch(live: Live, start: int) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "raftcluster", "kv", "watch", "w/", "--prefix", "--json",
               "--start-revision", str(start), "--cluster", str(live.cluster.path)]  # fmt: skip
    events: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            lambda **kw: trio.run_process(command, stdout=subprocess.PIPE, check=False, **kw)
        )
        assert (await kv(live, "put", "w/1", "b")).code == 0
        assert (await kv(live, "del", "w/0")).code == 0
        assert process.stdout is not None
        buffer = b""
        with trio.fail_after(WAIT_S):
            while buffer.count(b"\n") < 3:
                chunk = await process.stdout.receive_some()
                assert chunk, "the watch ended"
                buffer += chunk
        process.send_signal(signal.SIGINT)
        with trio.fail_after(WAIT_S):
            assert await process.wait() == 130
    events = [json.loads(line) for line in buffer.decode().splitlines()]
    return events


async def _errors(live: Live, tmp_path: Path) -> None:
    entry = live.cluster.find(1)
    assert entry is not None
    wrong = tmp_path / "wrong-secret"
    wrong.write_bytes(os.urandom(32))
    wrong.chmod(0o600)
    endpoints = ("--endpoints", str(entry.addresses[0]), "--cluster-id", live.cluster.cluster_id)
    refused = await kv(None, "get", "k", target=(*endpoints, "--secret-file", str(wrong)))
    assert refused.code == 1 and "refused our secret" in refused.err
    right = ("--secret-file", str(live.cluster.client_secret_file))
    found = await kv(None, "get", "app/a", "--json", target=(*endpoints, *right))
    assert found.code == 0 and found.json()["value"] == "1"  # one endpoint is enough
    nobody = ("--endpoints", "127.0.0.1:1", "--cluster-id", "x", *right)
    unreachable = await kv(None, "get", "k", "--timeout-ms", "500", target=nobody)
    assert unreachable.code == 2 and "unavailable: no endpoint reachable" in unreachable.err
