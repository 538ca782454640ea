"""The group file: parsing (unknown keys, wrong types, a good file) and the diff against a
cluster's groups (`plan_apply`), without a cluster: the plan is a pure function."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from raftcluster.cli.node import with_run_word
from raftcluster.client.group_file import (
    GroupFileError,
    load_group_file,
    parse_group_file,
    plan_apply,
)
from statemachine.groups.messages import (
    CreateGroup,
    Decision,
    DeleteGroup,
    Failback,
    GroupInfo,
    GroupSpec,
    GroupState,
    ResourceSpec,
    SetGroupOffline,
    UpdateGroup,
)

GOOD = """
[[groups]]
name = "web"
preferred_owners = [1, 2]
failback = "immediate"
stickiness = 100
start_after = ["db"]

[[groups.resources]]
name = "http"
kind = "process"
params = { command = "python3 -m http.server 8080", health = "http://127.0.0.1:8080/" }
monitor_interval_ms = 2000

[[groups]]
name = "db"
online = false
possible_owners = [2, 3]
"""


def test_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "groups.toml"
    path.write_text(GOOD)
    file = load_group_file(path)
    assert file.path == str(path)
    web, db = file.groups
    assert (web.spec.name, web.online, db.spec.name, db.online) == ("web", True, "db", False)
    assert web.spec.preferred_owners == (1, 2) and web.spec.failback == Failback.IMMEDIATE
    assert web.spec.start_after == ("db",) and web.spec.stickiness == 100
    (http,) = web.spec.resources
    assert http == ResourceSpec(
        "http",
        "process",
        (("command", "python3 -m http.server 8080"), ("health", "http://127.0.0.1:8080/")),
        monitor_interval_ms=2000,
    )
    assert db.spec.possible_owners == (2, 3) and db.spec.resources == ()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('stickiness = 100', 'stickyness = 100'),
         "groups[web]: unknown key 'stickyness' (the known keys: name, online, "
         "preferred_owners,"),
        (('monitor_interval_ms = 2000', 'monitor_ms = 2000'),
         "groups[web].resources[http]: unknown key 'monitor_ms' (the known keys: name, kind, "),
        (('[[groups]]\nname = "web"', 'version = 1\n[[groups]]\nname = "web"'),
         "unknown key 'version' (the known keys: groups)"),
        (('stickiness = 100', 'stickiness = "100"'),
         "groups[web]: stickiness: '100' (a string) is not an integer"),
        (('preferred_owners = [1, 2]', 'preferred_owners = 1'),
         "groups[web]: preferred_owners: 1 (an integer) is not a list of node ids"),
        (('failback = "immediate"', 'failback = "sometimes"'),
         "groups[web]: failback: 'sometimes' is not one of never, immediate, window, stable"),
        (('online = false', 'online = "no"'),
         "groups[db]: online: 'no' (a string) is not true or false"),
        (('health = "http://127.0.0.1:8080/"', 'port = 8080'),
         "groups[web].resources[http]: params.port: 8080 (an integer): parameter values must "
         'be strings (write port = "8080")'),
        (('kind = "process"', ''), "groups[web].resources[http]: 'kind' is required"),
        (('name = "db"', 'name = "web"'), "groups[web]: the group is given twice"),
        (('stickiness = 100', 'stickiness = -1'), "groups[web]: GroupSpec.stickiness"),
        (('name = "db"', 'name = "no spaces"'), "groups[no spaces]: GroupSpec.name"),
        (('[[groups]]\nname = "db"', '[groups]'), "not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_file_names_the_group_the_key_and_why(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(GroupFileError) as caught:
        parse_group_file(GOOD.replace(old, new, 1), "g.toml")
    assert str(caught.value).startswith("g.toml: ") and expected in str(caught.value), caught.value


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(GroupFileError, match="cannot read it"):
        load_group_file(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(GroupFileError, match="not UTF-8"):
        load_group_file(tmp_path / "bad.toml")


def info(spec: GroupSpec, state: GroupState = GroupState.OFFLINE, online: bool = True) -> GroupInfo:
    """A group as the cluster lists it (owner, epoch and decision do not matter here)."""
    return GroupInfo(spec, state, 0, 0, online, 0, (), Decision(spec.name, 0, "wait", ""))


def test_the_plan_creates_updates_and_leaves_alone() -> None:
    file = parse_group_file(GOOD, "g.toml")
    web, db = file.groups
    nothing = plan_apply(file, [], prune=False, at_ms=5)
    assert nothing.commands == (CreateGroup(web.spec, True, 5), CreateGroup(db.spec, False, 5))
    assert nothing.created == ("web", "db")

    same = [info(web.spec, GroupState.STARTING), info(db.spec, online=False)]
    again = plan_apply(file, same, prune=False, at_ms=6)
    assert (again.commands, again.unchanged, again.updated) == ((), ("web", "db"), ())

    other = info(attrs.evolve(db.spec, name="old"))
    changed = [info(attrs.evolve(web.spec, stickiness=0), GroupState.ONLINE), info(db.spec), other]
    plan = plan_apply(file, changed, prune=False, at_ms=7)
    assert plan.commands == (UpdateGroup(web.spec, 7), SetGroupOffline("db", 7))
    assert (plan.updated, plan.left_alone, plan.deleted) == (("web", "db"), ("old",), ())

    pruned = plan_apply(file, changed, prune=True, at_ms=7)
    assert pruned.commands[-1] == DeleteGroup("old", 7) and pruned.deleted == ("old",)
    assert pruned.left_alone == ()


def test_the_plan_refuses_before_writing_what_the_cluster_would_refuse() -> None:
    file = parse_group_file(GOOD, "g.toml")
    web, db = file.groups
    running = info(attrs.evolve(web.spec, resources=()), GroupState.ONLINE)
    with pytest.raises(GroupFileError, match=r"groups\[web\]: its resources differ .* ONLINE"):
        plan_apply(file, [running], prune=False, at_ms=1)
    stopped = info(attrs.evolve(web.spec, resources=()), GroupState.OFFLINE)
    assert plan_apply(file, [stopped], prune=False, at_ms=1).updated == ("web",)
    busy = info(attrs.evolve(db.spec, name="old"), GroupState.STARTING)
    with pytest.raises(GroupFileError, match=r"--prune would delete .*: old \(STARTING\)"):
        plan_apply(file, [busy], prune=True, at_ms=1)


def test_the_older_node_form_still_runs_a_node() -> None:
    assert with_run_word(["node", "--config", "c", "--id", "1"]) == [
        "node", "run", "--config", "c", "--id", "1"]  # fmt: skip
    for kept in (["node", "run", "--config", "c"], ["node", "status", "2"], ["node", "--help"],
                 ["group", "--json"], ["node"]):  # fmt: skip
        assert with_run_word(kept) == kept
