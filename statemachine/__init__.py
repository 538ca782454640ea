"""The pure, deterministic replicated state machine: commands in, results and events out.

Imports only the standard library (no clocks, randomness, I/O or threads), attrs and
cbor2; `tests/test_architecture.py` holds it to that.
"""

from statemachine.codec import Message, decode, encode, tagged
from statemachine.errors import ClusterError, DecodeError, InvalidArgument, LimitExceeded, Rejected
from statemachine.protocol import Applied, StateMachine

__all__ = [
    "Applied",
    "ClusterError",
    "DecodeError",
    "InvalidArgument",
    "LimitExceeded",
    "Message",
    "Rejected",
    "StateMachine",
    "decode",
    "encode",
    "tagged",
]
