"""Every `raftcluster group`, `node` and `events` command once, against one shared live
3-node cluster (kit.py): `--json` output parses, tables for people, errors exit 1.

The nodes really run the groups (a group's resources are `sleep` processes, or none), so
the tests wait for what really happens (a group ONLINE on the node placement chose, a
move, a failback) and check that a query or a second `apply` changes nothing on a
settled cluster (kit.py, `settled`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

import raftcluster
from raftcluster.config import ClusterFile
from statemachine.groups.messages import (
    Failback,
    GroupInfo,
    GroupSpec,
    GroupState,
    NodeChanged,
    ResourceSpec,
)
from tests.groups_cli.kit import (
    PATIENT,
    SLEEPER,
    about,
    cli,
    cli_process,
    event_after,
    events_after,
    group_state,
    online_on,
    placed,
    revision,
    settled,
    synchronously,
)
from tests.live_kit import WAIT_S

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_group_commands(cluster: ClusterFile) -> None:
    created = cli_process(cluster, "group", "create", "c-web", "--preferred", "2,1",
                  "--failback", "immediate", "--stickiness", "10", "--json")  # fmt: skip
    assert created.code == 0, created.err
    assert created.json()["ok"] and created.json()["revision"] > 0
    offline = cli(cluster, "group", "create", "c-db", "--offline", "--possible", "2,3")
    assert offline.code == 0 and "group c-db created, wanted offline" in offline.out
    synchronously(cluster, lambda c: group_state(c, "c-web", GroupState.ONLINE, owner=2))

    listed = cli(cluster, "group", "status", "--json").json()["groups"]
    web = next(g for g in listed if g["spec"]["name"] == "c-web")
    assert (web["state"], web["owner"], web["online"]) == ("ONLINE", 2, True)
    assert web["spec"]["preferred_owners"] == [2, 1] and web["spec"]["failback"] == "IMMEDIATE"
    db = next(g for g in listed if g["spec"]["name"] == "c-db")
    assert (db["state"], db["owner"], db["online"]) == ("OFFLINE", 0, False)
    table = cli(cluster, "group", "status").out.splitlines()
    assert table[0].split() == ["NAME", "STATE", "OWNER", "EPOCH", "ONLINE", "FAILBACK",
                                "LAST", "DECISION"]  # fmt: skip
    assert any(line.split()[:3] == ["c-web", "ONLINE", "2"] for line in table)

    one = cli(cluster, "group", "status", "c-web")
    assert one.out.startswith("group c-web: ONLINE, on node 2 (epoch ")
    assert "preferred 1st +2000" in one.out and "resources: none" in one.out
    why = cli(cluster, "group", "why", "c-web", "--json").json()
    assert (why["node"], why["rule"]) == (2, "start")
    assert [s["node"] for s in why["scores"]] == [2, 1, 3]
    assert "rule start: node 2 scores highest" in cli(cluster, "group", "why", "c-web").out

    # policies, resources (only while offline), online / offline, a move, a delete
    assert cli(cluster, "group", "set", "c-db", "stickiness=50", "failback=window",
               "window_start_hour=22", "window_end_hour=2").code == 0  # fmt: skip
    added = cli(cluster, "group", "add-resource", "c-db", "sleeper", "--kind", "process",
                "--param", f"command={SLEEPER}", "--monitor-interval-ms", "2000")  # fmt: skip
    assert added.code == 0, added.err
    db = cli(cluster, "group", "status", "c-db", "--json").json()
    assert (db["spec"]["stickiness"], db["spec"]["failback"]) == (50, "WINDOW")
    (sleeper,) = db["spec"]["resources"]
    assert sleeper["params"] == {"command": SLEEPER} and sleeper["monitor_interval_ms"] == 2000
    refused = cli(cluster, "group", "add-resource", "c-web", "x", "--kind", "process")
    assert refused.code == 1
    assert refused.err == ("raftcluster: error: group 'c-web' is ONLINE: its resources "
                           "change only offline\n")  # fmt: skip
    assert cli(cluster, "group", "remove-resource", "c-db", "sleeper").code == 0
    assert cli(cluster, "group", "status", "c-db", "--json").json()["spec"]["resources"] == []

    # a move to node 3 happens; then failback (immediate, node 2 preferred) moves it back
    before = synchronously(cluster, revision)
    moved = cli(cluster, "group", "move", "c-web", "--to", "3")
    assert moved.code == 0 and "group c-web moving to node 3" in moved.out, moved.err
    there = synchronously(cluster, lambda c: event_after(
        c, before, online_on("c-web", 3), "c-web ONLINE on node 3"))  # fmt: skip
    synchronously(cluster, lambda c: event_after(
        c, there.revision, placed("c-web", "failback"), "c-web's failback"))  # fmt: skip
    synchronously(cluster, lambda c: group_state(c, "c-web", GroupState.ONLINE, owner=2))
    assert cli(cluster, "group", "online", "c-db").code == 0
    assert cli(cluster, "group", "status", "c-db", "--json").json()["online"] is True
    synchronously(cluster, lambda c: group_state(c, "c-db", GroupState.ONLINE))
    assert cli(cluster, "group", "offline", "c-db").code == 0
    synchronously(cluster, lambda c: group_state(c, "c-db", GroupState.OFFLINE))

    assert cli(cluster, "group", "create", "c-gone", "--offline").code == 0
    assert cli(cluster, "group", "delete", "c-gone").code == 0
    missing = cli(cluster, "group", "status", "c-gone")
    assert missing.code == 1 and missing.out == ""
    assert missing.err.startswith("raftcluster: error: no group named 'c-gone'")

    unknown = cli(cluster, "group", "set", "c-db", "sticky=1")
    assert unknown.code == 1 and "unknown field" in unknown.err and "stickiness" in unknown.err
    bad = cli(cluster, "group", "create", "c-bad", "--priority", "high")
    assert bad.code == 1 and "priority: 'high' is not an integer" in bad.err


def test_simulate_changes_nothing(cluster: ClusterFile) -> None:
    assert cli(cluster, "group", "create", "s-app", "--preferred", "1").code == 0
    synchronously(cluster, lambda c: group_state(c, "s-app", GroupState.ONLINE, owner=1))
    before = synchronously(cluster, settled)
    asked = cli(cluster, "group", "simulate", "--node-down", "1", "--json")
    text = cli(cluster, "group", "simulate", "--move", "s-app", "--to", "3")
    drained = cli(cluster, "group", "simulate", "--drain", "1", "--json")
    after = synchronously(cluster, lambda c: events_after(c, before))
    owner = synchronously(cluster, lambda c: c.groups.get("s-app")).owner
    assert asked.code == 0, asked.err
    decision = next(d for d in asked.json()["decisions"] if d["group"] == "s-app")
    assert decision["rule"] == "failover" and decision["node"] in (2, 3)
    assert asked.json()["if"] == "node 1 went down"
    assert text.out.startswith("if s-app moved to node 3 (nothing was changed):"), text.err
    assert any(line.split()[:3] == ["s-app", "3", "move"] for line in text.out.splitlines())
    decision = next(d for d in drained.json()["decisions"] if d["group"] == "s-app")
    assert decision["rule"] == "drain" and decision["node"] in (2, 3)
    # nothing changed: no event of what the commands simulate (s-app placed or stopped,
    # node 1 down or draining), and s-app still where it was
    assert not about(after, "s-app") and not [e for e in after if isinstance(e, NodeChanged)]
    assert owner == 1


def test_apply_is_idempotent_and_prunes_only_when_asked(
    cluster: ClusterFile, tmp_path: Path
) -> None:
    assert cli(cluster, "group", "create", "a-old", "--offline").code == 0
    file = tmp_path / "groups.toml"
    file.write_text(
        '[[groups]]\nname = "a-web"\npreferred_owners = [3]\n'
        '[[groups.resources]]\nname = "http"\nkind = "process"\n'
        f'params = {{ command = "{SLEEPER}" }}\n'
        '[[groups]]\nname = "a-batch"\nonline = false\n'
    )
    dry = cli(cluster, "group", "apply", str(file), "--dry-run")
    assert "would be created: a-web, a-batch" in dry.out and "nothing was written" in dry.out
    first = cli(cluster, "group", "apply", str(file), "--json")
    assert first.code == 0, first.err
    assert first.json()["created"] == ["a-web", "a-batch"] and first.json()["writes"] == 2
    assert "a-old" in first.json()["left_alone"]
    synchronously(cluster, lambda c: group_state(c, "a-web", GroupState.ONLINE, owner=3))
    before = synchronously(cluster, settled)
    again = cli(cluster, "group", "apply", str(file), "--json").json()
    assert (again["unchanged"], again["writes"], again["created"]) == (
        ["a-web", "a-batch"],
        0,
        [],
    )
    text = cli(cluster, "group", "apply", str(file)).out
    assert "left alone (in the cluster, not in the file; --prune deletes them):" in text

    # --prune deletes the offline groups the file does not name; a running one is
    # refused before anything is written
    busy = cli(cluster, "group", "apply", str(file), "--prune")
    assert busy.code == 1 and "--prune would delete groups that are not offline" in busy.err
    # no write at all: no event about the file's groups or a-old since the cluster settled
    after = synchronously(cluster, lambda c: events_after(c, before))
    assert not about(after, "a-web", "a-batch", "a-old"), after
    with raftcluster.connect_sync(cluster, options=PATIENT) as client:
        others = [
            g for g in client.groups.list() if g.spec.name not in ("a-old", "a-web", "a-batch")
        ]
    # every other group as it is (groups of the other tests still run): only a-old goes
    file.write_text(file.read_text() + "".join(toml_of(g) for g in others))
    pruned = cli(cluster, "group", "apply", str(file), "--prune", "--json")
    assert pruned.code == 0, pruned.err
    assert (pruned.json()["deleted"], pruned.json()["updated"]) == (["a-old"], [])
    assert pruned.json()["writes"] == 1
    assert "a-old" not in _states(cluster)


def toml_of(info: GroupInfo) -> str:
    """A group file's entry for `info`, as the cluster has it."""
    spec = info.spec
    lines = ["[[groups]]", f"online = {str(info.online).lower()}"]
    for field in attrs.fields(GroupSpec):
        value = getattr(spec, field.name)
        if field.name == "resources":
            continue
        if isinstance(value, Failback):
            lines.append(f'{field.name} = "{value.name.lower()}"')
        else:
            lines.append(f"{field.name} = {json.dumps(value)}")
    for r in spec.resources:
        lines.append("[[groups.resources]]")
        for field in attrs.fields(ResourceSpec):
            value = getattr(r, field.name)
            if field.name == "params":
                value = dict(value)
                lines.append(
                    "params = {"
                    + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
                    + "}"
                )
            else:
                lines.append(f"{field.name} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _states(cluster: ClusterFile) -> dict[str, str]:
    listed = cli(cluster, "group", "status", "--json").json()["groups"]
    return {g["spec"]["name"]: g["state"] for g in listed}


def test_node_commands(cluster: ClusterFile) -> None:
    listed = cli(cluster, "node", "status", "--json")
    assert listed.code == 0, listed.err
    assert [(n["node"], n["state"]) for n in listed.json()["nodes"]] == [
        (1, "UP"), (2, "UP"), (3, "UP")]  # fmt: skip
    table = cli(cluster, "node", "status").out.splitlines()
    assert table[0].split() == ["NODE", "STATE", "INCARNATION", "SINCE", "GROUPS"]
    drained = cli(cluster, "node", "drain", "3", "--json")
    assert drained.code == 0 and drained.json()["ok"]
    assert cli(cluster, "node", "status", "3", "--json").json()["node"]["state"] == "DRAINING"
    resumed = cli(cluster, "node", "resume", "3", "--no-failback")
    assert resumed.code == 0 and resumed.out.startswith("OK: node 3 resumed (groups revision")
    one = cli(cluster, "node", "status", "3")
    assert one.out.startswith("node 3: UP since ")
    missing = cli(cluster, "node", "drain", "9")
    assert missing.code == 1
    assert "node 9 is not a member of the cluster service" in missing.err


def test_events_print_and_follow(cluster: ClusterFile) -> None:
    created = cli(cluster, "group", "create", "e-one", "--offline", "--json")
    assert created.code == 0, created.err
    everything = cli(cluster, "events", "--json")
    assert everything.code == 0, everything.err
    events = everything.lines()
    revisions = [e["revision"] for e in events]
    assert revisions == list(range(1, len(events) + 1))  # every event, once, in order
    joined = events[:3]  # the nodes joined the cluster service by themselves, first
    assert {e["node"] for e in joined} == {1, 2, 3}
    assert joined[0] == {"type": "NodeChanged", "revision": 1, "node": joined[0]["node"],
                         "state": "UP", "at_ms": joined[0]["at_ms"], "removed": False}  # fmt: skip
    assert all((e["type"], e["state"]) == ("NodeChanged", "UP") for e in joined)
    # e-one's events: defined, then placed nowhere (offline), up to the create's revision
    defined = next(e for e in events if e["type"] == "GroupDefined"
                   and e["spec"]["name"] == "e-one")  # fmt: skip
    last = created.json()["revision"]
    text = cli(cluster, "events", "--from", str(defined["revision"])).out.splitlines()
    assert len(text) >= last - defined["revision"] + 1
    for rev, line in zip(range(defined["revision"], last + 1), text, strict=False):
        assert line.startswith(f"rev {rev}  group e-one  "), text

    command = [sys.executable, "-m", "raftcluster", "events", "--follow", "--json",
               "--from", str(last), "--cluster", str(cluster.path)]  # fmt: skip
    follower = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["revision"] == last
        assert cli(cluster, "group", "create", "e-two", "--offline").code == 0
        # in order, each once, until e-two's (the nodes' own events may come between)
        expected = last + 1
        while (new := json.loads(follower.stdout.readline()))["type"] != "GroupDefined":
            assert new["revision"] == expected, new
            expected += 1
        assert (new["revision"], new["spec"]["name"]) == (expected, "e-two")
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=WAIT_S) == 130
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
