"""An independent reference model of the groups part, for the stateful test.

Written apart from statemachine/groups on purpose: plain dicts and lists, placement
recomputed from scratch by brute force (every node scored by a full scan of every
group, no running tallies, no hints object), no events, no reasons. It follows the
rules of docs/groups.md; where the part and the model disagree, one of them misreads
the rules.
"""

from __future__ import annotations

from typing import Any

from statemachine.groups.messages import (
    DAY_MS,
    CreateGroup,
    DeleteGroup,
    DrainNode,
    Failback,
    GroupReport,
    GroupSpec,
    GroupsTick,
    JoinNode,
    MoveGroup,
    NodeDown,
    NodeUp,
    PauseNode,
    RemoveNode,
    ReportKind,
    ResumeNode,
    SetGroupOffline,
    SetGroupOnline,
    UpdateGroup,
)

UP, DOWN, PAUSED, DRAINING = "up", "down", "paused", "draining"
OFFLINE, STARTING, ONLINE, STOPPING, FAILED = "offline", "starting", "online", "stopping", "failed"


class Refused(Exception):
    pass


class Model:
    def __init__(self, day_ms: int = DAY_MS) -> None:
        self.day_ms = day_ms
        self.nodes: dict[int, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.epoch = 0
        self.clock = 0

    # -- outcomes: "done", "refused" (a Failure), "stale" (ReportRefused) ---------------

    def apply(self, cmd: Any) -> str:
        now = max(self.clock, cmd.at_ms)
        self.now = now
        self.targets: dict[str, int] = {}
        self.away: dict[str, int] = {}
        self.resumed = 0
        self.settled = False
        try:
            out = self._apply(cmd)
        except Refused:
            return "refused"
        if self.settled:
            self.clock = now
        return out

    def _apply(self, cmd: Any) -> str:  # noqa: C901 - one branch per command, as a table
        N, G = self.nodes, self.groups
        if isinstance(cmd, JoinNode):
            if cmd.node in N or len(N) >= 64:
                raise Refused
            N[cmd.node] = {"state": UP, "inc": 0, "since": self.now}
        elif isinstance(cmd, RemoveNode):
            if cmd.node not in N:
                raise Refused
            for g in self._owned(cmd.node):
                self._lose(g, 0)
            del N[cmd.node]
        elif isinstance(cmd, NodeUp):
            n = N.get(cmd.node)
            if n is None or cmd.incarnation < n["inc"]:
                return "done"
            if n["state"] == DOWN:
                n.update(state=UP, inc=cmd.incarnation, since=self.now)
            elif cmd.incarnation > n["inc"]:
                n["inc"] = cmd.incarnation
                for g in self._owned(cmd.node):
                    self._lose(g, cmd.node)
            else:
                return "done"
        elif isinstance(cmd, NodeDown):
            n = N.get(cmd.node)
            if n is None or n["state"] == DOWN:
                return "done"
            n.update(state=DOWN, since=self.now)
            for g in self._owned(cmd.node):
                self._lose(g, cmd.node)
        elif isinstance(cmd, (PauseNode, DrainNode, ResumeNode)):
            n = N.get(cmd.node)
            if n is None or n["state"] == DOWN:
                raise Refused
            new = {PauseNode: PAUSED, DrainNode: DRAINING, ResumeNode: UP}[type(cmd)]
            if n["state"] == new and not (new == UP and cmd.failback):
                return "done"
            if n["state"] != new:
                n.update(state=new, since=self.now)
            if isinstance(cmd, ResumeNode) and cmd.failback:
                self.resumed = cmd.node
        elif isinstance(cmd, CreateGroup):
            if cmd.spec.name in G or len(G) >= 1000:
                raise Refused
            self._no_cycle(cmd.spec)
            G[cmd.spec.name] = {
                "spec": cmd.spec, "online": cmd.online, "state": OFFLINE, "owner": 0,
                "epoch": 0, "moving": 0, "failures": [],
            }  # fmt: skip
        elif isinstance(cmd, UpdateGroup):
            g = self._group(cmd.spec.name)
            if cmd.spec.resources != g["spec"].resources and g["state"] not in (OFFLINE, FAILED):
                raise Refused
            self._no_cycle(cmd.spec)
            if cmd.spec == g["spec"]:
                return "done"
            g["spec"] = cmd.spec
        elif isinstance(cmd, DeleteGroup):
            g = self._group(cmd.name)
            if g["state"] not in (OFFLINE, FAILED):
                raise Refused
            del G[cmd.name]
        elif isinstance(cmd, MoveGroup):
            return self._move(cmd)
        elif isinstance(cmd, SetGroupOnline):
            g = self._group(cmd.name)
            if g["online"] and g["state"] != FAILED:
                return "done"
            g["online"] = True
            if g["state"] == FAILED:
                g.update(state=OFFLINE, failures=[])
        elif isinstance(cmd, SetGroupOffline):
            g = self._group(cmd.name)
            if not g["online"] and g["state"] != FAILED and g["moving"] == 0:
                return "done"
            g["online"] = False
            if g["state"] == FAILED:
                g["state"] = OFFLINE
            g["moving"] = 0
        elif isinstance(cmd, GroupReport):
            return self._report(cmd)
        elif isinstance(cmd, GroupsTick):
            for g in G.values():
                g["failures"] = self._recent(g)
        else:
            raise AssertionError(cmd)
        self._settle()
        return "done"

    def _group(self, name: str) -> dict[str, Any]:
        if name not in self.groups:
            raise Refused
        return self.groups[name]

    def _owned(self, node: int) -> list[dict[str, Any]]:
        return [self.groups[k] for k in sorted(self.groups) if self.groups[k]["owner"] == node]

    def _no_cycle(self, spec: GroupSpec) -> None:
        def deps(s: GroupSpec) -> list[str]:
            return list(s.start_after) + ([s.colocate_with] if s.colocate_with else [])

        reach, todo = set(), deps(spec)
        while todo:
            x = todo.pop()
            if x == spec.name:
                raise Refused
            if x not in reach and x in self.groups:
                reach.add(x)
                todo += deps(self.groups[x]["spec"])

    def _recent(self, g: dict[str, Any]) -> list[tuple[int, int]]:
        return [(at, n) for at, n in g["failures"] if self.now - at < g["spec"].failover_period_ms]

    def _lose(self, g: dict[str, Any], failed_on: int) -> None:
        name = g["spec"].name
        if g["moving"]:
            self.targets[name] = g["moving"]
        g.update(owner=0, moving=0, state=OFFLINE)
        if failed_on and g["online"]:
            g["failures"] = (g["failures"] + [(self.now, failed_on)])[-101:]
            if len(self._recent(g)) > g["spec"].failover_threshold:
                g["state"] = FAILED
            elif g["spec"].priority == 0:
                g["online"] = False

    def _move(self, cmd: MoveGroup) -> str:
        g = self._group(cmd.name)
        if g["state"] not in (STARTING, ONLINE) or not g["online"]:
            raise Refused
        if cmd.node == g["owner"]:
            return "done"
        if cmd.node == 0:
            self.away[cmd.name] = g["owner"]
            trial = self._placement_pass(dry=True)
            if trial.get(cmd.name, ("", 0))[0] != "move":
                raise Refused
            self._settle()
            return "done"
        n = self.nodes.get(cmd.node)
        spec = g["spec"]
        if n is None or n["state"] != UP or spec.colocate_with:
            raise Refused
        if spec.possible_owners and cmd.node not in spec.possible_owners:
            raise Refused
        g.update(state=STOPPING, moving=cmd.node)
        self._settle()
        return "done"

    def _report(self, r: GroupReport) -> str:
        g = self.groups.get(r.group)
        if g is None or g["owner"] != r.node or g["epoch"] != r.epoch:
            over = g is not None and g["epoch"] == r.epoch and g["owner"] == 0
            if over and r.kind in (ReportKind.STOPPED, ReportKind.FAILED):
                return "done"
            return "stale"
        if r.kind == ReportKind.RESTARTED:
            return "done"
        if r.kind == ReportKind.STARTED:
            if g["state"] != STARTING:
                return "done"
            g["state"] = ONLINE
        elif r.kind == ReportKind.STOPPED and g["state"] == STOPPING:
            self._lose(g, 0)
        else:
            self._lose(g, r.node)
        self._settle()
        return "done"

    # -- placement, by brute force --------------------------------------------------------

    def _settle(self) -> None:
        for _ in range(2 * len(self.groups) + 2):
            if not self._placement_pass(dry=False):
                self.settled = True
                return
        raise AssertionError("the model did not settle")

    def where(self, g: dict[str, Any]) -> int:
        if g["state"] == STOPPING:
            return int(g["moving"])
        return int(g["owner"]) if g["state"] in (STARTING, ONLINE) else 0

    def _placement_pass(self, dry: bool) -> dict[str, tuple[str, int]]:
        pos = {k: self.where(v) for k, v in self.groups.items()}
        acts: dict[str, tuple[str, int]] = {}
        names = sorted(self.groups, key=lambda k: (-self.groups[k]["spec"].priority, k))
        for name in names:
            g = self.groups[name]
            act = self._decide(name, g, pos)
            if act[0] in ("grant", "move"):
                pos[name] = act[1]
            elif act[0] == "stop":
                pos[name] = 0
            if act[0] != "stay":
                acts[name] = act
        if not dry:
            for name in names:
                if name in acts:
                    self._do(self.groups[name], *acts[name])
        return acts

    def _do(self, g: dict[str, Any], what: str, node: int) -> None:
        if what == "grant":
            self.epoch += 1
            g.update(owner=node, epoch=self.epoch, state=STARTING)
            self.targets.pop(g["spec"].name, None)
        elif what in ("move", "stop"):
            g.update(state=STOPPING, moving=node)

    def _score(self, g: dict[str, Any], name: str, n: int, pos: dict[str, int]) -> int:
        spec = g["spec"]
        pref = list(spec.preferred_owners)
        s = (len(pref) - pref.index(n)) * 1000 if n in pref else 0
        if n == g["owner"]:
            s += spec.stickiness
        for other, at in pos.items():
            if other == name or at != n:
                continue
            s -= 1
            if (
                spec.anti_affinity
                and self.groups[other]["spec"].anti_affinity == spec.anti_affinity
            ):
                s -= 500
        return s

    def _avoid(self, g: dict[str, Any]) -> list[int]:
        return [n for at, n in self._recent(g) if n in self.nodes and at >= self.nodes[n]["since"]]

    def _candidates(self, g: dict[str, Any], need: int, leaving: int) -> list[int]:
        spec = g["spec"]
        ok = [
            n
            for n, info in sorted(self.nodes.items())
            if n != leaving
            and info["state"] == UP
            and (not spec.possible_owners or n in spec.possible_owners)
            and (not need or n == need)
        ]
        avoid = self._avoid(g)
        return [n for n in ok if n not in avoid] or ok

    def _best(self, g: dict[str, Any], name: str, cands: list[int], pos: dict[str, int]) -> int:
        return max(cands, key=lambda n: (self._score(g, name, n, pos), -n))

    def _decide(self, name: str, g: dict[str, Any], pos: dict[str, int]) -> tuple[str, int]:
        spec = g["spec"]
        if g["state"] in (STOPPING, FAILED):
            return ("stay", 0)
        if not g["online"]:
            return ("stop", 0) if g["owner"] else ("stay", 0)
        need = 0
        if spec.colocate_with:
            need = pos.get(spec.colocate_with, 0)
        if not g["owner"]:
            for dep in spec.start_after:
                if dep not in self.groups or self.groups[dep]["state"] != ONLINE:
                    return ("stay", 0)
            if spec.colocate_with and not need:
                return ("stay", 0)
            cands = self._candidates(g, need, 0)
            if not cands:
                return ("stay", 0)
            if self.targets.get(name) in cands:
                return ("grant", self.targets[name])
            return ("grant", self._best(g, name, cands, pos))
        owner = g["owner"]
        info = self.nodes.get(owner)
        must_leave = (
            info is None
            or info["state"] in (DOWN, DRAINING)
            or (spec.possible_owners and owner not in spec.possible_owners)
            or self.away.get(name) == owner
            or (need and need != owner)
        )
        if must_leave:
            cands = self._candidates(g, need, owner)
            return ("move", self._best(g, name, cands, pos)) if cands else ("stay", 0)
        if spec.colocate_with or g["state"] not in (
            (ONLINE, STARTING) if self.resumed else (ONLINE,)
        ):
            return ("stay", 0)
        pref = list(spec.preferred_owners)
        rank = pref.index(owner) if owner in pref else len(pref)
        avoid = self._avoid(g)
        better = [
            n
            for n in pref[:rank]
            if n in self.nodes
            and self.nodes[n]["state"] == UP
            and (not spec.possible_owners or n in spec.possible_owners)
            and n not in avoid
        ]
        if not better:
            return ("stay", 0)
        if self.resumed in better:
            return ("move", self.resumed)
        if g["state"] != ONLINE:
            return ("stay", 0)
        target = 0
        if spec.failback == Failback.IMMEDIATE:
            target = better[0]
        elif spec.failback == Failback.WINDOW:
            hour = (self.now % self.day_ms) * 24 // self.day_ms
            a, b = spec.window_start_hour, spec.window_end_hour
            inside = (a <= hour < b) if a < b else (hour >= a or hour < b) if a > b else False
            target = better[0] if inside else 0
        elif spec.failback == Failback.STABLE:
            stable = [n for n in better if self.now - self.nodes[n]["since"] >= spec.stable_ms]
            target = stable[0] if stable else 0
        if target and self._score(g, name, target, pos) > self._score(g, name, owner, pos):
            return ("move", target)
        return ("stay", 0)
