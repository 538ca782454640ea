"""A simulator run's timeline: node intervals and fault bars, read from its typed trace.

`SimTimeline(nodes, base_network)` reads the trace's events (`chaos.sim.events`) in
order with `add`, and `finish(end_ms)` closes what is still open. It dispatches on the
event's class and, for a `FaultInjected`, on the fault's class; it never reads a record
by position. What becomes what (docs/chaos.md, "Read the report"):

- `RoleChanged`: role bars (a pre-candidate, campaigning with pre-vote, is drawn as a
  candidate); `NodeCrashed` to the next `NodeStarted`: a crashed interval and a `kill`
  fault; `NodeRefused` (a node that would not start from its disk): crashed on to the
  end, unless a later start succeeds, and named in `notes`; `NodeResumed` ends a pause;
  `Healed` ends every network fault;
- faults, each lasting until what undoes it: `Partition` (its sides; a side of one node
  is isolated) and `CutLinks` until a `HealNetwork` or the next partition;
  `NetworkConditions` (what exceeds the base network: loss, duplication, wider delays,
  damaged frames) until the next one; `Degrade` (the same, per source) until its source
  withdraws it; `SlowLinks` until the next; `Pause` until the node resumes or crashes;
  `ClockDrift` until the node's next drift (or the end); `ClockJump`, `DiskFault` and
  `ChangeMembership` are instants; `Crash`, `Restart` and `HealNetwork` show through what
  they cause. A fault kind this module does not know is an instant with its fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from chaos.report import Fault, Interval, IntervalKind
from chaos.sim.events import (
    Event,
    FaultInjected,
    Healed,
    NodeCrashed,
    NodeRefused,
    NodeResumed,
    NodeStarted,
    RoleChanged,
    plain,
)
from chaos.sim.faults import (
    ChangeMembership,
    ClockDrift,
    ClockJump,
    Crash,
    CutLinks,
    Degrade,
    DiskFault,
    HealNetwork,
    NetworkConditions,
    Partition,
    Pause,
    Restart,
    SlowLinks,
)
from chaos.sim.faults import Fault as SimFault

ROLES: Final = {
    "follower": IntervalKind.FOLLOWER,
    "pre_candidate": IntervalKind.CANDIDATE,
    "candidate": IntervalKind.CANDIDATE,
    "leader": IntervalKind.LEADER,
}
DISK_WORDS: Final = {
    "eio-write": "its next write fails (EIO)",
    "eio-sync": "its next fsync fails (EIO)",
    "enospc-write": "its next write fails for want of space (ENOSPC)",
    "enospc-sync": "its next fsync fails for want of space (ENOSPC)",
    "bit-flip": "a bit of its synced data flips",
    "zero-sector": "a 512-byte sector of its synced data is zeroed",
    "lost": "its data directory is lost",
}
_NODE_FIELDS: Final = ("node", "nodes", "links", "groups")  # fields that name nodes
Key = tuple[str, Any]  # an open fault: (group, which)


@attrs.define
class _Open:
    start: int
    kind: str
    nodes: tuple[int, ...]
    detail: str
    groups: tuple[tuple[int, ...], ...] = ()


class SimTimeline:
    """Reads trace events in order and closes intervals as the simulator changed state."""

    def __init__(self, nodes: tuple[int, ...], base_network: NetworkConditions) -> None:
        self.nodes = nodes
        self.base = base_network
        self.intervals: list[Interval] = []
        self.faults: list[Fault] = []
        self.running: set[int] = set()
        self.pre_vote = False  # a node was seen campaigning with pre-vote
        self.refused: dict[int, list[tuple[int, str]]] = {}  # node -> (time, error)...
        # Open intervals: node -> (kind, start, term) for roles, node -> start otherwise.
        self.role: dict[int, tuple[IntervalKind, int, int]] = {}
        self.crashed: dict[int, int] = {}
        self.paused: dict[int, int] = {}
        self.isolated: dict[int, int] = {}
        self.open: dict[Key, _Open] = {}
        self._cuts = 0

    # -- events -------------------------------------------------------------------------

    def add(self, event: Event) -> None:
        match event:
            case NodeStarted(time_ms=t, node=node):
                self._start(t, node)
            case RoleChanged(time_ms=t, node=node, role=role, term=term):
                self._end_role(node, t)
                self.pre_vote |= role == "pre_candidate"
                self.role[node] = (ROLES.get(role, IntervalKind.FOLLOWER), t, term)
            case NodeCrashed():
                self._crash(event)
            case NodeRefused(time_ms=t, node=node, error=error):
                self.running.discard(node)
                self.crashed.setdefault(node, t)
                self.refused.setdefault(node, []).append((t, error))
            case NodeResumed(time_ms=t, node=node):
                self._close_pause(node, t)
            case FaultInjected(time_ms=t, fault=fault):
                self._fault(t, fault)
            case Healed(time_ms=t):  # the network as the run began, every fault undone
                self._close_network(t)
                for group in ("net", "degrade", "slow"):
                    self._close_group(group, t)

    def _start(self, t: int, node: int) -> None:
        self.running.add(node)
        start = self.crashed.pop(node, None)
        if start is not None:
            self.intervals.append(Interval(node, IntervalKind.CRASHED, start, t))
        self._close(("kill", node), t)

    def _end_role(self, node: int, t: int) -> None:
        current = self.role.pop(node, None)
        if current is not None:
            kind, start, term = current
            self.intervals.append(Interval(node, kind, start, t, term))

    def _crash(self, event: NodeCrashed) -> None:
        t, node = event.time_ms, event.node
        self.running.discard(node)
        self._end_role(node, t)
        self._close_pause(node, t)
        self.crashed.setdefault(node, t)
        words = [f"node {node} crashed" + (" inside a persist" if event.during_persist else "")]
        if event.lost_bytes:
            words.append(f"{event.lost_bytes:,} unsynced bytes lost")
        if event.torn:
            words.append("a record torn")
        self._open(("kill", node), t, "kill", (node,), "; ".join(words))

    def _close_pause(self, node: int, t: int) -> None:
        start = self.paused.pop(node, None)
        if start is not None:
            self.intervals.append(Interval(node, IntervalKind.PAUSED, start, t))
            self._close(("pause", node), t)

    # -- faults -------------------------------------------------------------------------

    def _fault(self, t: int, fault: SimFault) -> None:
        match fault:
            case Partition(groups=groups):
                self._close_network(t)
                self._partition(t, groups)
            case CutLinks(links=links):
                touched = self._touched(n for link in links for n in link)
                self._cuts += 1  # each cut is its own bar, until the network heals
                self._open(
                    ("cut", self._cuts), t, "link-cut", touched, "links cut: " + _links(links)
                )
            case HealNetwork():
                self._close_network(t)
            case NetworkConditions():
                self._close_group("net", t)
                self._conditions("net", t, fault, "")
            case Degrade(source=source, conditions=conditions):
                self._close_group("degrade", t, source)
                if conditions is not None:
                    self._conditions("degrade", t, conditions, f" (from {source})", source)
            case SlowLinks(links=links, extra_ms=extra):
                self._close_group("slow", t)
                if links and extra > 0:
                    detail = f"+{extra:,} ms on " + _links(links)
                    touched = self._touched(n for link in links for n in link)
                    self._open(("slow", "links"), t, "slow-link", touched, detail)
            case Pause(node=node, duration_ms=duration):
                if node in self.running and node not in self.paused:
                    self.paused[node] = t
                    detail = f"node {node} paused for {duration:,} ms"
                    self._open(("pause", node), t, "pause", (node,), detail)
            case ClockJump(node=node, forward_ms=forward):
                detail = f"node {node}'s clock jumps {forward:+,} ms"
                self.faults.append(Fault("clock-skew", t, t, (node,), detail))
            case ClockDrift(node=node, drift_ppm=ppm):
                self._close(("drift", node), t)
                if ppm:
                    detail = f"node {node}'s clock drifts {ppm:+,} ppm"
                    self._open(("drift", node), t, "clock-skew", (node,), detail)
            case DiskFault(node=node, what=what):
                detail = f"node {node}'s disk: {DISK_WORDS.get(what, what)}"
                self.faults.append(Fault("disk", t, t, self._touched([node]), detail))
            case ChangeMembership(op=op, node=node):
                detail = f"{op} node {node} (asked of the leader)"
                self.faults.append(Fault("membership", t, t, self._touched([node]), detail))
            case Crash() | Restart():
                pass  # they show through the NodeCrashed and NodeStarted they cause
            case _:
                self._other(t, fault)

    def _partition(self, t: int, groups: Sequence[Sequence[int]]) -> None:
        sides = [tuple(sorted(g)) for g in groups if g]
        alone = [n for n in self.nodes if not any(n in side for side in sides)]
        sides += [(n,) for n in alone]  # nodes in no group are cut from everyone
        detail = " | ".join("{" + ",".join(map(str, side)) + "}" for side in sides)
        self._open(("cut", "partition"), t, "partition", self.nodes, detail, tuple(sides))
        for side in sides:
            if len(side) == 1 and len(self.nodes) > 1:
                self.isolated[side[0]] = t

    def _close_network(self, t: int) -> None:
        """Every cut between nodes is gone (a heal, or a partition replacing them)."""
        self._close_group("cut", t)
        for node, start in sorted(self.isolated.items()):
            self.intervals.append(Interval(node, IntervalKind.ISOLATED, start, t))
        self.isolated.clear()

    def _conditions(
        self, group: str, t: int, c: NetworkConditions, source: str, which: str = ""
    ) -> None:
        """A bar for each way `c` is worse than the base network."""
        base = self.base
        worse = (  # (fault kind, worse than the base, in words)
            ("loss", c.loss > base.loss, f"{c.loss:.1%} of messages lost"),
            (
                "duplicate",
                c.duplicate > base.duplicate,
                f"{c.duplicate:.1%} of node-to-node messages duplicated",
            ),
            (
                "slow-link",
                c.max_delay_ms > base.max_delay_ms,
                f"delays {c.min_delay_ms:,}–{c.max_delay_ms:,} ms (messages reorder)",
            ),
            (
                "truncate",
                c.truncate > base.truncate,
                f"{c.truncate:.1%} of messages arrive cut short",
            ),
        )
        for kind, is_worse, words in worse:
            if is_worse:
                self._open((group, (which, kind)), t, kind, self.nodes, words + source)

    def _other(self, t: int, fault: SimFault) -> None:
        """A fault kind not known here: an instant naming its fields and its nodes."""
        fields = {k: v for k, v in plain(fault).items() if k != "kind"}
        touched = self._touched(n for name in _NODE_FIELDS for n in _node_ids(fields.get(name)))
        detail = ", ".join(f"{name}={_word(value)}" for name, value in fields.items())
        self.faults.append(Fault(fault.kind, t, t, touched, detail))

    def _touched(self, nodes: Iterable[int]) -> tuple[int, ...]:
        """The run's nodes among `nodes` (links may name clients), sorted."""
        return tuple(sorted(set(nodes) & set(self.nodes)))

    # -- open faults --------------------------------------------------------------------

    def _open(
        self,
        key: Key,
        t: int,
        kind: str,
        nodes: tuple[int, ...],
        detail: str,
        groups: tuple[tuple[int, ...], ...] = (),
    ) -> None:
        self._close(key, t)
        self.open[key] = _Open(t, kind, nodes, detail, groups)

    def _close(self, key: Key, t: int | None) -> None:
        bar = self.open.pop(key, None)
        if bar is not None:
            self.faults.append(Fault(bar.kind, bar.start, t, bar.nodes, bar.detail, bar.groups))

    def _close_group(self, group: str, t: int | None, which: Any = None) -> None:
        """Close every open fault of `group` (of `which`'s, for keys `(which, aspect)`)."""
        for key in [k for k in self.open if k[0] == group]:
            if which is None or (isinstance(key[1], tuple) and key[1][0] == which):
                self._close(key, t)

    # -- the end ------------------------------------------------------------------------

    def finish(self, end_ms: int) -> tuple[list[Interval], list[Fault]]:
        for node in sorted(self.role):
            self._end_role(node, end_ms)
        for node, start in sorted(self.crashed.items()):
            self.intervals.append(Interval(node, IntervalKind.CRASHED, start, end_ms))
        for node in sorted(self.paused):
            self._close_pause(node, end_ms)
        self._close_network(end_ms)
        for key in list(self.open):  # still open (a crash, a drift): lasted to the end
            self._close(key, None)
        intervals = sorted(self.intervals, key=lambda i: (i.node, i.start_ms, i.kind.value))
        faults = sorted(self.faults, key=lambda f: (f.start_ms, f.kind, f.nodes, f.detail))
        return intervals, faults

    @property
    def notes(self) -> list[str]:
        """What the page should say that no bar says."""
        notes = []
        if self.pre_vote:
            notes.append("Pre-candidates (campaigning with pre-vote) are drawn as candidates.")
        for node, refusals in sorted(self.refused.items()):
            first, error = refusals[0]
            again = f" (and {len(refusals) - 1:,} more times)" if len(refusals) > 1 else ""
            still = node not in self.running
            after = "to the end of the run" if still else "until it started again"
            notes.append(
                f"Node {node} would not start from its data directory at {first:,} ms"
                f"{again}: {error}. It is drawn as crashed {after}."
            )
        return notes


def _links(links: Iterable[Sequence[int]]) -> str:
    return ", ".join(f"{a}→{b}" for a, b in links)


def _node_ids(value: Any) -> set[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return {value}
    if isinstance(value, list | tuple):
        return {n for item in value for n in _node_ids(item)}
    return set()


def _word(value: Any) -> str:
    """A field's value in a detail: a string as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=repr)
