"""Reconnection delays: exponential backoff with jitter, bounded.

Pure: the randomness comes in as a `random.Random`, so a seeded run draws the same
delays. Jitter spreads the redials of many nodes that lost the same peer at once.
"""

from __future__ import annotations

import random

import attrs

from statemachine.errors import InvalidArgument

# Cap on the exponent so the float never overflows however long a peer stays down.
_MAX_EXPONENT = 64


def _check(backoff: Backoff) -> None:
    if not 0 < backoff.initial_ms <= backoff.max_ms:
        raise InvalidArgument("Backoff.initial_ms", "need 0 < initial_ms <= max_ms")
    if backoff.multiplier < 1.0:
        raise InvalidArgument("Backoff.multiplier", "must be at least 1")
    if not 0.0 <= backoff.jitter <= 1.0:
        raise InvalidArgument("Backoff.jitter", "must be within 0..1")


@attrs.frozen
class Backoff:
    """Delay before redial number `attempt` (0 for the first redial after a failure).

    The envelope is ``min(max_ms, initial_ms * multiplier ** attempt)``; the delay is
    drawn uniformly from ``[envelope * (1 - jitter), envelope]``, so it never exceeds
    `max_ms` and never falls below ``initial_ms * (1 - jitter)``.
    """

    initial_ms: int = 50
    max_ms: int = 1000
    multiplier: float = 2.0
    jitter: float = 0.5

    def __attrs_post_init__(self) -> None:
        _check(self)

    def envelope_ms(self, attempt: int) -> float:
        assert attempt >= 0, attempt
        grown = self.initial_ms * self.multiplier ** min(attempt, _MAX_EXPONENT)
        return float(min(self.max_ms, grown))

    def delay_ms(self, attempt: int, rng: random.Random) -> float:
        envelope = self.envelope_ms(attempt)
        return envelope * (1.0 - self.jitter * rng.random())
