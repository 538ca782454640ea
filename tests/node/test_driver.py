"""The runtime's loop (`Driver`) under trio's MockClock: timers, group commit, stopping,
cancellation, and a client retrying through a leader change.

Time is virtual (`autojump_clock`): it moves only when every task waits, so a loop that
spun instead of sleeping would never let it move, and the times below are exact.
"""

from __future__ import annotations

import math
import time

import trio
import trio.testing

from raftcluster.client.core import ClientConfig
from raftcluster.node.protocol import (
    GetStatus,
    NodeStatus,
    NotLeader,
    Query,
    QueryResult,
    RefuseCode,
    Refused,
    Submit,
    Written,
)
from statemachine.codec import encode
from statemachine.kv import Put, PutResult, Range, RangeResult
from statemachine.sessions.messages import OpenSession
from tests.node.trio_cluster import TrioClient, TrioCluster, trio_cluster

ELECTION_MS = 300  # tests/node/harness.py FAST settings
HEARTBEAT_MS = 50


def open_session() -> Submit:
    return Submit(encode(OpenSession(0, 60_000)))


async def leader_without_quorum(cluster: TrioCluster) -> int:
    """Start the cluster, wait for a leader, then cut it off: its writes cannot commit."""
    leader = await cluster.start_all()
    for other in cluster.ids:
        if other != leader:
            cluster.isolate(other)
    return leader


async def test_a_leader_is_elected_and_answers_while_followers_redirect(autojump_clock):
    async with trio_cluster() as cluster:
        leader = await cluster.start_all()
        reply = await cluster.request(leader, open_session())
        assert isinstance(reply, Written)
        follower = next(i for i in cluster.ids if i != leader)
        redirect = await cluster.request(follower, open_session())
        assert redirect == NotLeader(leader)
        status = await cluster.request(follower, GetStatus())
        assert isinstance(status, NodeStatus) and status.leader == leader


async def test_the_loop_sleeps_between_deadlines(autojump_clock):
    """Ten idle virtual seconds cost a bounded number of loop steps: the loop wakes for
    heartbeats and timers, not continuously (a spinning loop would also stop the clock)."""
    async with trio_cluster() as cluster:
        await cluster.start_all()

        def steps_so_far() -> int:
            return sum(d.stats.loop_steps for d in cluster.drivers.values())

        before = steps_so_far()
        start = trio.current_time()
        await trio.sleep(10)
        assert trio.current_time() - start == 10
        steps = steps_so_far() - before
        # A heartbeat round every 50 ms: the leader wakes, sends, hears two answers; each
        # follower wakes for the heartbeat and answers (about eight steps in all), plus a
        # few session-expiry commands. A loop woken more often would exceed the bound.
        heartbeat_rounds = 10_000 // HEARTBEAT_MS
        assert heartbeat_rounds <= steps <= 12 * heartbeat_rounds, steps


async def test_followers_campaign_at_their_election_timeout(autojump_clock):
    async with trio_cluster() as cluster:
        old = await cluster.start_all()
        cut_at = trio.current_time()
        cluster.isolate(old)
        new = await cluster.wait_leader(other_than=old)
        elapsed_ms = (trio.current_time() - cut_at) * 1000
        # A follower campaigns after a random time in [T, 2T) without a leader (pre-vote
        # and vote take a few 1 ms hops): the timer fires on time, neither early nor late.
        assert ELECTION_MS <= elapsed_ms <= 2 * ELECTION_MS + 20, elapsed_ms
        assert new != old


async def test_writes_arriving_during_a_persist_share_the_next_one(autojump_clock):
    async with trio_cluster() as cluster:
        leader = await cluster.start_all()
        driver = cluster.drivers[leader]
        cluster.persist_delay_s[leader] = 0.020  # a slow fsync
        syncs_before = driver.stats.syncs
        replies = []

        async def write() -> None:
            replies.append(await cluster.request(leader, open_session()))

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(write)
        assert len(replies) == 50 and all(isinstance(r, Written) for r in replies)
        indexes = {r.index for r in replies}
        assert len(indexes) == 50
        # 50 entries, but only a few fsyncs on the leader: each batch takes everything
        # that arrived while the previous one was being written.
        assert driver.stats.syncs - syncs_before <= 6, driver.stats.syncs - syncs_before


