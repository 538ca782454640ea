"""Exactly-once of session requests, seen from the appliers and from the clients.

A client's write travels as `SessionRequest(session, seq, ack, command)` and may be
proposed more than once (a retry after a timeout or a change of leader), so the log may
hold it at several indexes; the session table must execute the command at the first and
answer the others from the reply it kept. Every replica's state machine is a
`ClusterState` built with an observer from `ExactlyOnce.observer(node)` (its public
`ApplyObserver` hooks), which is told each time a session request's command is really
executed (not answered from the table), and after each entry is applied. These are
`SafetyViolation`s ("exactly-once"):

- across every replica and every incarnation, a (session, seq) executed at two log
  indexes (a replica replaying its log after a restart executes it again at the same
  index, which is fine);
- a node answering a (session, seq) with a result other than the reply its execution
  kept (another request's reply, say), or with a result when it was never executed
  (a refusal, a `Failure`, is always allowed: the session may have forgotten it);

and, from what each client sends (`on_sent`; a client pipelining several writes on one
session is what exercises these):

- one (session, seq) sent with two different commands (a sequence number reused);
- a (session, seq) sent again after the client acknowledged it (`ack` >= seq in an
  earlier request): the client told the state machine to forget a reply it still needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from chaos.sim.invariants import SafetyViolation
from statemachine.cluster import ApplyObserver, ClusterState
from statemachine.codec import Message, decode
from statemachine.errors import DecodeError
from statemachine.results import Failure
from statemachine.sessions.messages import SessionRequest
from statemachine.sessions.part import NAME as SESSIONS
from statemachine.sessions.part import SessionsPart

INVARIANT = "exactly-once"

Key = tuple[int, int]  # (session, seq)


class ExactlyOnce:
    """Where each (session, seq) was executed and the reply kept; fails on a second
    index, on an answer that is not that reply, and on a client's misuse of its session."""

    def __init__(self, fail: Callable[[str, str, tuple[int, ...]], SafetyViolation]) -> None:
        self._fail = fail
        self.executed: dict[Key, tuple[int, int]] = {}  # -> (index, first node)
        self.replies: dict[Key, bytes] = {}  # the reply the first execution kept
        self.executions = 0  # commands executed in a session (replays included)
        self.answers_checked = 0  # answers to session requests compared with the reply
        # A request's encoded command -> its (session, seq), or None when it is no
        # session request; one entry per distinct request a client sent in the run.
        self._keys: dict[bytes, Key | None] = {}
        self._commands: dict[Key, bytes] = {}  # (session, seq) -> the command sent
        self._acked: dict[int, int] = {}  # session -> the highest `ack` sent in it

    def observer(self, node: int) -> ApplyObserver:
        """The observer for `node`'s state machine (`ClusterState(observer=...)`)."""
        return _NodeObserver(self, node)

    def on_executed(self, node: int, session: int, seq: int, index: int) -> None:
        self.executions += 1
        first = self.executed.setdefault((session, seq), (index, node))
        if first[0] != index:
            raise self._fail(
                INVARIANT,
                f"node {node} executed session {session}'s request {seq} at index {index}; "
                f"node {first[1]} executed it at index {first[0]}",
                (node, first[1]),
            )

    def on_kept(self, key: Key, reply: bytes | None) -> None:
        """The reply the session table kept for `key` right after executing it (None:
        evicted at once, over the table's limits)."""
        if reply is not None:
            self.replies.setdefault(key, reply)

    # -- what clients send and are answered ------------------------------------------

    def _key(self, command: bytes) -> Key | None:
        if command in self._keys:
            return self._keys[command]
        try:
            request = decode(command, Message)
        except DecodeError:
            request = None  # (not ours to judge: the node refuses it)
        key = None
        if isinstance(request, SessionRequest):
            key = (request.session, request.seq)
            self._on_new_request(key, request.ack, command)
        self._keys[command] = key
        return key

    def _on_new_request(self, key: Key, ack: int, command: bytes) -> None:
        session, seq = key
        sent = self._commands.setdefault(key, command)
        if sent != command:
            raise self._fail(
                INVARIANT,
                f"a client sent session {session}'s request {seq} with two different "
                "commands (a sequence number used twice)",
                (),
            )
        if ack > self._acked.get(session, 0):
            self._acked[session] = ack

    def on_sent(self, client: int, command: bytes) -> None:
        """Client `client` sends a write (`Submit.command`): a first send or a retry."""
        key = self._key(command)
        if key is None:
            return
        session, seq = key
        acked = self._acked.get(session, 0)
        if seq <= acked:
            raise self._fail(
                INVARIANT,
                f"client {client} sent session {session}'s request {seq} again after "
                f"acknowledging every reply up to {acked} (the state machine may have "
                "forgotten the reply this retry needs)",
                (),
            )

    def on_answer(self, node: int, client: int, command: bytes, result: bytes) -> None:
        """`node` answered client `client`'s write `command` with `result` (`Written`)."""
        key = self._key(command)
        if key is None:
            return
        self.answers_checked += 1
        if self.replies.get(key) == result:
            return
        try:
            answer = decode(result, Message)
        except DecodeError:
            return  # (the client reports junk as an unknown outcome)
        if isinstance(answer, Failure):
            return  # a refusal: the session table may have forgotten the request
        session, seq = key
        if key not in self.executed:
            what = "it was never executed"
        elif key in self.replies:
            index = self.executed[key][0]
            what = f"its execution at index {index} kept another reply"
        else:
            return  # (its reply was evicted at once: nothing to compare with)
        raise self._fail(
            INVARIANT,
            f"node {node} answered client {client}'s session {session} request {seq} "
            f"with {type(answer).__name__}, but {what}",
            (node,),
        )


class _NodeObserver:
    __slots__ = ("_check", "_node", "_pending")

    def __init__(self, check: ExactlyOnce, node: int) -> None:
        self._check, self._node = check, node
        self._pending: Key | None = None  # executed in the entry being applied

    def executed(self, index: int, request: SessionRequest) -> None:
        self._check.on_executed(self._node, request.session, request.seq, index)
        self._pending = (request.session, request.seq)

    def applied(self, index: int, state: ClusterState) -> None:
        if self._pending is None:
            return
        key, self._pending = self._pending, None
        table = cast(SessionsPart, state.part(SESSIONS)).table
        found = table.sessions.get(key[0])
        self._check.on_kept(key, None if found is None else found.replies.get(key[1]))
