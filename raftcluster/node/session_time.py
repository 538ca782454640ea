"""Session time comes from the leader, never from a client.

A client's `OpenSession` and `KeepAlive` carry a `now_ms` (the client's clock), and the
session table reads time as the largest it was given. Left as the client sent it, one
client an hour ahead would push every session's clock an hour on and expire the honest
ones. So the leader proposes these commands stamped with its own clock: the one its
leader services (`SessionExpiry`, which proposes `ExpireSessions`) already use, so a
session's deadline and its expiry are measured on the same clock. The client's stamp is
ignored. Every other command is proposed byte for byte as the client sent it.
"""

from __future__ import annotations

import attrs

from statemachine.codec import Message, decode, encode
from statemachine.errors import DecodeError
from statemachine.sessions.messages import KeepAlive, OpenSession


def leader_stamped(decoded: Message, command: bytes, now_ms: int) -> bytes:
    """What the leader proposes for a client's `command` (decoded: `decoded`) at `now_ms`
    on its own clock: `OpenSession`/`KeepAlive` restamped, anything else unchanged."""
    if isinstance(decoded, OpenSession | KeepAlive):
        return encode(attrs.evolve(decoded, now_ms=now_ms))
    return command


def same_but_stamp(sent: bytes, proposed: bytes) -> bool:
    """Whether `proposed` is what a leader proposes for a client's `sent`: the same bytes,
    or the same `OpenSession`/`KeepAlive` with the leader's time (for checkers)."""
    if sent == proposed:
        return True
    try:
        a, b = decode(sent, Message), decode(proposed, Message)
    except DecodeError:
        return False
    if not isinstance(a, OpenSession | KeepAlive) or type(a) is not type(b):
        return False
    return attrs.evolve(a, now_ms=0) == attrs.evolve(b, now_ms=0)
