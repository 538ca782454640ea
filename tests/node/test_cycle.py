"""The cycle policy (`CycleCore`), driven by hand: scripts of what a shell does, and a
Hypothesis property over random interleavings of inputs, persists and stops.

The trio `Driver` and the simulator both carry out exactly these actions; here nothing
waits, so each step of a cycle can be looked at."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from raftcluster.node.cycle import Actions, CycleCore, may_send_before_persist
from raftcluster.node.protocol import (
    ClientReply,
    GetStatus,
    NotLeader,
    Query,
    RefuseCode,
    Refused,
    Submit,
    Written,
)
from raftcluster.node.replica import Replica, Work
from raftcluster.raft.messages import AppendEntries, AppendResponse, Heartbeat, RaftMessage
from raftcluster.raft.ready import Role
from raftcluster.storage.memory import MemoryStorage
from statemachine.codec import encode
from statemachine.kv import Range
from statemachine.sessions.messages import OpenSession
from tests.node.harness import make_config

IDS = (1, 2, 3)


def open_session() -> Submit:
    return Submit(encode(OpenSession(0, 60_000)))


class Shell:
    """Three cycle cores and a network the test delivers by hand. It carries out actions
    as a shell must: sends go to `wire`, answers to `answers`, a persist waits in
    `persisting` until the test (or `settle`) completes it."""

    def __init__(self, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.now_ms = 0
        self.storages = {i: MemoryStorage() for i in IDS}
        self.cores = {
            i: CycleCore(
                Replica(make_config(i, IDS), self.storages[i], random.Random(rng.getrandbits(32)))
            )
            for i in IDS
        }
        self.wire: list[RaftMessage] = []
        self.answers: dict[tuple[int, int], list[ClientReply]] = {}
        self.persisting: dict[int, Work] = {}
        self.sent_early: list[RaftMessage] = []

    def carry_out(self, node: int, actions: Actions) -> None:
        self.wire.extend(actions.send)
        for answer in actions.answers:
            self.answers.setdefault((node, answer.request_id), []).append(answer.reply)
        if actions.persist is not None:
            self.persisting[node] = actions.persist
            self.sent_early.extend(actions.send)

    def start(self, node: int) -> Actions | None:
        actions = self.cores[node].start()
        if actions is not None:
            self.carry_out(node, actions)
        return actions

    def persist(self, node: int) -> Actions:
        work = self.persisting.pop(node)
        core = self.cores[node]
        core.replica.persist(work)
        actions = core.persisted(work)
        self.carry_out(node, actions)
        return actions

    def submit(self, node: int, request: object) -> int:
        request_id, actions = self.cores[node].submit(request, self.now_ms)  # type: ignore[arg-type]
        self.carry_out(node, actions)
        return request_id

    def deliver_all(self) -> None:
        messages, self.wire = self.wire, []
        for node in IDS:
            batch = [m for m in messages if m.dst == node]
            if batch:
                self.carry_out(node, self.cores[node].deliver(batch, self.now_ms))

    def settle(self, ms: int = 0) -> None:
        """Persist at once, deliver, and let time pass in 10 ms steps, until quiet."""
        end = self.now_ms + ms
        for _ in range(10_000):
            for node in IDS:
                while True:
                    if node in self.persisting:
                        self.persist(node)
                    elif self.start(node) is None:
                        break
            if self.wire:
                self.deliver_all()
                continue
            if self.now_ms >= end:
                return
            self.now_ms += 10
            for node in IDS:
                self.carry_out(node, self.cores[node].tick(self.now_ms))
        raise AssertionError("never settled")

    def leader(self) -> int:
        self.settle(2_000)
        (leader,) = [i for i in IDS if self.cores[i].replica.core.role == Role.LEADER]
        return leader


def test_a_leader_replicates_before_its_persist_and_a_follower_acknowledges_after_its_own():
    shell = Shell()
    leader = shell.leader()
    follower = next(i for i in IDS if i != leader)
    write = shell.submit(leader, open_session())
    started = shell.start(leader)
    assert started is not None and started.persist is not None  # the entry must be synced
    assert {type(m) for m in started.send} == {AppendEntries}  # out before the fsync
    assert {m.dst for m in started.send} == set(IDS) - {leader}
    shell.deliver_all()
    taken = shell.start(follower)
    assert taken is not None and taken.persist is not None
    assert taken.send == ()  # the acknowledgement waits for the follower's fsync
    done = shell.persist(follower)
    assert [type(m) for m in done.send] == [AppendResponse]
    assert shell.answers.get((leader, write)) is None  # not committed before the leader's own
    shell.settle()
    (reply,) = shell.answers[(leader, write)]
    assert isinstance(reply, Written)


def test_a_followers_acknowledgement_leaves_before_it_applies_what_the_same_append_committed():
    shell = Shell()
    leader = shell.leader()
    followers = [i for i in IDS if i != leader]
    shell.submit(leader, open_session())
    shell.start(leader)
    shell.persist(leader)
    shell.deliver_all()  # the entry's appends
    for f in followers:
        shell.start(f)
        shell.persist(f)
        shell.start(f)  # applies what that append committed (the term's no-op), if anything
        assert not shell.cores[f].in_cycle
    shell.deliver_all()  # their acknowledgements: the leader commits the entry
    assert shell.start(leader) is not None
    committed = shell.cores[leader].replica.core.commit_index
    shell.submit(leader, open_session())
    shell.start(leader)  # the next entry's appends tell the commit index
    shell.deliver_all()
    follower = followers[0]
    core = shell.cores[follower]
    applied = core.replica.applied_index
    taken = shell.start(follower)
    assert taken is not None and taken.persist is not None
    assert [e.index for e in taken.persist.ready.committed_entries][-1] == committed > applied
    done = shell.persist(follower)
    # The acknowledgement is out; the state machine has not applied anything yet.
    assert [type(m) for m in done.send] == [AppendResponse] and done.output is None
    assert core.in_cycle and core.replica.applied_index == applied
    assert core.has_ready()
    rest = shell.start(follower)  # the next start applies
    assert rest is not None and rest.send == () and rest.persist is None
    assert rest.output is not None and rest.completed is taken.persist
    assert core.replica.applied_index == committed and not core.in_cycle


def test_one_cycle_at_a_time_and_inputs_during_a_persist_join_the_next():
    shell = Shell()
    leader = shell.leader()
    first = shell.submit(leader, open_session())
    started = shell.start(leader)
    assert started is not None and started.persist is not None
    assert len(started.persist.ready.entries) == 1
    later = [shell.submit(leader, open_session()) for _ in range(5)]
    assert shell.cores[leader].in_cycle
    assert shell.start(leader) is None  # the persist under way comes first
    shell.persist(leader)
    second = shell.start(leader)
    assert second is not None and second.persist is not None
    assert len(second.persist.ready.entries) == 5  # one fsync for the five (group commit)
    shell.settle()
    assert all(isinstance(shell.answers[(leader, r)][0], Written) for r in [first, *later])


def test_an_answer_known_at_once_comes_with_the_submit():
    shell = Shell()
    leader = shell.leader()
    follower = next(i for i in IDS if i != leader)
    request_id, actions = shell.cores[follower].submit(open_session(), shell.now_ms)
    assert [(a.request_id, a.reply) for a in actions.answers] == [(request_id, NotLeader(leader))]
    assert shell.cores[follower].waiting == 0


def test_stop_completes_the_cycle_under_way_and_finish_answers_the_rest():
    shell = Shell()
    leader = shell.leader()
    for other in IDS:  # the leader alone: its writes cannot commit
        if other != leader:
            shell.cores[other].stop()
    write = shell.submit(leader, open_session())
    read = shell.submit(leader, Query(encode(Range(b"k"))))
    shell.start(leader)
    core = shell.cores[leader]
    core.stop()
    refused = shell.submit(leader, GetStatus())
    (late,) = shell.answers[(leader, refused)]
    assert isinstance(late, Refused) and late.code == RefuseCode.UNAVAILABLE
    assert core.start() is None
    shell.persist(leader)  # the cycle under way still completes
    shell.carry_out(leader, core.finish())
    (w,) = shell.answers[(leader, write)]
    (r,) = shell.answers[(leader, read)]
    assert isinstance(w, Refused) and w.code == RefuseCode.TIMED_OUT and not w.code.definite
    assert isinstance(r, Refused) and r.code == RefuseCode.UNAVAILABLE
    assert core.waiting == 0


def test_only_a_leaders_appends_and_heartbeats_may_go_before_the_persist():
    assert may_send_before_persist(AppendEntries(1, 1, 2, 0, 0, 0, ()))
    assert may_send_before_persist(Heartbeat(1, 1, 2, 0, 0))
    assert not may_send_before_persist(AppendResponse(1, 2, 1, index=3))


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["submit", "read", "deliver", "start", "persist", "tick", "stop"]),
        st.sampled_from(IDS),
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), steps=_STEPS)
def test_every_request_is_answered_once_and_nothing_promising_leaves_before_its_persist(
    seed: int, steps: list[tuple[str, int]]
) -> None:
    shell = Shell(seed)
    shell.leader()
    submitted: list[tuple[int, int]] = []
    for what, node in steps:
        core = shell.cores[node]
        if what == "submit":
            submitted.append((node, shell.submit(node, open_session())))
        elif what == "read":
            submitted.append((node, shell.submit(node, Query(encode(Range(b"k"))))))
        elif what == "deliver":
            shell.deliver_all()
        elif what == "start":
            shell.start(node)
        elif what == "persist" and node in shell.persisting:
            shell.persist(node)
        elif what == "tick":
            shell.now_ms += 37
            for i in IDS:
                shell.carry_out(i, shell.cores[i].tick(shell.now_ms))
        elif what == "stop":
            core.stop()
        # (Checked against the message kinds, not through the function under test.)
        assert all(isinstance(m, AppendEntries | Heartbeat) for m in shell.sent_early)
        assert all(len(replies) == 1 for replies in shell.answers.values())
    for node in IDS:
        if node in shell.persisting:
            shell.persist(node)
        shell.carry_out(node, shell.cores[node].finish())
    assert all(len(shell.answers.get(key, [])) == 1 for key in submitted), submitted
