"""Watches: the cursor delivers every change once, in order, whatever node answers each
page (behind, ahead, repeated); the iterator retries while the cluster is unavailable,
raises a clear Compacted, and loses nothing when cancelled."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from raftcluster.client.watch import Watch, WatchCursor, caught_up
from raftcluster.errors import Unavailable
from statemachine.cluster import ClusterState
from statemachine.codec import Message
from statemachine.errors import Compacted
from statemachine.kv import (
    Changes,
    ChangesResult,
    Compact,
    DeleteRange,
    KvConfig,
    KvEvent,
    Put,
    Txn,
    prefix_end,
)
from statemachine.results import expect

KEYS = [b"a", b"a/1", b"a/2", b"b", b"b/1"]
# Small pages and scans, so histories of a few dozen changes cross many page boundaries,
# including pages cut in the middle of a revision and pages with no event at all.
CONFIG = KvConfig(max_changes_scan=3, max_range_kvs=4)

command = st.one_of(
    st.builds(Put, st.sampled_from(KEYS), st.binary(max_size=3)),
    st.builds(DeleteRange, st.sampled_from(KEYS)),
    st.lists(st.sampled_from(KEYS), min_size=2, max_size=4, unique=True).map(
        lambda keys: Txn(success=tuple(Put(k, b"t") for k in keys))
    ),
)


def replicas(commands: list[Message]) -> list[ClusterState]:
    """The state after 0, 1, 2, ... commands: what nodes at different points serve."""
    states = [ClusterState(kv=CONFIG)]
    for index, cmd in enumerate(commands, start=1):
        state = ClusterState(kv=CONFIG)
        state.restore(states[-1].snapshot())
        state.execute(index, cmd)
        states.append(state)
    return states


def every_change(state: ClusterState, request: Changes) -> list[KvEvent]:
    """All changes from the request's start, read page by page from one node."""
    out: list[KvEvent] = []
    while True:
        page = expect(state.read(request), ChangesResult)
        out.extend(page.events)
        if caught_up(page):
            return out
        request = attrs.evolve(request, start_revision=page.next_revision, skip=page.next_skip)


selection = st.sampled_from([(b"a", prefix_end(b"a")), (b"b", b""), (b"\0", b"\0")])


@settings(max_examples=150, deadline=None)
@given(
    commands=st.lists(command, min_size=1, max_size=25),
    keys=selection,
    start=st.integers(0, 8),
    pages=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 5)), max_size=40),
)
def test_every_change_once_in_order_whichever_node_answers(
    commands: list[Message],
    keys: tuple[bytes, bytes],
    start: int,
    pages: list[tuple[int, int]],
) -> None:
    states = replicas(commands)
    latest = states[-1]
    cursor = WatchCursor(start)
    delivered: list[KvEvent] = []
    first_node = None
    for pick, limit in pages:
        node = states[pick % len(states)]  # any node, behind or not, any number of times
        if first_node is None:
            first_node = node
        request = attrs.evolve(cursor.request(*keys, prev_kv=False), limit=limit)
        cursor, events = cursor.advance(expect(node.read(request), ChangesResult))
        delivered.extend(events)
        want = _expected(latest, keys, start, first_node)
        assert delivered == want[: len(delivered)]  # a prefix: nothing skipped or repeated
    while True:  # the up-to-date node finishes the job
        page = expect(latest.read(cursor.request(*keys, prev_kv=False)), ChangesResult)
        if first_node is None:
            first_node = latest
        cursor, events = cursor.advance(page)
        delivered.extend(events)
        if caught_up(page):
            break
    assert delivered == _expected(latest, keys, start, first_node)


def _expected(
    latest: ClusterState, keys: tuple[bytes, bytes], start: int, first: ClusterState
) -> list[KvEvent]:
    if start == 0:  # "from now": from the revision after the one the first page saw
        start = expect(first.read(Changes(keys[0], keys[1])), ChangesResult).next_revision
    return every_change(latest, Changes(keys[0], keys[1], start_revision=start))


def test_the_cursor_never_moves_back() -> None:
    cursor = WatchCursor(10, 2)
    behind = ChangesResult(revision=5, compact_revision=0, events=(), next_revision=6)
    assert cursor.advance(behind) == (cursor, ())


# -- the iterator ----------------------------------------------------------------------


class FakeSource:
    """A cluster of one state, with failures to inject."""

    def __init__(self) -> None:
        self.state = ClusterState()
        self.index = 0
        self.failures: list[Exception] = []
        self.reads = 0
        self.changed = trio.Event()

    def write(self, cmd: Message) -> None:
        self.index += 1
        self.state.execute(self.index, cmd)
        self.changed.set()
        self.changed = trio.Event()

    async def read_changes(self, request: Changes) -> ChangesResult:
        self.reads += 1
        await trio.sleep(0.01)
        if self.failures:
            raise self.failures.pop(0)
        return expect(self.state.read(request), ChangesResult)

    async def wait_changes(self, after_revision: int, wait_ms: int) -> int | None:
        with trio.move_on_after(wait_ms / 1000):
            while self.revision() <= after_revision:
                await self.changed.wait()
        return self.revision()

    def revision(self) -> int:
        return expect(self.state.read(Changes(b"\0", b"\0")), ChangesResult).revision


async def test_a_watch_rides_out_unavailability_and_waits_for_changes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = FakeSource()
    source.write(Put(b"k", b"0"))
    watch = Watch(source, b"k", b"", start_revision=1)
    source.failures = [Unavailable("no quorum"), Unavailable("no quorum")]
    first = await watch.__anext__()
    assert first.kv.value == b"0" and source.reads == 3

    async def later() -> None:
        await trio.sleep(30)  # long after the watch started waiting
        source.write(Put(b"k", b"1"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(later)
        second = await watch.__anext__()
    assert second.kv.value == b"1" and watch.next_revision == 4


async def test_compacted_history_is_a_clear_error(autojump_clock: trio.testing.MockClock) -> None:
    source = FakeSource()
    for i in range(5):
        source.write(Put(b"k", b"%d" % i))
    source.write(Compact(4))
    watch = Watch(source, b"k", b"", start_revision=2)
    with pytest.raises(Compacted, match="watch again from its revision") as caught:
        await watch.__anext__()
    assert caught.value.compact_revision == 4


async def test_cancelling_a_watch_loses_no_event(autojump_clock: trio.testing.MockClock) -> None:
    source = FakeSource()
    watch = Watch(source, b"k", b"", start_revision=1)
    source.write(Put(b"k", b"0"))
    got = [await watch.__anext__()]
    source.write(Put(b"k", b"1"))
    source.write(Put(b"k", b"2"))
    with trio.move_on_after(0.005) as scope:  # in the middle of the next page's read
        await watch.__anext__()
    assert scope.cancelled_caught
    got += [await watch.__anext__() for _ in range(2)]
    assert [e.kv.value for e in got] == [b"0", b"1", b"2"]
