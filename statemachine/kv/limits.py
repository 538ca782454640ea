"""Limits of the configuration database.

The per-message limits are constants checked when a command is built or decoded
(so a client learns of them before sending). The per-store limits are `KvConfig`,
given when the part is built; every replica must use the same configuration, since
the limits decide results (and auto-compaction changes the state).
"""

from __future__ import annotations

import attrs

from statemachine.codec import MAX_ITEMS_DEFAULT, int_range, positive

MAX_KEY_BYTES = 4096
MAX_VALUE_BYTES = 1 << 20  # 1 MiB
MAX_TXN_OPS = 128  # each of compares, success ops and failure ops, like etcd's --max-txn-ops
MAX_REQUEST_BYTES = 1_572_864  # 1.5 MiB: a whole encoded command, like etcd's --max-request-bytes


@attrs.frozen
class KvConfig:
    """Per-store limits. Defaults suit a configuration database, not a bulk store."""

    # Key-values per range response, and events per changes response, whatever `limit` says.
    max_range_kvs: int = attrs.field(default=10_000, validator=positive)
    # Keys plus values in one response. Ranges stop early (more=True); a write whose
    # prev_kv answers would exceed it is refused.
    max_response_bytes: int = attrs.field(default=4 << 20, validator=positive)
    # Auto-compaction keeps at most this many revisions readable (see docs/configdb.md).
    history_revisions: int = attrs.field(
        default=10_000, validator=int_range(1, MAX_ITEMS_DEFAULT - 2)
    )
    # Keys one revision may change (a DeleteRange over more keys is refused).
    max_changes_per_revision: int = attrs.field(default=10_000, validator=positive)
    # Keys in the index, live or deleted-with-retained-history: bounds snapshots (whose
    # arrays the codec caps at MAX_ITEMS_DEFAULT) and memory.
    max_keys: int = attrs.field(default=1_000_000, validator=int_range(1, MAX_ITEMS_DEFAULT))
    # Bytes of keys and values over all retained versions; puts are refused beyond it.
    max_store_bytes: int = attrs.field(default=2 << 30, validator=positive)
    # Log entries one changes query examines at most, so a narrow watch over a busy
    # history answers in bounded time (it resumes from the cursor it is given).
    max_changes_scan: int = attrs.field(default=100_000, validator=positive)
