"""Limits that cannot contradict each other: a random cluster file either loads, and then
the largest snapshot chunk, append batch, client request and reply each fit in a frame
(built here as real messages and encoded), or is refused naming both settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftcluster.config import ConfigError, init_cluster, load_cluster, node_settings
from raftcluster.node.protocol import QueryResult, Submit
from raftcluster.raft.log import RaftLog
from raftcluster.raft.messages import AppendEntries, InstallSnapshot
from raftcluster.raft.types import MAX_MEMBERS, ConfState, Entry, SnapshotMeta
from raftcluster.transport.wire import RaftFrame, RpcRequest, RpcResponse
from statemachine.codec import encode
from statemachine.kv.limits import MAX_REQUEST_BYTES, KvConfig
from statemachine.kv.results import KeyValue, RangeResult

WIDE = 2**63 - 1
MIB = 1 << 20


def largest_reply_bytes() -> int:
    """A range read's reply at the kv's limits: max_range_kvs pairs, max_response_bytes."""
    kv = KvConfig()
    value = b"v" * (kv.max_response_bytes // kv.max_range_kvs - 1)
    pairs = tuple(KeyValue(b"k", WIDE, WIDE, WIDE, value) for _ in range(kv.max_range_kvs))
    reply = QueryResult(WIDE, encode(RangeResult(WIDE, pairs, True, WIDE)))
    return len(encode(RpcResponse(WIDE, reply)))


REPLY_BYTES = largest_reply_bytes()
REQUEST_BYTES = len(encode(RpcRequest(WIDE, 86_400_000, Submit(b"x" * MAX_REQUEST_BYTES))))


def largest_frames(chunk: int, batch: int, max_entries: int) -> dict[str, int]:
    meta = SnapshotMeta(WIDE, WIDE, ConfState(voters=(WIDE,) * MAX_MEMBERS))
    snapshot = InstallSnapshot(WIDE, WIDE, WIDE, meta, WIDE, b"s" * chunk, False)
    # A batch as the core cuts it (RaftLog.slice): many small entries, or one large one.
    each = max(0, batch // max_entries - 16)
    base = WIDE - max_entries - 1  # the entries follow prev_index, at the widest indexes
    entries = [Entry(WIDE, base + i, data=b"e" * each) for i in range(1, max_entries + 1)]
    log = RaftLog(base, WIDE, entries, 0)
    many = tuple(log.slice(base + 1, base + max_entries + 1, batch, max_entries))
    one = (Entry(WIDE, base + 1, data=b"e" * MAX_REQUEST_BYTES),)
    sizes = {
        "limits.max_snapshot_chunk_bytes": snapshot,
        "limits.max_append_bytes": AppendEntries(WIDE, WIDE, WIDE, base, WIDE, WIDE, many),
        "one large entry": AppendEntries(WIDE, WIDE, WIDE, base, WIDE, WIDE, one),
    }
    out = {name: len(encode(RaftFrame(63, WIDE, m))) for name, m in sizes.items()}
    return {**out, "request": REQUEST_BYTES, "reply": REPLY_BYTES}


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("frames")
    init_cluster(directory, nodes=1)
    return directory


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    frame=st.integers(MIB, 12 * MIB),
    chunk=st.integers(1024, 12 * MIB),
    batch=st.integers(1024, 12 * MIB),
)
def test_a_random_config_loads_with_every_frame_fitting_or_names_both_settings(
    cluster_dir: Path, frame: int, chunk: int, batch: int
) -> None:
    file = cluster_dir / "cluster.toml"
    text = re.sub(r"(?ms)^\[limits\]\n", "", file.read_text())
    limits = (
        f"[limits]\nmax_frame_bytes = {frame}\nmax_snapshot_chunk_bytes = {chunk}\n"
        f"max_append_bytes = {batch}\n"
    )
    variant = cluster_dir / "variant.toml"
    variant.write_text(limits + text)
    try:
        cluster = load_cluster(variant)
    except ConfigError as e:
        assert e.key == "limits.max_frame_bytes"
        message = str(e)
        named = [s for s in ("max_snapshot_chunk_bytes", "max_append_bytes") if s in message]
        assert named or "kv's max_response_bytes" in message or "client request limit" in message
        frames = largest_frames(chunk, batch, 512)
        # Refused only when something cannot fit, or nearly: the bounds are computed with
        # every length prefix at its widest, a little above the frames built here.
        assert max(frames.values()) > frame * 0.95, (frames, frame)
        return
    raft = node_settings(cluster, 1).replica.raft
    assert (raft.max_snapshot_chunk_bytes, raft.max_bytes_per_msg) == (chunk, batch)
    frames = largest_frames(chunk, batch, raft.max_entries_per_msg)
    assert all(size <= frame for size in frames.values()), frames
