"""A ready-made stateful test for parts: replicas fed the same log, checked against a model.

Subclass `ReplicasMachine`, say which `parts` to register (and `state_options` for
`ClusterState`), give `commands` (and `queries`) strategies and a model from
`make_model()`, and take its `TestCase`:

    class BankMachine(ReplicasMachine):
        parts = (BANK,)
        commands = commands_of(BANK, account=st.sampled_from("abc"))
        queries = queries_of(BANK)

        def make_model(self) -> BankModel:
            return BankModel()

    TestBank = BankMachine.TestCase

Every command Hypothesis draws goes into one log and is applied by every replica:
- one through `ClusterState.execute(index, command)`, one through `apply(index, bytes)`:
  their results and events must be equal, byte for byte, and equal to what the model
  says (a refusal compares by `Failure` code and detail; the model may raise `Rejected`
  or return a `Failure`);
- `lagging` more replicas fall behind, and catch up when a rule says, either by
  replaying the log from where they stopped or by restoring a fresh state from the
  leading replica's snapshot; then every replica's snapshot must be equal;
- a rule replaces the `apply(bytes)` replica with one restored from its own snapshot, so
  what follows runs on restored state.

After every applied entry, on every replica, `check_invariants()` of every part that
declares it is called (through the `ClusterState` observer's `applied` hook). Queries go
to both leading replicas and the model. A subclass adds rules of its own with `write`,
`read` and `expect`.

A model is any object with `execute(command) -> result` and `query(query) -> result`;
`make_model()` returning None checks the replicas against each other only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from statemachine.cluster import ClusterState
from statemachine.codec import Message, encode
from statemachine.errors import ClusterError
from statemachine.part import PartSpec
from statemachine.results import Failure, failure_of
from statemachine.sessions.messages import SessionRequest

MAX_LAGGING = 8  # lagging replicas a machine may ask for (each replays the whole log)


class PartModel(Protocol):
    """What the machine asks a user's model (a plain, obviously right version of the part)."""

    def execute(self, command: Message) -> Message:
        """The result `command` must give (raise a `ClusterError` such as `Rejected`, or
        return a `Failure`, for a refusal), and apply it to the model."""
        ...

    def query(self, query: Message) -> Message:
        """The result `query` must give."""
        ...


class _CheckInvariants:
    """The observer that calls every part's `check_invariants()` after each apply."""

    def executed(self, index: int, request: SessionRequest) -> None:
        pass

    def applied(self, index: int, state: ClusterState) -> None:
        state.check_invariants()


@attrs.define
class Lagging:
    """A replica that applied the log up to `position` (its next entry is position + 1)."""

    state: ClusterState
    position: int = 0


def same_result(actual: Message, wanted: Message) -> None:
    """Assert two results agree: failures by code and detail (not their wording)."""
    if isinstance(actual, Failure) or isinstance(wanted, Failure):
        assert isinstance(actual, Failure) and isinstance(wanted, Failure), (
            f"got {actual!r}, the model says {wanted!r}"
        )
        assert (actual.code, actual.detail) == (wanted.code, wanted.detail), (
            f"got {actual!r}, the model says {wanted!r}"
        )
        return
    assert actual == wanted, f"got {actual!r}, the model says {wanted!r}"


