"""A part of the cluster state: one namespace with its own commands, queries and snapshot.

`ClusterState` is a composition of parts (the configuration database `kv`, client
`sessions`, and whatever a user registers). Each part is a plain synchronous object
implementing `Part`; `PartSpec` says under which name it lives and which command and
query classes are routed to it. Adding a part is: write the messages, write the
`Part`, add one `PartSpec`.

The contract a part keeps (the cluster relies on it for determinism and atomicity):
- `apply` checks everything first and raises a `ClusterError` (`Rejected`,
  `InvalidArgument`, `LimitExceeded`...) before it changes anything; the cluster turns
  that into a `Failure` result and drops the events emitted so far. Any other exception
  is a bug and propagates: a part that failed half-way may be inconsistent, and stopping
  is safer than replicating a guess.
- it reads no clock and no global randomness: time arrives inside commands.
- `snapshot` returns the same message for the same state, with every collection in a
  canonical order; `restore` accepts what `snapshot` produced and raises `DecodeError`
  for anything inconsistent.
- optional: `check_invariants()` raises `InvariantBroken` when the part's state breaks a
  rule it must always keep (money conserved...). It changes nothing. The simulator calls
  it on every replica after each applied entry and the Hypothesis kit
  (`raftcluster.testing`) after every step; nothing calls it on a production node.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, TypeVar

import attrs

from statemachine.codec import Message
from statemachine.errors import ClusterError, DecodeError, InvalidArgument

USER_TAG_MIN = 10_000
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

S = TypeVar("S", bound=Message)


class InvariantBroken(ClusterError):
    """A part's state broke one of its own invariants (raised by `check_invariants`): a
    bug in the part, never a refusal. `part` names the part, `message` what broke."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part = part
        self.message = message


@attrs.frozen
class ApplyContext:
    """What a part learns about the log entry it applies, and where its events go."""

    index: int  # the log index of the entry: unique and increasing, usable as an id
    emit: Callable[[Message], None]  # report an event; events come out in emission order


class Part(Protocol):
    """One namespace of the replicated state."""

    def apply(self, command: Message, context: ApplyContext) -> Message:
        """Apply one command routed here; return its result. Raise before changing anything."""
        ...

    def query(self, query: Message) -> Message:
        """Answer a read-only query routed here; changes nothing."""
        ...

    def snapshot(self) -> Message:
        """The part's whole state, canonical: equal states give equal messages.

        A part with a large state may also define `snapshot_array() -> list`: the same
        snapshot as the plain CBOR array its message encodes to (``[tag, field, ...]``,
        nested messages likewise), which the cluster then encodes instead, sparing a
        message object per item (see `statemachine.kv.snapshot.snapshot_array`)."""
        ...

    def restore(self, snapshot: Message) -> None:
        """Replace the whole state with `snapshot` (from `snapshot()`); DecodeError if invalid.

        A part may also define `check_invariants() -> None`: raise `InvariantBroken` if
        the state breaks a rule it must always keep; change nothing. Checkers call it
        (the simulator after each apply on every replica, `raftcluster.testing` after
        every step), so it costs nothing on a node: it may be slow."""
        ...


def _check_name(instance: object, attribute: object, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidArgument("PartSpec.name", f"{name!r} is not [a-z][a-z0-9_]{{0,63}}")


def _check_version(instance: object, attribute: object, version: int) -> None:
    if type(version) is not int or not 1 <= version < 2**31:
        raise InvalidArgument("PartSpec.version", f"{version!r} is not an int in 1..2**31-1")


@attrs.frozen
class PartSpec:
    """How a part is registered: its name, how to build an empty one, what it handles.

    `factory` builds the part in its initial state; the cluster calls it at start and
    again to restore a snapshot into a fresh instance (so a failed restore leaves the
    running state untouched). Every replica must register the same parts with the same
    configuration.

    `version` is the part's own number for its behaviour and formats: raise it whenever a
    change would make two replicas disagree (what `apply` does, a message's fields). It
    goes into the part-set fingerprint, so nodes running different versions of a part
    refuse each other instead of diverging.
    """

    name: str = attrs.field(validator=_check_name)
    factory: Callable[[], Part]
    commands: tuple[type[Message], ...] = ()
    queries: tuple[type[Message], ...] = ()
    version: int = attrs.field(default=1, validator=_check_version)

    def check_user_tags(self) -> None:
        """User parts keep to tags from `USER_TAG_MIN` up, clear of the built-in ranges."""
        for cls in (*self.commands, *self.queries):
            if cls.TAG < USER_TAG_MIN:
                raise InvalidArgument(
                    f"{self.name}.{cls.__name__}",
                    f"tag {cls.TAG} is below {USER_TAG_MIN}, the first tag for user parts",
                )


def expect_snapshot(snapshot: Message, kind: type[S], part: str) -> S:
    """`snapshot` as `kind`, or the DecodeError a part's `restore` raises."""
    if not isinstance(snapshot, kind):
        raise DecodeError(part, f"expected {kind.__name__}, got {type(snapshot).__name__}")
    return snapshot
