"""What really ran where, in virtual time: the cluster service's headline check.

The simulated supervisors (`processes.py`) tell the ledger whenever a resource's process
comes into being, runs, and ends. From that alone (not from what any node believes) the
ledger checks, at every instant:

- **one owner**: no group has a live process (starting, running or stopping: it may
  touch the group's data) on two nodes at once. Planned moves confirm the stop before
  the start; failover after a node is declared down relies on the fencing timings (the
  node's watchdog killed everything before the leader could declare it down), so this
  holds under every fault the nemeses make, or the timing rule is broken;
- **epochs only grow**: a group's processes start under epochs that never go back, and
  one epoch belongs to one node.

It also remembers under which epochs each group was ever fully running on a node, so
that a group said ONLINE under an epoch is checked against what ran (`claimed_online`):
a report its owner did not make under that grant (a stale one) cannot pass.

It also measures failovers: from the moment a group that was online stopped being so
for a reason nobody planned (its owner crashed, the watchdog killed it, a resource
crashed or would not start) to the moment it is online again, on another node
(`failover_ms`) or on the same one (`recovered_in_place_ms`).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping

from chaos.sim.invariants import SafetyViolation

INVARIANT = "one owner"
# Kept per run, for the campaign's distribution (a run sees tens, at most thousands).
MAX_SAMPLES = 10_000
# Grants remembered as fully run (a run grants hundreds); past it the check stops.
MAX_GRANTS = 100_000


class Ledger:
    def __init__(
        self,
        fail: Callable[[str, str, tuple[int, ...]], SafetyViolation],
        sizes: Mapping[str, int],
        measured: Container[str] = (),
    ) -> None:
        self._fail = fail
        self.sizes = sizes  # group -> how many resources it has (as the cluster defined it)
        self.measured = measured  # the groups whose failovers are timed
        self._live: dict[str, dict[int, int]] = {}  # group -> node -> live processes
        self._running: dict[tuple[str, int], int] = {}  # (group, node) -> running processes
        # (group, node, epoch) -> running processes, and those that once all ran
        self._by_epoch: dict[tuple[str, int, int], int] = {}
        self._fully_ran: set[tuple[str, int, int]] = set()
        self._epochs: dict[str, tuple[int, int]] = {}  # group -> (last epoch, its node)
        self._online: dict[str, int] = {}  # group -> the node it is fully online on
        self._incident: dict[str, tuple[int, int]] = {}  # group -> (since, node it was on)
        self.failover_ms: list[int] = []
        self.recovered_in_place_ms: list[int] = []
        self.spawns = 0

    def spawned(self, node: int, group: str, epoch: int, now_ms: int) -> None:
        self.spawns += 1
        last = self._epochs.get(group)
        if last is not None:
            last_epoch, last_node = last
            if epoch < last_epoch:
                raise self._fail(
                    "epochs",
                    f"node {node} starts {group} under epoch {epoch}, after node {last_node} "
                    f"started it under epoch {last_epoch}: epochs only grow",
                    (node, last_node),
                )
            if epoch == last_epoch and node != last_node:
                raise self._fail(
                    "epochs",
                    f"nodes {last_node} and {node} both start {group} under epoch {epoch}",
                    (node, last_node),
                )
        self._epochs[group] = (epoch, node)
        live = self._live.setdefault(group, {})
        others = sorted(n for n, count in live.items() if count and n != node)
        if others:
            raise self._fail(
                INVARIANT,
                f"{group} starts on node {node} (epoch {epoch}) while it still lives on "
                f"node {others[0]}: two owners at once",
                (node, *others),
            )
        live[node] = live.get(node, 0) + 1

    def running(self, node: int, group: str, resource: str, epoch: int, now_ms: int) -> None:
        key = (group, node)
        count = self._running[key] = self._running.get(key, 0) + 1
        size = self.sizes.get(group, -1)
        grant = (group, node, epoch)
        if self._by_epoch.setdefault(grant, 0) + 1 == size and len(self._fully_ran) < MAX_GRANTS:
            self._fully_ran.add(grant)
        self._by_epoch[grant] += 1
        if count == size:
            self._online[group] = node
            incident = self._incident.pop(group, None)
            if incident is not None and len(self.failover_ms) < MAX_SAMPLES:
                since, was_on = incident
                into = self.failover_ms if was_on != node else self.recovered_in_place_ms
                into.append(now_ms - since)

    def ended(
        self,
        node: int,
        group: str,
        resource: str,
        epoch: int,
        now_ms: int,
        cause: str,
        was_running: bool,
    ) -> None:
        live = self._live[group]
        live[node] -= 1
        assert live[node] >= 0, (group, node)
        if was_running:
            self._running[(group, node)] -= 1
            self._by_epoch[(group, node, epoch)] -= 1
        if self._online.get(group) == node:
            del self._online[group]
            if cause != "stopped" and group in self.measured:
                self._incident.setdefault(group, (now_ms, node))

    def claimed_online(self, group: str, node: int, epoch: int) -> None:
        """The cluster says `group` is ONLINE on `node` under `epoch` (its owner reported
        every resource started): they must all have run there, under that epoch."""
        if not self.sizes.get(group):
            return  # a group of no resources runs nothing
        if (group, node, epoch) not in self._fully_ran and len(self._fully_ran) < MAX_GRANTS:
            raise self._fail(
                "epochs",
                f"{group} is ONLINE on node {node} under epoch {epoch}, but its resources "
                "never all ran there under that epoch: a report its owner did not make "
                "under this grant was accepted",
                (node,),
            )

    def owner_failed(self, node: int, now_ms: int) -> None:
        """`node`'s own process crashed: for the groups online there, the failover clock
        starts now (their processes live on until the watchdog)."""
        for group, on in sorted(self._online.items()):
            if on == node and group in self.measured:
                self._incident.setdefault(group, (now_ms, node))

    def parked(self, group: str) -> None:
        """`group`'s policy keeps it offline (left FAILED, or priority 0): no failover is
        under way for it."""
        self._incident.pop(group, None)

    def online(self) -> dict[str, int]:
        """group -> the node where every one of its resources runs now."""
        return dict(self._online)

    def live_nodes(self, group: str) -> list[int]:
        return sorted(n for n, c in self._live.get(group, {}).items() if c)
