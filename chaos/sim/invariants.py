"""Raft's safety properties and the cluster's promises, checked while a simulation runs.

Fed everything the nodes do (each completed Ready cycle, each acknowledged write, the
state after each step), `Invariants` raises `SafetyViolation` naming the property, the
step, the virtual time and the nodes:

- election safety: at most one leader per term;
- log matching: an (index, term) names one entry, with one predecessor term, on every
  node, so two logs holding the same (index, term) agree up to it (checked incrementally
  on every persisted batch, and pairwise over whole logs at the end);
- leader completeness: a leader of term T holds every entry committed in a term before T
  (an entry is committed in the term of the first node seen to hold it committed: the
  leader that committed it, or one that learned it from that leader). Entries committed
  in later terms are not its business: a node may learn that it won term T (its vote
  replies slow on the way) after term T+1 has committed entries it never saw;
- state machine safety: no two nodes apply different entries at one index, and an
  installed snapshot agrees with what was applied at its index; equal indexes give
  equal state machine snapshots (determinism);
- monotonic progress: a running node's commit and applied indexes never go back;
- the commit rule (Raft 5.4.2): a leader moves its commit index only onto an entry of its
  own term (earlier terms' entries are committed with it, never by counting replicas:
  Raft's Figure 8);
- acknowledged writes: the entry a client was told its write was applied at is the one
  every node applies there (and, at the end, every node has applied it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import attrs

from raftcluster.node.replica import Output, Replica, Work
from raftcluster.node.session_time import same_but_stamp
from raftcluster.raft.ready import Role
from raftcluster.raft.types import Entry


@attrs.frozen
class Where:
    step: int
    time_ms: int


class SafetyViolation(AssertionError):
    """A property did not hold. `invariant` names it; `nodes` are those involved."""

    def __init__(self, invariant: str, message: str, where: Where, nodes: Iterable[int]) -> None:
        self.invariant = invariant
        self.detail = message
        self.step = where.step
        self.time_ms = where.time_ms
        self.nodes = tuple(sorted(set(nodes)))
        super().__init__(
            f"{invariant}: {message} (step {self.step}, t={self.time_ms} ms, "
            f"nodes {list(self.nodes)})"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "invariant": self.invariant,
            "message": self.detail,
            "step": self.step,
            "time_ms": self.time_ms,
            "nodes": list(self.nodes),
        }


class _LogShadow:
    """The terms of one node's log (index -> term), to know each entry's predecessor."""

    __slots__ = ("base", "base_term", "terms")

    def __init__(self, base: int, base_term: int | None, terms: list[int]) -> None:
        self.base = base  # the index before the first held term
        self.base_term = base_term  # None: not known (after a restart)
        self.terms = terms

    def term(self, index: int) -> int | None:
        if index == self.base:
            return self.base_term
        if index < self.base or index > self.base + len(self.terms):
            return None
        return self.terms[index - self.base - 1]

    def write(self, entries: tuple[Entry, ...]) -> None:
        first = entries[0].index
        keep = max(0, first - self.base - 1)
        del self.terms[keep:]
        if first <= self.base:  # cannot happen: entries follow the snapshot
            self.base, self.base_term, self.terms = first - 1, None, []
        self.terms.extend(e.term for e in entries)

    def reset(self, index: int, term: int) -> None:
        self.base, self.base_term, self.terms = index, term, []

    def compact(self, index: int, term: int) -> None:
        if index <= self.base:
            return
        del self.terms[: index - self.base]
        self.base, self.base_term = index, term


@attrs.frozen
class _Committed:
    term: int
    kind: int
    data: bytes


class Invariants:
    """Fed by an engine; raises what `fail(invariant, message, nodes)` makes."""

    def __init__(self, fail: Callable[[str, str, Iterable[int]], SafetyViolation]) -> None:
        self.fail = fail
        self.leaders: dict[int, int] = {}  # term -> leader
        self.committed: dict[int, _Committed] = {}  # index -> the entry applied there
        # index -> the lowest term of a node seen holding it committed
        self.commit_terms: dict[int, int] = {}
        self._entries: dict[tuple[int, int], tuple[int, bytes, int | None]] = {}
        self._shadows: dict[int, _LogShadow] = {}
        self._progress: dict[int, tuple[int, int]] = {}  # node -> (commit, applied)
        self._led: dict[int, int] = {}  # node -> the term it led at its last step
        self._snapshot_digests: dict[int, bytes] = {}
        self.acknowledged: dict[int, bytes] = {}  # index -> the command acknowledged there
        self._complete_terms: set[int] = set()  # terms whose leader was checked complete
        self._seen_commit = 0  # indexes up to here have a commit term
        # node -> (commit, applied, role, term) at its last step checked (`on_step`)
        self._last_step: dict[int, tuple[int, int, Role, int]] = {}

    # -- a node (re)started -----------------------------------------------------------

    def on_start(self, node: int, replica: Replica) -> None:
        entries = replica.core.log_entries()
        first = replica.core.status().first_index
        self._shadows[node] = _LogShadow(first - 1, None, [e.term for e in entries])
        self._progress.pop(node, None)  # a new incarnation: its indexes start over
        self._led.pop(node, None)
        self._last_step.pop(node, None)

    def on_stop(self, node: int) -> None:
        self._progress.pop(node, None)
        self._led.pop(node, None)
        self._last_step.pop(node, None)

    # -- every Ready cycle ------------------------------------------------------------

    def on_cycle(self, node: int, work: Work, output: Output) -> None:
        rd = work.ready
        shadow = self._shadows.setdefault(node, _LogShadow(0, 0, []))
        if work.compacted is not None:
            self._check_snapshot_bytes(node, work.compacted.meta.index, work.compacted.data)
            shadow.compact(work.compacted.meta.index, work.compacted.meta.term)
        if rd.snapshot is not None:
            meta = rd.snapshot.meta
            known = self.committed.get(meta.index)
            if known is not None and known.term != meta.term:
                raise self.fail(
                    "state machine safety",
                    f"node {node} installs a snapshot at {meta.index} of term {meta.term}, "
                    f"where term {known.term} was applied",
                    [node],
                )
            self._check_snapshot_bytes(node, meta.index, rd.snapshot.data)
            shadow.reset(meta.index, meta.term)
        if rd.entries:
            self._check_log_matching(node, shadow, rd.entries)
            shadow.write(rd.entries)
        for entry in rd.committed_entries:
            self._check_applied(node, entry)

    def _check_log_matching(
        self, node: int, shadow: _LogShadow, entries: tuple[Entry, ...]
    ) -> None:
        prev = shadow.term(entries[0].index - 1)
        for e in entries:
            seen = self._entries.setdefault((e.index, e.term), (e.kind, e.data, prev))
            if seen[0] != e.kind or seen[1] != e.data:
                raise self.fail(
                    "log matching",
                    f"node {node} holds a different entry at index {e.index}, term {e.term}",
                    [node],
                )
            if prev is not None and seen[2] is not None and seen[2] != prev:
                raise self.fail(
                    "log matching",
                    f"node {node} holds ({e.index}, {e.term}) after an entry of term {prev}; "
                    f"another node holds it after term {seen[2]}",
                    [node],
                )
            if seen[2] is None and prev is not None:
                self._entries[(e.index, e.term)] = (e.kind, e.data, prev)
            prev = e.term

    def _check_applied(self, node: int, entry: Entry) -> None:
        applied = _Committed(entry.term, int(entry.kind), entry.data)
        known = self.committed.setdefault(entry.index, applied)
        if known != applied:
            raise self.fail(
                "state machine safety",
                f"node {node} applies (term {entry.term}) at index {entry.index}, where an "
                f"entry of term {known.term} was applied",
                [node],
            )

    def _check_snapshot_bytes(self, node: int, index: int, data: bytes) -> None:
        digest = hashlib.sha256(data).digest()
        known = self._snapshot_digests.setdefault(index, digest)
        if known != digest:
            raise self.fail(
                "state machine safety",
                f"node {node}'s state machine snapshot at index {index} differs from another "
                "node's at the same index",
                [node],
            )

    # -- clients ----------------------------------------------------------------------

    def on_acknowledged(self, node: int, client: int, index: int, command: bytes) -> None:
        """`node` told `client` its write `command` was applied at `index`."""
        known = self.committed.get(index)
        # (The leader proposes a session's OpenSession and KeepAlive with its own time.)
        if known is None or not same_but_stamp(command, known.data):
            held = "nothing" if known is None else f"an entry of term {known.term}"
            raise self.fail(
                "acknowledged writes",
                f"node {node} acknowledged client {client}'s write at index {index}, "
                f"where {held} was applied",
                [node],
            )
        self.acknowledged[index] = command

    # -- after every step -------------------------------------------------------------

    def on_step(self, replicas: dict[int, Replica]) -> None:
        # A node whose commit and applied indexes, role and term are those of its last
        # step passes every check below as it did then: only the others are checked.
        changed = []
        last_step = self._last_step
        for node, replica in replicas.items():
            core = replica.core
            state = (core.commit_index, replica.applied_index, core.role, core.term)
            if last_step.get(node) != state:
                last_step[node] = state
                changed.append((node, replica))
        for node, replica in changed:
            core = replica.core
            commit, applied = core.commit_index, replica.applied_index
            before = self._progress.get(node)
            if before is not None and (commit < before[0] or applied < before[1]):
                raise self.fail(
                    "monotonic progress",
                    f"node {node}: commit/applied went from {before} to {(commit, applied)}",
                    [node],
                )
            self._progress[node] = (commit, applied)
            leads = core.role == Role.LEADER
            if leads and self._led.get(node) == core.term and before and commit > before[0]:
                held = core.term_at(commit)
                if held != core.term:
                    raise self.fail(
                        "commit rule",
                        f"node {node}, leader of term {core.term}, moved its commit index "
                        f"from {before[0]} to {commit}, onto an entry of term {held}: an "
                        "earlier term's entry is never committed by counting replicas",
                        [node],
                    )
            if leads:
                self._led[node] = core.term
            else:
                self._led.pop(node, None)
            if commit > self._seen_commit:
                self._note_commits(core.term, commit)
        for node, replica in changed:
            core = replica.core
            if core.role != Role.LEADER:
                continue
            leader = self.leaders.setdefault(core.term, node)
            if leader != node:
                raise self.fail(
                    "election safety", f"nodes {leader} and {node} both lead term {core.term}",
                    [leader, node],
                )  # fmt: skip
            if core.term not in self._complete_terms:
                self._complete_terms.add(core.term)
                self._check_complete(node, replica)

    def _note_commits(self, term: int, commit: int) -> None:
        """Indexes up to `commit` are committed, as seen by a node in `term` (the first
        node to see an index committed gives its commit term; later ones are higher)."""
        for index in range(self._seen_commit + 1, commit + 1):
            self.commit_terms.setdefault(index, term)
        self._seen_commit = commit

    def _check_complete(self, node: int, replica: Replica) -> None:
        core = replica.core
        term = core.term
        held = {e.index: e for e in core.log_entries()}
        first = core.status().first_index
        for index, known in self.committed.items():
            if index < first or self.commit_terms.get(index, term) >= term:
                continue  # compacted into its snapshot, or committed in this term or later
            e = held.get(index)
            if e is None or e.term != known.term or e.data != known.data:
                raise self.fail(
                    "leader completeness",
                    f"node {node} leads term {term} without the entry committed at index "
                    f"{index} (term {known.term}) in term {self.commit_terms[index]}",
                    [node],
                )

    # -- at the end -------------------------------------------------------------------

    def check_final(self, replicas: dict[int, Replica]) -> None:
        """Every node applied every acknowledged write; whole logs match pairwise."""
        if self.acknowledged:
            last = max(self.acknowledged)
            for node, replica in replicas.items():
                if replica.applied_index < last:
                    raise self.fail(
                        "acknowledged writes",
                        f"node {node} applied up to {replica.applied_index}, below the "
                        f"acknowledged write at {last}",
                        [node],
                    )
        logs = {n: {e.index: e for e in r.core.log_entries()} for n, r in replicas.items()}
        nodes = sorted(logs)
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                self._check_pair(a, logs[a], b, logs[b])

    def _check_pair(self, a: int, log_a: dict[int, Entry], b: int, log_b: dict[int, Entry]) -> None:
        matched = False
        for index in sorted(set(log_a) & set(log_b), reverse=True):
            ea, eb = log_a[index], log_b[index]
            matched = matched or ea.term == eb.term
            if matched and ea != eb:
                raise self.fail(
                    "log matching", f"logs differ at index {index} below a matching entry", [a, b]
                )
