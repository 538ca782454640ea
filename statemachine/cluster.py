"""`ClusterState`: the replicated state machine, a composition of named parts.

Commands are routed to the part that registered their class; `SessionRequest`
envelopes are unwrapped here, with the `sessions` part deciding whether the inner
command is new (apply it, keep the reply) or a retry (answer the kept reply). The
snapshot is the canonical encoding of every part's snapshot, sorted by part name.

`apply(index, bytes)` is what the Raft log drives; `execute(index, command)` is the
same for a command already built in-process. Neither raises for a bad command: it
gets a `Failure` result and changes nothing.

`apply_committed(index, bytes)` is `apply` for an entry a leader proposed after
`check_command` accepted it: one that does not decode, or that no part handles, then
means this replica runs other parts than the leader, and it raises `UnknownEntry`
rather than answer a failure the leader's replicas would not (a node and the simulator's
replicas apply their log this way).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from statemachine.codec import Message, decode, encode, encode_value, max_len, parse, tagged
from statemachine.errors import ClusterError, Code, DecodeError, InvalidArgument, UnknownEntry
from statemachine.groups import part as groups_part
from statemachine.groups.config import GroupsConfig
from statemachine.kv import part as kv_part
from statemachine.kv.limits import MAX_REQUEST_BYTES, KvConfig
from statemachine.part import ApplyContext, Part, PartSpec
from statemachine.partset import PartSet
from statemachine.protocol import Applied
from statemachine.results import Failure, failure_of
from statemachine.sessions import part as sessions_part
from statemachine.sessions.messages import SessionRequest
from statemachine.sessions.table import SessionLimits

BUILTIN_PARTS = (groups_part.NAME, kv_part.NAME, sessions_part.NAME)
MAX_PARTS = 64


@tagged(2)
@attrs.frozen
class PartState(Message):
    name: str
    state: Message


@tagged(3)
@attrs.frozen
class ClusterSnapshot(Message):
    parts: tuple[PartState, ...] = attrs.field(validator=max_len(MAX_PARTS, "parts"))


@attrs.frozen
class Executed:
    """The typed outcome of one command: its result and the events it caused, in order."""

    result: Message
    events: tuple[Message, ...] = ()


class ApplyObserver(Protocol):
    """Told what a `ClusterState` does as it applies (for checkers: the simulator's
    exactly-once check). It must not change the state, and must not raise unless the run
    it observes is to stop.

    An observer may also define `applied(index: int, state: ClusterState) -> None`,
    called after each entry is applied (a failed command and a retry included), for
    checks of the whole state such as `state.check_invariants()`; the state calls it
    only if the observer has it."""

    def executed(self, index: int, request: SessionRequest) -> None:
        """The command of session request `request` was executed at log index `index`
        (a retry answered from the session table is not an execution)."""
        ...


class ClusterState:
    """The built-in cluster state (`groups`, `kv`, `sessions`) plus any parts a user registers.

    Every replica must be built with the same configuration and register the same
    parts, in any order, before it applies anything: `parts` registers user parts at
    once, `register` one at a time. `observer` (optional) is told of each session
    request executed. `part_set` describes the parts (their fingerprint).
    """

    def __init__(
        self,
        *,
        kv: KvConfig | None = None,
        sessions: SessionLimits | None = None,
        groups: GroupsConfig | None = None,
        max_command_bytes: int = MAX_REQUEST_BYTES,
        observer: ApplyObserver | None = None,
        parts: Sequence[PartSpec] = (),
    ) -> None:
        self.max_command_bytes = max_command_bytes
        self.observer = observer
        # The observer's optional per-entry hook (looked up once: most observers lack it).
        self._after_apply = getattr(observer, "applied", None)
        self._specs: dict[str, PartSpec] = {}
        self._parts: dict[str, Part] = {}
        self._command_owner: dict[type[Message], str] = {}
        self._query_owner: dict[type[Message], str] = {}
        self._part_set: PartSet | None = None  # built when first asked for
        # `changed_at`: a count of commands routed and restores, and for each part the
        # count when it last may have changed (a part not in it: at `_restored_at`).
        self._changes = 0
        self._changed_at: dict[str, int] = {}
        self._restored_at = 0
        self._add(kv_part.spec(kv))
        self._add(sessions_part.spec(sessions))
        self._add(groups_part.spec(groups))
        for spec in parts:
            self.register(spec)

    # -- composition --------------------------------------------------------------------

    def register(self, spec: PartSpec) -> None:
        """Add a user part. Its command and query classes must use tags >= 10000."""
        spec.check_user_tags()
        self._add(spec)

    def _add(self, spec: PartSpec) -> None:
        if spec.name in self._specs:
            raise InvalidArgument("PartSpec.name", f"a part named {spec.name!r} exists")
        if len(self._specs) >= MAX_PARTS:
            raise InvalidArgument("PartSpec.name", f"at most {MAX_PARTS} parts")
        for owners, classes in (
            (self._command_owner, spec.commands),
            (self._query_owner, spec.queries),
        ):
            taken = [c.__name__ for c in classes if c in owners or c is SessionRequest]
            if taken:
                raise InvalidArgument(f"{spec.name}", f"already routed elsewhere: {taken}")
        self._specs[spec.name] = spec
        self._parts[spec.name] = spec.factory()
        self._command_owner.update(dict.fromkeys(spec.commands, spec.name))
        self._query_owner.update(dict.fromkeys(spec.queries, spec.name))
        self._part_set = None

    def part(self, name: str) -> Part:
        """The running part named `name` (for inspection; change it only through commands)."""
        return self._parts[name]

    def changed_at(self, name: str) -> int:
        """A number that moves whenever the part named `name` may have changed (a command
        was routed to it, or the state was restored) and at no other time: a reader of
        one part's state (the cluster service reads `groups` after every applied entry)
        reads it again only when this moved."""
        return self._changed_at.get(name, self._restored_at)

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._parts))

    @property
    def part_set(self) -> PartSet:
        """The registered parts (built-in ones included): names, versions, message tags."""
        if self._part_set is None:
            self._part_set = PartSet.of(self._specs.values())
        return self._part_set

    @property
    def fingerprint(self) -> str:
        """The part set's fingerprint (hex): equal on replicas that may share a log."""
        return self.part_set.fingerprint

    @property
    def checks_invariants(self) -> bool:
        """Whether any registered part declares `check_invariants()`."""
        return any(hasattr(part, "check_invariants") for part in self._parts.values())

    def check_invariants(self) -> None:
        """Call `check_invariants()` of every part that declares it, by part name; the
        first `InvariantBroken` propagates. Changes nothing."""
        for name in sorted(self._parts):
            check = getattr(self._parts[name], "check_invariants", None)
            if check is not None:
                check()

    # -- commands -----------------------------------------------------------------------

    def apply(self, index: int, command: bytes) -> Applied:
        """Apply the encoded command of log entry `index`; never raises for any bytes."""
        return self._apply(index, command, committed=False)

    def apply_committed(self, index: int, command: bytes, *, with_events: bool = True) -> Applied:
        """`apply` for a log entry the leader checked (`check_command`) before proposing
        it. Raises `UnknownEntry` (index, tag, reason, this part set) where `apply` would
        answer that it does not decode or that no part handles it: this replica runs
        other parts than the leader, and must stop rather than diverge.

        `with_events` False: `Applied.events` is left empty, the events the parts emitted
        not encoded (a fifth of a session put's cost), for a caller that reads none of
        them; the result and the state are the same."""
        return self._apply(index, command, committed=True, with_events=with_events)

    def check_command(self, command: Message) -> str | None:
        """Why a leader must not propose `command` (no part here handles it, or the one a
        `SessionRequest` carries), or None. What it accepts, `apply_committed` applies on
        every replica with the same parts."""
        inner = command.command if isinstance(command, SessionRequest) else command
        if type(inner) not in self._command_owner:
            return f"no part handles the command {type(inner).__name__}"
        return None

    def _apply(
        self, index: int, command: bytes, *, committed: bool, with_events: bool = True
    ) -> Applied:
        if len(command) > self.max_command_bytes:
            return Applied(encode(_too_large(len(command), self.max_command_bytes)))
        try:
            decoded = decode(command, Message)
        except DecodeError as e:
            if committed:
                raise self._unknown(index, command, f"it does not decode: {e}") from None
            return Applied(encode(failure_of(e)))
        if committed:
            problem = self.check_command(decoded)
            if problem is not None:
                raise self._unknown(index, command, problem)
        done = self._run(index, decoded)
        reply, events = done.reply, done.events
        if reply is None:
            assert done.result is not None
            reply = encode(done.result)
        return Applied(reply, tuple(map(encode, events)) if events and with_events else ())

    def _unknown(self, index: int, command: bytes, reason: str) -> UnknownEntry:
        try:
            raw = parse(command)
        except DecodeError:
            raw = None
        tag = raw[0] if type(raw) is list and raw and type(raw[0]) is int else 0
        return UnknownEntry(index, tag, reason, self.part_set.describe())

    def execute(self, index: int, command: Message) -> Executed:
        """Apply a command built in-process: exactly what `apply(index, encode(command))`
        does, without decoding (the size limit is checked on its encoding)."""
        size = len(encode(command))
        if size > self.max_command_bytes:
            return Executed(_too_large(size, self.max_command_bytes))
        done = self._run(index, command)
        result = done.result
        if result is None:
            assert done.reply is not None
            result = decode(done.reply, Message)
        return Executed(result, tuple(done.events))

    def _run(self, index: int, command: Message) -> _Done:
        """Apply `command` at `index`: its result and the events it caused (see `_Done`)."""
        if index < 1:
            raise InvalidArgument("index", f"log indexes start at 1, got {index}")
        if isinstance(command, SessionRequest):
            done = self._in_session(index, command)
        else:
            owner = self._command_owner.get(type(command))
            if owner is None:
                done = _unhandled(command)
            else:
                done = self._dispatch(index, command, owner)
        if self._after_apply is not None:
            self._after_apply(index, self)
        return done

    def _dispatch(self, index: int, command: Message, owner: str) -> _Done:
        """Apply `command` in part `owner`: (result, None, events); none on a refusal."""
        events: list[Message] = []
        self._changes += 1  # the part may change now (`changed_at`)
        self._changed_at[owner] = self._changes
        try:
            result = self._parts[owner].apply(command, ApplyContext(index, events.append))
        except ClusterError as e:  # the part refused before changing anything
            return _Done(failure_of(e), None, ())
        return _Done(result, None, events)

    def _in_session(self, index: int, request: SessionRequest) -> _Done:
        """The inner command applied once: a new request's result is encoded once, for the
        session table and for the caller (`_Done`'s reply); a retry is answered with the
        reply kept, as it was kept, and nothing applied again."""
        inner = request.command
        owner = self._command_owner.get(type(inner))
        if isinstance(inner, SessionRequest) or owner == sessions_part.NAME:
            message = f"a SessionRequest cannot carry {type(inner).__name__}"
            return _Done(Failure.of(Code.INVALID_ARGUMENT, message), None, ())
        if owner is None:
            return _unhandled(inner)
        sessions = self._parts[sessions_part.NAME]
        assert isinstance(sessions, sessions_part.SessionsPart)
        table = sessions.table
        self._changes += 1  # `sessions` changes now (`changed_at`): its table records
        self._changed_at[sessions_part.NAME] = self._changes
        try:
            kept = table.admit(request.session, request.seq, request.ack)
        except ClusterError as e:
            return _Done(failure_of(e), None, ())
        if kept is not None:  # a retry: the reply it had, and nothing applied again
            return _Done(None, kept, ())
        if self.observer is not None:
            self.observer.executed(index, request)
        done = self._dispatch(index, inner, owner)
        assert done.result is not None
        reply = encode(done.result)
        table.record(request.session, request.seq, reply)
        return _Done(done.result, reply, done.events)

    # -- queries ------------------------------------------------------------------------

    def query(self, query: bytes) -> bytes:
        """Answer an encoded read-only query; never raises for any bytes."""
        if len(query) > self.max_command_bytes:
            return encode(_too_large(len(query), self.max_command_bytes))
        try:
            decoded = decode(query, Message)
        except DecodeError as e:
            return encode(failure_of(e))
        return encode(self.read(decoded))

    def read(self, query: Message) -> Message:
        """Answer a read-only query built in-process: its result, or a `Failure`."""
        owner = self._query_owner.get(type(query))
        if owner is None:
            return Failure.of(Code.UNKNOWN_COMMAND, f"no part answers {type(query).__name__}")
        try:
            return self._parts[owner].query(query)
        except ClusterError as e:
            return failure_of(e)

    # -- snapshots ----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Canonical bytes of every part's state, by part name: equal states, equal bytes.

        The bytes of `encode(self.snapshot_message())`, built from each part's
        `snapshot_array()` where it has one (a plain array encodes to the same bytes as
        its message, and is far quicker to build for a large state)."""
        parts = [[PartState.TAG, name, self._part_snapshot(name)] for name in sorted(self._parts)]
        return encode_value([ClusterSnapshot.TAG, parts])

    def _part_snapshot(self, name: str) -> Any:
        part = self._parts[name]
        as_array = getattr(part, "snapshot_array", None)
        return as_array() if as_array is not None else part.snapshot()

    def snapshot_message(self) -> ClusterSnapshot:
        return ClusterSnapshot(
            tuple(PartState(name, self._parts[name].snapshot()) for name in sorted(self._parts))
        )

    def restore(self, snapshot: bytes) -> None:
        """Replace the whole state with `snapshot`, or raise DecodeError and keep the current
        one. A registered part missing from the snapshot starts empty (it was added since);
        a part in the snapshot that is not registered is an error (its state would be lost)."""
        parts = self._restored(decode(snapshot, ClusterSnapshot))
        self._parts = parts
        self._changes += 1
        self._restored_at = self._changes
        self._changed_at.clear()

    def _restored(self, snapshot: ClusterSnapshot) -> dict[str, Part]:
        fresh = {name: spec.factory() for name, spec in self._specs.items()}
        previous = ""
        for i, saved in enumerate(snapshot.parts):
            path = f"ClusterSnapshot.parts[{i}]"
            if saved.name <= previous:
                raise DecodeError(path, "part names are not in ascending order")
            previous = saved.name
            if saved.name not in fresh:
                raise DecodeError(path, f"no part named {saved.name!r} is registered")
            fresh[saved.name].restore(saved.state)
        return fresh


@attrs.frozen
class _Done:
    """What applying one command gave. `reply` is the result encoded where it already is
    (a session request's, kept in the session table), else None; a retry answered from
    the session table has only its kept reply (`result` None). One of the two is always
    given; each caller builds the other only if it needs it."""

    result: Message | None
    reply: bytes | None
    events: Sequence[Message]


def _unhandled(command: Message) -> _Done:
    message = f"no part handles the command {type(command).__name__}"
    return _Done(Failure.of(Code.UNKNOWN_COMMAND, message), None, ())


def _too_large(size: int, limit: int) -> Failure:
    return Failure.of(
        Code.LIMIT_EXCEEDED, f"the command is {size} bytes, over the limit of {limit} bytes", limit
    )