class ReplicasMachine(RuleBasedStateMachine):
    """Replicas of a `ClusterState` with `parts`, fed one log, against `make_model()`."""

    parts: ClassVar[Sequence[PartSpec]] = ()
    state_options: ClassVar[Mapping[str, Any]] = {}  # ClusterState(**state_options)
    commands: ClassVar[st.SearchStrategy[Message] | None] = None
    queries: ClassVar[st.SearchStrategy[Message] | None] = None
    lagging: ClassVar[int] = 2

    def __init__(self) -> None:
        super().__init__()
        assert 0 <= self.lagging <= MAX_LAGGING, f"lagging must be 0 to {MAX_LAGGING}"
        self.model = self.make_model()
        self.log: list[bytes] = []  # the encoded commands, entry i + 1 at i
        self.by_execute = self.new_state()
        self.by_bytes = self.new_state()
        self.behind = [Lagging(self.new_state()) for _ in range(self.lagging)]

    def make_model(self) -> PartModel | None:
        """The model the replicas must agree with (None: with each other only)."""
        return None

    def new_state(self) -> ClusterState:
        """An empty state with `parts`, checking invariants after every apply."""
        state = ClusterState(observer=_CheckInvariants(), **self.state_options)
        for spec in self.parts:
            state.register(spec)
        return state

    # -- what rules use -----------------------------------------------------------------

    def write(self, command: Message) -> Message:
        """Append `command` to the log; apply it on both leading replicas and the model;
        return its result (after checking they all agree)."""
        index = len(self.log) + 1
        data = encode(command)
        self.log.append(data)
        done = self.by_execute.execute(index, command)
        applied = self.by_bytes.apply(index, data)
        assert applied.result == encode(done.result), (
            f"entry {index}: apply(bytes) gave another result than execute: {done.result!r}"
        )
        assert applied.events == tuple(encode(e) for e in done.events), (
            f"entry {index}: apply(bytes) emitted other events than execute"
        )
        if self.model is not None:
            model = self.model
            self.expect(done.result, lambda: model.execute(command))
        return done.result

    def read(self, query: Message) -> Message:
        """Answer `query` on both leading replicas and the model; return the result."""
        result = self.by_execute.read(query)
        assert self.by_bytes.query(encode(query)) == encode(result), (
            f"query(bytes) gave another answer than read: {result!r}"
        )
        if self.model is not None:
            model = self.model
            self.expect(result, lambda: model.query(query))
        return result

    def expect(self, actual: Message, wanted: Callable[[], Message]) -> None:
        """Assert `actual` is what `wanted()` gives; a `ClusterError` it raises stands
        for the `Failure` a part would have returned."""
        try:
            expected = wanted()
        except ClusterError as e:
            expected = failure_of(e)
        same_result(actual, expected)

    # -- rules --------------------------------------------------------------------------

    @rule(data=st.data())
    def run_a_command(self, data: st.DataObject) -> None:
        if self.commands is not None:
            self.write(data.draw(self.commands, label="command"))

    @rule(data=st.data())
    def ask_a_query(self, data: st.DataObject) -> None:
        if self.queries is not None:
            self.read(data.draw(self.queries, label="query"))

    @rule(which=st.integers(0, MAX_LAGGING - 1))
    def catch_up_by_log(self, which: int) -> None:
        """A lagging replica applies the entries it missed, from the log's bytes."""
        if not self.behind:
            return
        replica = self.behind[which % len(self.behind)]
        for index in range(replica.position + 1, len(self.log) + 1):
            replica.state.apply(index, self.log[index - 1])
        replica.position = len(self.log)
        assert replica.state.snapshot() == self.by_execute.snapshot(), (
            "a replica that replayed the log holds another state"
        )

    @rule(which=st.integers(0, MAX_LAGGING - 1))
    def catch_up_by_snapshot(self, which: int) -> None:
        """A lagging replica is replaced by a fresh one restored from a snapshot."""
        if not self.behind:
            return
        replica = self.behind[which % len(self.behind)]
        snapshot = self.by_execute.snapshot()
        replica.state = self.new_state()
        replica.state.restore(snapshot)
        replica.state.check_invariants()
        replica.position = len(self.log)
        assert replica.state.snapshot() == snapshot, "a restored replica snapshots otherwise"

    @rule()
    def restart_from_own_snapshot(self) -> None:
        """The apply(bytes) replica restarts from its own snapshot (the snapshot array
        and message encodings must be the same bytes)."""
        snapshot = self.by_bytes.snapshot()
        assert snapshot == encode(self.by_bytes.snapshot_message())
        restored = self.new_state()
        restored.restore(snapshot)
        restored.check_invariants()
        assert restored.snapshot() == snapshot
        self.by_bytes = restored

    @invariant()
    def leading_replicas_agree(self) -> None:
        assert self.by_execute.snapshot() == self.by_bytes.snapshot(), (
            "execute and apply(bytes) led to other states"
        )
