"""The largest frame each kind of traffic can need, so the loader can refuse limits that
contradict each other (a snapshot chunk, an append batch, a client request or reply that
cannot fit in `limits.max_frame_bytes` would never get through: a follower that needs a
snapshot would never catch up).

Each bound encodes the message with every integer at its widest (9 bytes in CBOR) and an
empty payload, then adds the payload and the widest length prefix a payload of that size
can have. It is an upper bound for what the node sends: see `check_frames`.
"""

from __future__ import annotations

import attrs

from raftcluster.node.protocol import QueryResult, Submit
from raftcluster.raft.log import ENTRY_OVERHEAD_BYTES
from raftcluster.raft.messages import AppendEntries, InstallSnapshot
from raftcluster.raft.types import MAX_MEMBERS, ConfState, Entry, EntryKind, SnapshotMeta
from raftcluster.transport.wire import MAX_FLOWS, RaftFrame, RpcRequest, RpcResponse
from statemachine.codec import encode
from statemachine.kv.limits import MAX_REQUEST_BYTES, KvConfig
from statemachine.kv.results import KeyValue, RangeResult

_WIDE = 2**63 - 1  # the widest id, term, index or counter (9 bytes in CBOR, like 2**64 - 1)
_PREFIX = 9  # the widest CBOR length prefix of a byte string or an array
_CONF = ConfState(voters=(_WIDE,) * MAX_MEMBERS)  # the largest configuration a meta carries


@attrs.frozen
class FrameNeed:
    """What one kind of traffic needs of a frame, and the setting that decides it."""

    what: str  # "an InstallSnapshot frame", ...
    setting: str  # the setting (or built-in limit) that sizes it, with its value
    frame_bytes: int


def _raft_frame(message: object) -> int:
    return len(encode(RaftFrame(MAX_FLOWS - 1, _WIDE, message)))  # type: ignore[arg-type]


def snapshot_frame_bytes(chunk_bytes: int) -> int:
    """The largest InstallSnapshot frame carrying a chunk of `chunk_bytes`."""
    meta = SnapshotMeta(_WIDE, _WIDE, _CONF)
    empty = InstallSnapshot(_WIDE, _WIDE, _WIDE, meta, _WIDE, b"", False)
    return _raft_frame(empty) + _PREFIX + chunk_bytes


def append_frame_bytes(batch_bytes: int, max_entries: int) -> int:
    """The largest AppendEntries frame of a batch the Raft core builds with
    `max_bytes_per_msg` = `batch_bytes` and `max_entries_per_msg` = `max_entries`: entries
    whose `entry_size` (payload + ENTRY_OVERHEAD_BYTES) add up to at most `batch_bytes`,
    or a single entry of any size (at most a client request's `MAX_REQUEST_BYTES`)."""
    header = _raft_frame(AppendEntries(_WIDE, _WIDE, _WIDE, _WIDE, _WIDE, _WIDE, ())) + _PREFIX
    per_entry = len(encode(Entry(_WIDE, _WIDE, EntryKind.CONF_CHANGE, b""))) + _PREFIX
    payload = max(batch_bytes, MAX_REQUEST_BYTES + ENTRY_OVERHEAD_BYTES)
    # Counted at ENTRY_OVERHEAD_BYTES each; encoded, each entry costs `per_entry`.
    return header + payload + max_entries * max(0, per_entry - ENTRY_OVERHEAD_BYTES)


def request_frame_bytes() -> int:
    """The largest client request frame: a write of `MAX_REQUEST_BYTES`."""
    return (
        len(encode(RpcRequest(_WIDE, 24 * 3600 * 1000, Submit(b""))))
        + _PREFIX
        + (MAX_REQUEST_BYTES)
    )


_KV = KvConfig()  # the kv's limits every node runs with (not a cluster file setting)


def reply_frame_bytes(kv: KvConfig = _KV) -> int:
    """The largest reply to one range read: `max_range_kvs` pairs whose keys and values
    add up to `max_response_bytes` (the kv's built-in limits)."""
    pair = len(encode(KeyValue(b"k", _WIDE, _WIDE, _WIDE, b""))) - 1 + 2 * _PREFIX
    result = len(encode(RangeResult(_WIDE, (), True, _WIDE))) + _PREFIX
    result += kv.max_response_bytes + kv.max_range_kvs * pair
    return len(encode(RpcResponse(_WIDE, QueryResult(_WIDE, b"")))) + _PREFIX + result


def frame_needs(snapshot_chunk_bytes: int, append_bytes: int, max_entries: int) -> list[FrameNeed]:
    """What each kind of traffic needs of a frame under these settings."""
    kv = _KV
    return [
        FrameNeed(
            "an InstallSnapshot frame",
            f"limits.max_snapshot_chunk_bytes ({snapshot_chunk_bytes})",
            snapshot_frame_bytes(snapshot_chunk_bytes),
        ),
        FrameNeed(
            "an AppendEntries frame",
            f"limits.max_append_bytes ({append_bytes}; and one entry of up to "
            f"{MAX_REQUEST_BYTES}, a client request's limit)",
            append_frame_bytes(append_bytes, max_entries),
        ),
        FrameNeed(
            "a client request frame",
            f"the client request limit ({MAX_REQUEST_BYTES}, built in)",
            request_frame_bytes(),
        ),
        FrameNeed(
            "a client reply frame",
            f"the kv's max_response_bytes ({kv.max_response_bytes}) and max_range_kvs "
            f"({kv.max_range_kvs}) (built in)",
            reply_frame_bytes(kv),
        ),
    ]
