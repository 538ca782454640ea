"""The configuration database: an etcd-v3-shaped multi-version key-value store.

See docs/configdb.md for the semantics, limits and errors.
"""

from statemachine.kv.commands import (
    Changes,
    Compact,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    Put,
    Range,
    Txn,
    TxnOp,
)
from statemachine.kv.keys import ALL_KEYS, prefix_end
from statemachine.kv.limits import (
    MAX_KEY_BYTES,
    MAX_REQUEST_BYTES,
    MAX_TXN_OPS,
    MAX_VALUE_BYTES,
    KvConfig,
)
from statemachine.kv.part import KvPart
from statemachine.kv.results import (
    ChangesResult,
    CompactResult,
    DeleteRangeResult,
    EventKind,
    KeyValue,
    KvEvent,
    OpResult,
    PutResult,
    RangeResult,
    TxnResult,
)

__all__ = [
    "ALL_KEYS",
    "MAX_KEY_BYTES",
    "MAX_REQUEST_BYTES",
    "MAX_TXN_OPS",
    "MAX_VALUE_BYTES",
    "Changes",
    "ChangesResult",
    "Compact",
    "CompactResult",
    "Compare",
    "CompareOp",
    "CompareTarget",
    "DeleteRange",
    "DeleteRangeResult",
    "EventKind",
    "KeyValue",
    "KvConfig",
    "KvEvent",
    "KvPart",
    "OpResult",
    "Put",
    "PutResult",
    "Range",
    "RangeResult",
    "Txn",
    "TxnOp",
    "TxnResult",
    "prefix_end",
]
