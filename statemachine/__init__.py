"""The pure, deterministic replicated state machine: commands in, results and events out.

Imports only the standard library (no clocks, randomness, I/O or threads), attrs and
cbor2; `tests/test_architecture.py` holds it to that.
"""

from statemachine.cluster import ClusterState, Executed
from statemachine.codec import Message, decode, encode, tagged
from statemachine.errors import (
    BadRequest,
    ClusterError,
    Code,
    Compacted,
    DecodeError,
    FieldTypeError,
    FutureRevision,
    InvalidArgument,
    LimitExceeded,
    Rejected,
    SessionError,
    UnknownEntry,
    UnknownPart,
)
from statemachine.part import ApplyContext, Part, PartSpec
from statemachine.protocol import Applied, StateMachine
from statemachine.results import Failure, expect, failure_of, to_exception

__all__ = [
    "Applied",
    "ApplyContext",
    "BadRequest",
    "ClusterError",
    "ClusterState",
    "Code",
    "Compacted",
    "DecodeError",
    "Executed",
    "Failure",
    "FieldTypeError",
    "FutureRevision",
    "InvalidArgument",
    "LimitExceeded",
    "Message",
    "Part",
    "PartSpec",
    "Rejected",
    "SessionError",
    "StateMachine",
    "UnknownEntry",
    "UnknownPart",
    "decode",
    "encode",
    "expect",
    "failure_of",
    "tagged",
    "to_exception",
]
