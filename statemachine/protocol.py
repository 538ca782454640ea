"""What any replicated state machine implements, ours or a user's.

The Raft log carries bytes; a state machine turns the command at each log position
into a result and the events it caused. It must be deterministic: the same commands
in the same order give the same results, events and snapshot bytes on every replica.
It never reads a clock or a random generator: anything time-based arrives inside a
command, decided by the leader's services.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs


@attrs.frozen
class Applied:
    """The outcome of applying one command: the encoded result and events, in order."""

    result: bytes
    events: tuple[bytes, ...] = ()


@runtime_checkable
class StateMachine(Protocol):
    """A deterministic replicated state machine.

    `apply` is called once per committed log entry, in index order, with strictly
    increasing `index`. It must not raise for any command bytes: a malformed or
    refused command gives a result that says so and changes nothing.
    """

    def apply(self, index: int, command: bytes) -> Applied: ...

    def query(self, query: bytes) -> bytes:
        """Answer a read-only query against the current state; changes nothing."""
        ...

    def snapshot(self) -> bytes:
        """The whole state as bytes: equal states give equal bytes."""
        ...

    def restore(self, snapshot: bytes) -> None:
        """Replace the whole state with the one `snapshot` encodes."""
        ...