async def test_stop_lets_the_persist_in_progress_finish(autojump_clock):
    async with trio_cluster() as cluster:
        leader = await cluster.start_all()
        follower = next(i for i in cluster.ids if i != leader)
        driver = cluster.drivers[follower]
        cluster.persist_delay_s[follower] = 0.050
        persisting = cluster.persisting.setdefault(follower, trio.Event())
        cluster.nursery.start_soon(cluster.request, leader, open_session())
        await persisting.wait()  # the follower is writing the new entry
        syncs, sent = driver.stats.syncs, len(cluster.sent)
        driver.stop()
        refused = await cluster.request(follower, GetStatus())  # new requests: refused at once
        assert isinstance(refused, Refused) and refused.code == RefuseCode.UNAVAILABLE
        with trio.fail_after(1):
            await cluster.returned[follower].wait()
        # The cycle completed: its persist counted, then its acknowledgement was sent.
        assert driver.stats.syncs == syncs + 1
        acks = [m for m in cluster.sent[sent:] if m.src == follower]
        assert [type(m).__name__ for m in acks] == ["AppendResponse"]
        storage = cluster.storages[follower]
        storage.crash()  # what survives a crash now: the entry acknowledged
        assert storage.load().entries[-1].index == acks[0].index


async def test_a_waiting_request_is_answered_when_the_node_stops(autojump_clock):
    async with trio_cluster() as cluster:
        leader = await leader_without_quorum(cluster)
        driver = cluster.drivers[leader]
        reply: list[object] = []

        async def write() -> None:
            reply.append(await cluster.request(leader, open_session()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            await trio.sleep(0.020)
            assert driver.waiting == 1
            driver.stop()
        (answer,) = reply
        assert isinstance(answer, Refused) and answer.code == RefuseCode.TIMED_OUT
        assert not answer.code.definite  # it may still be applied: the client must retry


async def test_a_leader_replicates_while_it_persists_and_followers_ack_after(autojump_clock):
    async with trio_cluster() as cluster:
        leader = await cluster.start_all()
        for i in cluster.ids:
            cluster.persist_delay_s[i] = 0.050  # slow disks everywhere
        persisting = cluster.persisting.setdefault(leader, trio.Event())
        sent = len(cluster.sent)
        cluster.nursery.start_soon(cluster.request, leader, open_session())
        await persisting.wait()
        await trio.sleep(0.010)  # the leader's persist is still running
        appends = [m for m in cluster.sent[sent:] if type(m).__name__ == "AppendEntries"]
        assert appends and all(m.entries for m in appends)  # the new entry is on its way
        acks = [m for m in cluster.sent[sent:] if type(m).__name__ == "AppendResponse"]
        assert acks == []  # followers acknowledge only once their own persist is done
        await trio.sleep(0.060)
        acks = [m for m in cluster.sent[sent:] if type(m).__name__ == "AppendResponse"]
        assert {m.src for m in acks} == set(cluster.ids) - {leader}


async def test_a_caller_that_stops_waiting_leaves_its_request_to_be_answered(autojump_clock):
    """A write whose caller gave up still commits, and its answer still comes out once
    (the transport drops it, as nobody waits): nothing is left waiting in the driver."""
    async with trio_cluster() as cluster:
        leader = await cluster.start_all()
        driver = cluster.drivers[leader]
        cluster.persist_delay_s[leader] = 0.050
        with trio.move_on_after(0.010):
            await cluster.request(leader, open_session())
        assert driver.waiting == 1  # the request stays with the node
        await trio.sleep(0.2)  # the write commits and its answer is carried out
        assert driver.waiting == 0
        reply = await cluster.request(leader, open_session())
        assert isinstance(reply, Written)


async def test_a_client_retrying_through_a_leader_change_applies_each_write_once(
    autojump_clock,
):
    async with trio_cluster() as cluster:
        old = await cluster.start_all()
        client = TrioClient(cluster, ClientConfig(nodes=cluster.ids, attempt_timeout_ms=200))
        cluster.nursery.start_soon(client.run)
        done = []

        async def writer(k: int) -> None:
            done.append((k, await client.write(Put(b"key-%d" % k, b"v"))))

        async with trio.open_nursery() as nursery:
            for k in range(10):
                nursery.start_soon(writer, k)
            await trio.sleep(0.002)  # the writes are on their way to the leader
            cluster.isolate(old)  # requests and answers to and from it are lost
            client.cut.add(old)
            cluster.persist_delay_s[old] = 0.0
        new = cluster.leader()
        assert new and new != old
        assert client.attempts > 10 + 1  # (the session's OpenSession) some were retried
        assert sorted(k for k, c in done if c.ok) == list(range(10))
        results = [c.result for _, c in done]
        assert all(isinstance(r, PutResult) for r in results)
        # Applied once each: ten distinct revisions, each key at version 1.
        assert len({r.revision for r in results}) == 10  # type: ignore[union-attr]
        read = await client.read(Range(b"key-", b"key."))
        assert read.ok and isinstance(read.result, RangeResult)
        assert [kv.version for kv in read.result.kvs] == [1] * 10


async def test_submitted_requests_are_answered_through_their_callback(autojump_clock):
    """`submit` takes requests without a waiting task: each callback is called once with
    the same reply `request` would give, and the writes share the leader's fsyncs."""
    async with trio_cluster() as cluster:
        leader = await cluster.start_all()
        driver = cluster.drivers[leader]
        cluster.persist_delay_s[leader] = 0.020
        replies: dict[int, list[object]] = {n: [] for n in range(20)}
        for n in range(20):
            driver.submit(open_session(), replies[n].append)
        follower = next(i for i in cluster.ids if i != leader)
        redirect: list[object] = []
        cluster.drivers[follower].submit(open_session(), redirect.append)
        with trio.fail_after(5):
            while not all(replies.values()) or not redirect:
                await trio.sleep(0.005)
        assert all(len(r) == 1 and isinstance(r[0], Written) for r in replies.values())
        assert len({r[0].index for r in replies.values()}) == 20  # type: ignore[attr-defined]
        assert redirect == [NotLeader(leader)]
        assert driver.waiting == 0  # answered callbacks leave nothing behind


async def test_a_submitted_request_is_answered_when_the_node_stops(autojump_clock):
    async with trio_cluster() as cluster:
        leader = await leader_without_quorum(cluster)
        driver = cluster.drivers[leader]
        reply: list[object] = []
        driver.submit(open_session(), reply.append)
        await trio.sleep(0.020)
        assert driver.waiting == 1 and not reply
        driver.stop()
        with trio.fail_after(1):
            await cluster.returned[leader].wait()
        (answer,) = reply
        assert isinstance(answer, Refused) and answer.code == RefuseCode.TIMED_OUT
        late: list[object] = []
        driver.submit(GetStatus(), late.append)  # stopped: refused at once
        assert len(late) == 1 and late[0].code == RefuseCode.UNAVAILABLE  # type: ignore[attr-defined]


async def test_an_input_to_an_idle_loop_is_acted_on_in_the_callers_task(autojump_clock):
    """A cycle with nothing to sync runs in the task that handed the input over, and a
    cycle that must sync sends its leader messages there before the loop persists."""
    async with trio_cluster() as cluster:
        leader = await cluster.start_all()
        await trio.sleep(0.2)  # settled: every loop asleep
        driver = cluster.drivers[leader]
        before = len(cluster.sent)
        written: list[object] = []
        driver.submit(open_session(), written.append)  # no checkpoint until the assert
        early = [type(m).__name__ for m in cluster.sent[before:] if m.src == leader]
        assert early == ["AppendEntries", "AppendEntries"]  # out before the persist
        assert written == []  # answered once committed
        with trio.fail_after(1):
            while not written:
                await trio.sleep(0.001)
        assert isinstance(written[0], Written)
        follower = next(i for i in cluster.ids if i != leader)
        status: list[object] = []
        cluster.drivers[follower].submit(GetStatus(), status.append)
        assert len(status) == 1 and isinstance(status[0], NodeStatus)  # answered at once


async def test_inputs_deferred_to_the_end_of_a_batch_share_one_read_round(autojump_clock):
    """With `defer_inputs` (a node's connections hand over a read's worth of inputs,
    then call `inputs_done`), twenty reads take one leadership confirmation, not
    twenty."""
    async with trio_cluster() as cluster:
        leader = await cluster.start_all()
        driver = cluster.drivers[leader]
        opened: list[object] = []
        driver.submit(open_session(), opened.append)
        await trio.sleep(0.2)
        rounds = {}
        for defer in (True, False):
            driver.defer_inputs = defer
            before = len(cluster.sent)
            answers: list[object] = []
            for _ in range(20):
                driver.submit(Query(encode(Range(b"k"))), answers.append)
            driver.inputs_done()
            with trio.fail_after(1):
                while len(answers) < 20:
                    await trio.sleep(0.001)
            assert all(isinstance(a, QueryResult) for a in answers)
            sent = cluster.sent[before:]
            rounds[defer] = sum(
                1 for m in sent if m.src == leader and type(m).__name__ == "Heartbeat"
            )
        assert rounds[True] == 2  # one round: a heartbeat to each follower
        assert rounds[False] >= 20  # a round per read when each acts on its own


async def test_a_commit_notice_that_the_next_append_made_needless_does_not_wake_the_loop(
    autojump_clock,
):
    """A leader's commit sets a commit notice 5 ms ahead (`commit_notice_delay_ms`); the
    next write's appends tell the followers first and drop it. The loop's sleep follows
    the core's next deadline, later as well as earlier: it does not wake at the dropped
    notice's time (it did once per sequential write when it only moved earlier).

    The persists run in worker threads, as on a node, so the loop is woken by nothing
    but its deadlines; once a leader serves, virtual time moves only when the test
    jumps it."""

    def settle() -> None:
        time.sleep(0.02)  # (real time: the persists' threads return meanwhile)

    # (Timers far apart, so that none but the notices falls due in the 6.5 ms jumped.)
    timers = {"heartbeat_interval_ms": 10_000, "election_timeout_ms": 50_000}
    async with trio_cluster(**timers) as cluster:
        cluster.threaded_persist = True
        cluster.latency_s = 0  # (no virtual time on the wire)
        for node in cluster.ids:
            cluster.start(node)
        await cluster.wait_leader(limit_s=500)  # (virtual seconds)
        autojump_clock.autojump_threshold = math.inf
        for _ in range(50):  # a leader that serves (an election may still be settling)
            leader = cluster.leader()
            if leader and isinstance(await cluster.request(leader, open_session()), Written):
                break
            settle()
            await trio.testing.wait_all_tasks_blocked()
        driver = cluster.drivers[leader]
        assert isinstance(await cluster.request(leader, open_session()), Written)
        autojump_clock.jump(0.001)
        assert isinstance(await cluster.request(leader, open_session()), Written)
        for _ in range(3):  # the second follower's acknowledgement too
            settle()
            await trio.testing.wait_all_tasks_blocked()
        steps = driver.stats.loop_steps
        autojump_clock.jump(0.0045)  # past the first notice's time, before the second's
        await trio.testing.wait_all_tasks_blocked()
        assert driver.stats.loop_steps == steps
        autojump_clock.jump(0.001)  # the second write's notice: nothing told it since
        await trio.testing.wait_all_tasks_blocked()
        assert driver.stats.loop_steps > steps
