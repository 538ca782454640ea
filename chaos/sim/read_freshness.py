"""Read freshness: a linearizable read reflects every entry committed before it arrived.

A node answers a linearizable `Query` through ReadIndex: the leader takes its commit
index once it has committed an entry of its own term (so that it covers every entry
committed before), confirms with a heartbeat round that it still leads, and the read is
served once the state applied reaches that index. So the answer's `QueryResult.index`
(the applied index it was served at) is at least every commit index any node had when
the request reached the node that took it. That is stronger than linearizability, which
asks only for the writes acknowledged before the read began: the linearizability check
finds a stale read only when a client saw the missed write acknowledged and the read then
returns an older value; this check finds it from the indexes alone, whatever the values.

The commit index "before it arrived" is the highest any node has had: the engine gives
the running nodes' highest with each read (`arrived`), and a stopping node's own
(`note_commit`), as its commits stay committed.

The leader's side is checked where it releases a read (Raft dissertation 6.4): the read
index it gives (to its own reads, or to a follower in a ReadIndexResponse) is at or past
its first entry of its term, i.e. the entry there is of its term. A leader that takes its
commit index before committing an entry of its term (it may lag the cluster's: the old
leader's last commits had not reached it) gives an older index: found at once, whatever
is served later, where the linearizability check finds it only if a conflicting write
was seen acknowledged and the read then returns an older value.
Fed by the engine: `arrived` for each linearizable query a node takes, `note_commit`
for each node that stops, `released` for each read a leader releases, `answered` for each
answer. Raises what `fail(invariant, message, nodes)`
makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from raftcluster.node.protocol import ClientReply, QueryResult

INVARIANT = "read freshness"
# Queries waiting for an answer, per check (a bound on a run's memory: a node answers or
# times out every query it takes; past this, the oldest are forgotten unchecked).
MAX_WAITING_READS = 100_000


class ReadFreshness:
    def __init__(self, fail: Callable[[str, str, Iterable[int]], AssertionError]) -> None:
        self._fail = fail
        self._committed = 0  # the highest commit index any node has had
        self._waiting: dict[tuple[int, int], int] = {}  # (node, request id) -> committed
        self.reads_checked = 0
        self.releases_checked = 0

    def note_commit(self, commit: int) -> None:
        """Some node has had commit index `commit`."""
        if commit > self._committed:
            self._committed = commit

    def released(self, node: int, term: int, index: int, term_at_index: int | None) -> None:
        """`node`, leader of `term`, released a read at read index `index`, where its log
        holds an entry of `term_at_index` (None: compacted into a snapshot, not judged)."""
        self.releases_checked += 1
        if term_at_index is not None and term_at_index != term:
            raise self._fail(
                INVARIANT,
                f"node {node}, leader of term {term}, released a read at index {index}, an "
                f"entry of term {term_at_index}: before committing an entry of its own term, "
                "its commit index may miss entries committed by earlier leaders",
                [node],
            )

    def arrived(self, node: int, request_id: int, running_commit: int) -> None:
        """`node` took a linearizable query as its request `request_id`, when the highest
        commit index of the running nodes was `running_commit`."""
        self.note_commit(running_commit)
        waiting = self._waiting
        if len(waiting) >= MAX_WAITING_READS:
            del waiting[next(iter(waiting))]
        waiting[(node, request_id)] = self._committed

    def forget(self, node: int) -> None:
        """`node` stopped: its queries will never be answered."""
        for key in [k for k in self._waiting if k[0] == node]:
            del self._waiting[key]

    def answered(self, node: int, request_id: int, reply: ClientReply) -> None:
        committed = self._waiting.pop((node, request_id), None)
        if committed is None or not isinstance(reply, QueryResult):
            return  # not a linearizable query, or refused (NotLeader, timed out...)
        self.reads_checked += 1
        if reply.index < committed:
            raise self._fail(
                INVARIANT,
                f"node {node} answered a linearizable read at applied index {reply.index}, "
                f"but index {committed} was committed before the read reached it: the read "
                "misses committed writes",
                [node],
            )
