"""The transport's paths without a task per message, on 127.0.0.1: calls answered through
a callback (`RpcConnection.send_call`), requests taken by a submit hook
(`Transport.set_rpc_submit`), raft messages handed to a handler as they are read
(`Transport.set_raft_handler`)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from raftcluster.transport import ConnectionLost, RemoteError, RpcErrorCode, RpcTimeout, connect_rpc
from statemachine.codec import Message
from tests.transport_kit import (
    Answer,
    Ask,
    Note,
    client_config,
    connected,
    fast_limits,
    make_node,
    receive_notes,
    start,
    start_nodes,
    until,
)


class Outcomes:
    """Collects what `on_outcome` is called with, checking it is called once per call."""

    def __init__(self) -> None:
        self.got: dict[int, object] = {}
        self.arrived = trio.Event()

    def on(self, key: int):  # noqa: ANN201 - a callback
        def record(outcome: object) -> None:
            assert key not in self.got, f"call {key} settled twice"
            self.got[key] = outcome
            self.arrived.set()

        return record

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(10):
            while len(self.got) < count:
                self.arrived = trio.Event()
                await self.arrived.wait()


async def test_answers_and_remote_errors_come_to_the_callback(nursery) -> None:
    one = make_node(1)
    await start(nursery, one)
    outcomes = Outcomes()
    async with connect_rpc(one.listen_addresses[0], client_config()) as client:
        for i in range(50):
            assert client.send_call(Ask("add", i), timeout_ms=5000, on_outcome=outcomes.on(i))
        assert client.send_call(Ask("fail"), timeout_ms=5000, on_outcome=outcomes.on(99))
        await outcomes.wait_for(51)
    assert [outcomes.got[i] for i in range(50)] == [Answer(i + 1, 1) for i in range(50)]
    failed = outcomes.got[99]
    assert isinstance(failed, RemoteError) and failed.code == RpcErrorCode.HANDLER_FAILED


async def test_a_call_unanswered_by_its_deadline_times_out_and_frees_its_slot(nursery) -> None:
    one = make_node(1)
    held: list[object] = []

    def hold(caller, request, respond) -> bool:  # noqa: ANN001 - the hook's shape
        if request.op != "hold":
            return False
        held.append(respond)  # never answered in time
        return True

    one.set_rpc_submit(hold)
    await start(nursery, one)
    outcomes = Outcomes()
    config = client_config()
    config = client_config(limits=type(config.limits)(max_pending_calls=1))
    async with connect_rpc(one.listen_addresses[0], config) as client:
        started = trio.current_time()
        assert client.send_call(Ask("hold"), timeout_ms=200, on_outcome=outcomes.on(1))
        # The only slot is taken: a second call is refused without being sent.
        assert not client.send_call(Ask("add", 1), timeout_ms=200, on_outcome=outcomes.on(2))
        await outcomes.wait_for(1)
        assert 0.15 < trio.current_time() - started < 2.0
        assert isinstance(outcomes.got[1], RpcTimeout) and outcomes.got[1].may_have_executed
        assert client.send_call(Ask("add", 1), timeout_ms=5000, on_outcome=outcomes.on(3))
        await outcomes.wait_for(2)
        assert outcomes.got[3] == Answer(2, 1)
        assert 2 not in outcomes.got
        (respond,) = held
        respond(Answer(0, 1))  # type: ignore[operator] # too late: ignored, not a second outcome
        assert await client.call(Ask("add", 2), timeout_ms=5000) == Answer(3, 1)
        assert set(outcomes.got) == {1, 3}


async def test_calls_in_flight_get_connection_lost_when_the_node_stops(nursery) -> None:
    one = make_node(1)
    running = await start(nursery, one)
    outcomes = Outcomes()
    async with connect_rpc(one.listen_addresses[0], client_config()) as client:
        for i in range(3):
            sleep = Ask("sleep", 30_000)
            assert client.send_call(sleep, timeout_ms=20_000, on_outcome=outcomes.on(i))
        await trio.sleep(0.2)
        running.scope.cancel()
        await outcomes.wait_for(3)
    assert all(isinstance(outcomes.got[i], ConnectionLost) for i in range(3))


async def test_many_answered_calls_leave_a_bounded_deadline_heap(nursery) -> None:
    one = make_node(1)
    await start(nursery, one)
    outcomes = Outcomes()
    async with connect_rpc(one.listen_addresses[0], client_config()) as client:
        slow = client.send_call(Ask("sleep", 3_000), timeout_ms=60_000, on_outcome=outcomes.on(-1))
        assert slow  # its deadline stays at the head of the heap while the others settle
        for i in range(2_000):
            assert client.send_call(Ask("add", i), timeout_ms=60_000, on_outcome=outcomes.on(i))
            if i % 100 == 99:
                await outcomes.wait_for(i + 1)
        await outcomes.wait_for(2_000)
        # One more call: the writer, sending it, prunes the heap down to the live calls.
        assert client.send_call(Ask("add", 0), timeout_ms=60_000, on_outcome=outcomes.on(-2))
        await outcomes.wait_for(2_001)
        connection = client._connection  # noqa: SLF001 - the bound is internal
        assert len(connection._expiry) <= 2 * 2 + 64  # noqa: SLF001 - not 2,002 entries
        assert -1 not in outcomes.got  # the slow call is still waiting


async def test_a_raft_handler_takes_messages_instead_of_the_inbox(nursery) -> None:
    one, two = await start_nodes(nursery, 2)
    await until(connected(one, two))
    taken: list[tuple[int, Message]] = []
    two.set_raft_handler(lambda peer, message: taken.append((peer, message)))
    for seq in range(20):
        assert one.send(2, Note(seq))
    await until(lambda: len(taken) == 20)
    assert taken == [(1, Note(seq)) for seq in range(20)]
    assert two.inbox.statistics().current_buffer_used == 0
    two.set_raft_handler(None)  # the inbox again
    assert one.send(2, Note(99))
    assert [i.message for i in await receive_notes(two, 1)] == [Note(99)]
    assert two.stats().peer(1).raft_received == 21


async def test_a_submit_hook_takes_requests_and_answers_them_later(nursery) -> None:
    one = make_node(1)
    await start(nursery, one)
    held: list[tuple[Ask, object]] = []

    def submit(caller, request, respond) -> bool:  # noqa: ANN001 - the hook's shape
        if request.op == "fail":
            raise RuntimeError("the hook failed")
        if request.op != "hold":
            return False  # left to the async handler
        held.append((request, respond))
        return True

    one.set_rpc_submit(submit)
    async with connect_rpc(one.listen_addresses[0], client_config()) as client:
        async with trio.open_nursery() as waiting:
            answers: list[object] = []

            async def ask(value: int) -> None:
                answers.append(await client.call(Ask("hold", value), timeout_ms=5000))

            for value in range(3):
                waiting.start_soon(ask, value)
            await until(lambda: len(held) == 3)
            assert answers == []  # nothing answered until the hook responds
            for request, respond in held:
                respond(Answer(request.value * 10, 1))  # type: ignore[operator]
        values = sorted(a.value for a in answers)  # type: ignore[attr-defined]
        assert values == [0, 10, 20] and all(isinstance(a, Answer) for a in answers)
        assert await client.call(Ask("add", 1), timeout_ms=5000) == Answer(2, 1)  # declined
        with pytest.raises(RemoteError) as failed:
            await client.call(Ask("fail"), timeout_ms=5000)
        assert failed.value.code == RpcErrorCode.HANDLER_FAILED
        assert "the hook failed" in failed.value.reason
    async with connect_rpc(one.listen_addresses[0], client_config()) as again:  # serves on
        assert await again.call(Ask("add", 5), timeout_ms=5000) == Answer(6, 1)


async def test_a_writer_timer_falling_due_as_a_frame_arrives_is_no_write_timeout(
    nursery, mock_clock
) -> None:
    """The writer waits with its keepalive timer set; a frame wakes it, and before it runs
    the timer falls due too. That late cancellation must cost a trip round the loop, not
    the connection (it once surfaced as "does not read (write timeout)")."""
    one = make_node(1)
    await start(nursery, one)
    outcomes = Outcomes()
    async with connect_rpc(one.listen_addresses[0], client_config()) as client:
        assert await client.call(Ask("add", 1), timeout_ms=5000) == Answer(2, 1)
        await trio.testing.wait_all_tasks_blocked()  # the writer sleeps on its timer
        keepalive_s = client_config().limits.keepalive_interval_ms / 1000
        assert client.send_call(Ask("add", 2), timeout_ms=60_000, on_outcome=outcomes.on(1))
        mock_clock.jump(keepalive_s + 0.001)  # the timer falls due before the writer runs
        await outcomes.wait_for(1)
        assert outcomes.got[1] == Answer(3, 1)
        assert client.open, client.closed_reason


async def hooked_log(nursery, count: int, **overrides: object) -> list[object]:  # noqa: ANN001
    """Node 1 sends node 2 `count` notes at once; node 2's raft handler and after-reading
    hook write what they see, in order, to the list returned (each hook call: "batch")."""
    one, two = await start_nodes(nursery, 2, **overrides)
    await until(connected(one, two))
    log: list[object] = []
    two.set_raft_handler(lambda peer, message: log.append(message))
    two.set_after_reading(lambda: log.append("batch"))
    for seq in range(count):
        assert one.send(2, Note(seq))
    await until(lambda: sum(1 for x in log if isinstance(x, Note)) == count)
    await until(lambda: log[-1] == "batch")
    assert [x.seq for x in log if isinstance(x, Note)] == list(range(count))  # type: ignore[attr-defined]
    return log


async def test_the_after_reading_hook_follows_each_batch_of_messages(nursery) -> None:
    log = await hooked_log(nursery, 200)
    batches = log.count("batch")
    assert 1 <= batches < 200  # many messages per read, and every read ends with the hook
    assert log[0] != "batch"  # the hook comes after the messages of its read


@pytest.mark.parametrize("batch_frames", [8, 100_000])
async def test_a_read_is_handed_out_at_most_read_batch_frames_at_a_time(
    nursery, batch_frames: int
) -> None:
    """Between batches other tasks run: a client's waiting tasks see their answers and
    send their next requests while the rest of a large read is still being handed out."""
    log = await hooked_log(nursery, 400, limits=fast_limits(read_batch_frames=batch_frames))
    sizes, size = [], 0
    for entry in log:
        if entry == "batch":
            sizes.append(size)
            size = 0
        else:
            size += 1
    assert sum(sizes) == 400 and 0 not in sizes
    assert max(sizes) <= batch_frames
    if batch_frames == 8:
        assert sizes.count(8) >= 10  # reads brought more than 8: the limit split them
    else:
        assert max(sizes) > 8  # ... which it did not do here, the reads were that large
