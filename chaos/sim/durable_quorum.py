"""The durable quorum: a leader's commit index rests on a majority of synced copies.

Raft commits an entry once a majority of voters has stored it. "Stored" means durable:
an entry that a majority holds only in memory, or in page caches, is lost by a power cut
of that majority, and an acknowledged write with it. Each node promises its own part: a
follower acknowledges entries only once its disk holds them synced (the persist-before-
send check), and a leader counts its own copy only once its own persist is synced (it
sends appends before that: Raft dissertation 10.2.1).

The second promise has no message to check, so it is checked where it is used: each time
a leader moves its commit index to C in its term, a majority of the voters of its
configuration must hold entry C durably, counting
- each follower that acknowledged an index >= C to this leader in this term (an
  acknowledgement in the leader's term covers the leader's entries up to it: log matching);
- the leader itself only if its own disk has entry C of its term synced (the durability
  oracle's shadow says what it synced).

Why acknowledgements and not the followers' disks now: a follower's disk may since have
been lost (a nemesis wipes it), and the leader was right to count it when it answered.

Without this check a leader that counts its unsynced copy is found only when a power cut
hits it inside the fsync window and a node without the entry then wins an election.
Fed by the engine: `acknowledged` for each AppendResponse delivered; `moved` for each node
that took a step as leader or led at its previous one (`tracks`), and `check` when it
says so. Raises what `fail(invariant, message, nodes)` makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from raftcluster.raft.quorum import majority
from raftcluster.raft.ready import Role
from raftcluster.storage.logstate import LogState

INVARIANT = "durable quorum"


class DurableQuorum:
    def __init__(self, fail: Callable[[str, str, Iterable[int]], AssertionError]) -> None:
        self._fail = fail
        # (leader, term) -> follower -> the highest index it acknowledged in that term
        self._acked: dict[tuple[int, int], dict[int, int]] = {}
        # leader -> (term, commit, voters) as of its last step
        self._seen: dict[int, tuple[int, int, tuple[int, ...]]] = {}
        # leader -> (term, commit, voters before, voters now) of a move to check
        self._moved: dict[int, tuple[int, int, tuple[int, ...], tuple[int, ...]]] = {}
        self.commits_checked = 0

    def acknowledged(self, leader: int, follower: int, term: int, index: int) -> None:
        """`leader` received `follower`'s acknowledgement of entries up to `index` in
        `term` (a successful AppendResponse)."""
        acks = self._acked.setdefault((leader, term), {})
        if index > acks.get(follower, 0):
            acks[follower] = index

    def tracks(self, node: int) -> bool:
        """Whether `node` led at its last step (else only a leader's step matters)."""
        return node in self._seen

    def stopped(self, node: int) -> None:
        """`node`'s incarnation is gone: its next one starts over (its acknowledgements
        received are kept: they were promises of the followers' disks)."""
        self._seen.pop(node, None)

    def moved(self, node: int, role: Role, term: int, commit: int, voters: tuple[int, ...]) -> bool:
        """`node` took a step; it is in `role` and `term` with commit index `commit`, and
        its configuration's `voters`. Whether it is a leader that moved its commit index
        in its term (then `check` it)."""
        if role != Role.LEADER:
            self._seen.pop(node, None)
            return False
        before = self._seen.get(node)
        self._seen[node] = (term, commit, voters)
        # (a new leader's first step counts nothing: its commit index is where it found it)
        if before is None or before[0] != term or commit <= before[1]:
            return False
        self._moved[node] = (term, commit, before[2], voters)
        return True

    def check(self, node: int, synced: LogState) -> None:
        """Check the move `moved` just reported; `node`'s disk holds `synced` (the
        durability oracle's shadow).

        The quorum is counted in the configuration of the step before or of this one:
        a leader may append a membership change in the step in which it commits (one
        change at a time, so the commit was decided in one of the two)."""
        term, commit, before, now = self._moved.pop(node)
        self.commits_checked += 1
        acks = self._acked.get((node, term), {})
        own = synced.last_index >= commit and synced.term_at(commit) == term
        counts = []
        for voters in (before, now) if before != now else (now,):
            durable = sorted(v for v in voters if v != node and acks.get(v, 0) >= commit)
            if node in voters and own:
                durable.append(node)
            needed = majority(len(voters))
            if len(durable) >= needed:
                return
            counts.append(f"{len(durable)} of its {len(voters)} voters {list(voters)}")
        held = f"synced up to {synced.last_index}" if not own else "synced"
        raise self._fail(
            INVARIANT,
            f"node {node}, leader of term {term}, moved its commit index to {commit}, but "
            f"only {' (or '.join(counts)}{')' * (len(counts) - 1)} hold entry {commit} "
            f"durably (its own disk: {held}): not a majority",
            [node],
        )
