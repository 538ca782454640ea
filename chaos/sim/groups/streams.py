"""The event streams every node's handlers were given, checked as they are given.

Each node's `GlobalUpdates` calls its handlers once per committed event, in log order,
resuming from its cursor after a restart. Here every delivery is checked against every
other node's:
- **gap-free**: a node's handlers see revisions n, n+1, n+2... (a compaction notice is
  the only allowed jump, and it names where the stream resumes);
- **the same everywhere**: revision n is the same event on every node (compared by its
  canonical encoding);
- **coherent with itself** (checked once per revision, on its first delivery): grants
  carry epochs that only grow; a group's state changes happen under its current grant
  (so no stale-epoch report was ever accepted); failback happens only as its policy
  says (never for NEVER, inside the window for WINDOW, once the owner was stable for
  STABLE), judged here with our own hour-of-day arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable

from chaos.sim.invariants import SafetyViolation
from statemachine.codec import encode
from statemachine.groups.messages import (
    Failback,
    GroupChanged,
    GroupDefined,
    GroupEvent,
    GroupPlaced,
    GroupSpec,
    GroupState,
    NodeChanged,
    NodeState,
)

# Revisions remembered for comparing nodes: a node more than this far behind the first
# to see a revision is compared only from where the window starts.
MAX_REMEMBERED = 50_000


class Streams:
    def __init__(
        self, fail: Callable[[str, str, tuple[int, ...]], SafetyViolation], day_ms: int
    ) -> None:
        self._fail = fail
        self.day_ms = day_ms
        self._bytes: dict[int, bytes] = {}  # revision -> its encoding, as first seen
        self._last: dict[int, int] = {}  # node -> last revision its handlers were given
        self._specs: dict[str, GroupSpec] = {}
        self.sizes: dict[str, int] = {}  # group -> how many resources it has
        self._grants: dict[str, tuple[int, int]] = {}  # group -> (owner, epoch)
        self._epoch = 0
        self._up_since: dict[int, int] = {}  # node -> when it last came UP (at_ms)
        self.delivered = 0
        self.failbacks = 0
        # Told of a group kept offline on purpose (left FAILED by its threshold, set
        # offline by an operator): the time until an operator acts is no failover time.
        self.parked: Callable[[str], None] = lambda group: None
        # Told of a group the cluster says is ONLINE (group, owner, epoch): checked
        # against what really ran.
        self.online: Callable[[str, int, int], None] = lambda group, node, epoch: None
        # Groups whose failovers are measured: those that start on their own and depend
        # on no other group (a dependency's own outage is not theirs).
        self.measured: set[str] = set()

    def seen(self, node: int, event: GroupEvent) -> None:
        self.delivered += 1
        last = self._last.get(node)
        revision = event.revision
        if last is not None and revision != last + 1:
            raise self._fail(
                "event streams",
                f"node {node}'s handlers were given revision {revision} after {last}",
                (node,),
            )
        self._last[node] = revision
        data = encode(event)
        first = self._bytes.get(revision)
        if first is None:
            self._bytes[revision] = data
            self._bytes.pop(revision - MAX_REMEMBERED, None)
            self._judge(event)
        elif first != data:
            raise self._fail(
                "event streams",
                f"node {node} was given another event as revision {revision}: {event!r}",
                (node,),
            )

    def compacted(self, node: int, resumes_at: int) -> None:
        """`node`'s cursor fell behind what its state retains: it resumes at `resumes_at`."""
        self._last[node] = resumes_at - 1

    # -- what one event must respect --------------------------------------------------------

    def _judge(self, event: GroupEvent) -> None:
        if isinstance(event, GroupDefined):
            if event.deleted:
                self._specs.pop(event.spec.name, None)
                self._grants.pop(event.spec.name, None)
            else:
                spec = self._specs[event.spec.name] = event.spec
                self.sizes[spec.name] = len(spec.resources)
                if spec.priority and not spec.start_after and not spec.colocate_with:
                    self.measured.add(spec.name)
                else:
                    self.measured.discard(spec.name)
        elif isinstance(event, NodeChanged):
            if event.state == NodeState.UP:
                self._up_since.setdefault(event.node, event.at_ms)
            else:
                self._up_since.pop(event.node, None)
        elif isinstance(event, GroupPlaced):
            self._placed(event)
        elif isinstance(event, GroupChanged):
            self._changed(event)

    def _placed(self, event: GroupPlaced) -> None:
        d = event.decision
        if d.node and event.epoch:
            if event.epoch <= self._epoch:
                raise self._fail(
                    "epochs",
                    f"{d.group} granted to node {d.node} under epoch {event.epoch}, not above "
                    f"the last grant's {self._epoch}",
                    (d.node,),
                )
            self._epoch = event.epoch
            self._grants[d.group] = (d.node, event.epoch)
        if d.rule == "offline":
            self.parked(d.group)
        if d.rule != "failback":
            return
        self.failbacks += 1
        spec = self._specs.get(d.group)
        if spec is None:
            return
        where = f"{d.group} failed back to node {d.node} at {event.at_ms} ms"
        if spec.failback == Failback.NEVER:
            raise self._fail("failback", f"{where}, but its policy is never", (d.node,))
        if spec.failback == Failback.WINDOW:
            hour = (event.at_ms % self.day_ms) * 24 // self.day_ms
            start, end = spec.window_start_hour, spec.window_end_hour
            inside = start <= hour < end if start <= end else hour >= start or hour < end
            if not inside:
                raise self._fail(
                    "failback",
                    f"{where} (hour {hour}), outside its window [{start}, {end})",
                    (d.node,),
                )
        if spec.failback == Failback.STABLE:
            since = self._up_since.get(d.node)
            if since is None or event.at_ms - since < spec.stable_ms:
                raise self._fail(
                    "failback",
                    f"{where}, but the node was up only since {since} ms and the policy "
                    f"asks for {spec.stable_ms} ms",
                    (d.node,),
                )

    def _changed(self, event: GroupChanged) -> None:
        if event.state in (GroupState.OFFLINE, GroupState.FAILED) or not event.owner:
            if event.state == GroupState.FAILED:  # left offline by its threshold
                self.parked(event.group)
            return
        grant = self._grants.get(event.group)
        if event.state == GroupState.ONLINE:
            self.online(event.group, event.owner, event.epoch)
        if grant != (event.owner, event.epoch):
            raise self._fail(
                "epochs",
                f"{event.group} became {event.state.name} on node {event.owner} under epoch "
                f"{event.epoch}, but its grant is {grant} (owner, epoch): a stale report "
                "was accepted",
                (event.owner,),
            )
