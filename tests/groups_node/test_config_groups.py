"""The [groups] section of cluster.toml: accepted settings, and the timing rule refused
with the section, the key, the line and the minimum."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from raftcluster.config import (
    ConfigError,
    group_timing,
    init_cluster,
    load_cluster,
    node_settings,
)
from raftcluster.groups.timing import GroupTiming


def write(tmp_path: Path, groups: str, timing: str = "") -> Path:
    cluster = init_cluster(tmp_path, nodes=3)
    text = cluster.path.read_text()
    text = text.replace("[timing]\n", f"[timing]\n{timing}\n").replace(
        "[groups]\n", f"[groups]\n{groups}\n"
    )
    cluster.path.write_text(text)
    return cluster.path


def test_a_file_that_sets_nothing_runs_the_defaults(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=3)
    assert "[groups]\n" in cluster.path.read_text()
    assert group_timing(cluster) == GroupTiming()  # [timing]'s election timeout is 500 too


def test_accepted_settings_reach_the_group_timing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fence_after_ms = 3000\nnode_down_after_ms = 6000\nkill_ms = 500\nmax_drift_ppm = 0\n"
        "heartbeat_interval_ms = 500\ntick_interval_ms = 2000\nreport_retry_ms = 700",
        "election_timeout_ms = 900",
    )
    timing = group_timing(load_cluster(path))
    # The minimum: 3000 + 900 + 500 (no drift) + 500 = 4900.
    assert timing.min_node_down_after_ms() == 4_900
    assert timing == GroupTiming(
        heartbeat_interval_ms=500, fence_after_ms=3_000, node_down_after_ms=6_000,
        election_timeout_ms=900, kill_ms=500, max_drift_ppm=0, tick_interval_ms=2_000,
        report_retry_ms=700,
    )  # fmt: skip


@pytest.mark.parametrize("down, accepted", [(4_899, False), (4_900, True), (4_901, True)])
def test_node_down_after_at_the_rules_boundary(tmp_path: Path, down: int, accepted: bool) -> None:
    groups = (
        "fence_after_ms = 3000\nkill_ms = 500\nmax_drift_ppm = 0\nheartbeat_interval_ms = 500\n"
        f"node_down_after_ms = {down}"
    )
    path = write(tmp_path, groups, "election_timeout_ms = 900")
    if accepted:
        assert load_cluster(path).groups.node_down_after_ms == down
        return
    with pytest.raises(ConfigError) as refused:
        load_cluster(path)
    error = refused.value
    assert error.key == "groups.node_down_after_ms"
    assert path.read_text().splitlines()[error.line - 1] == f"node_down_after_ms = {down}"
    assert f"{down} is below the minimum 4900" in str(error)
    assert "election_timeout_ms 900" in str(error) and "fence_after_ms 3000" in str(error)


def test_a_longer_election_timeout_raises_the_minimum(tmp_path: Path) -> None:
    # Defaults elsewhere: (500 + E + 100) x 1.001 / 0.999 + 150 exceeds 1300 from
    # E = 548 on (1148 x 1001000 / 999000 = 1150.29.., up to 1151, + 150 = 1301);
    # at E = 5000: 5600 x ... = 5611.21.., up to 5612, + 150 = 5762.
    path = write(tmp_path, "node_down_after_ms = 1300", "election_timeout_ms = 5000")
    with pytest.raises(ConfigError, match=r"1300 is below the minimum 5762"):
        load_cluster(path)
    path = write(tmp_path / "edge", "node_down_after_ms = 1300", "election_timeout_ms = 548")
    with pytest.raises(ConfigError, match=r"1300 is below the minimum 1301"):
        load_cluster(path)
    path = write(tmp_path / "ok", "node_down_after_ms = 1300", "election_timeout_ms = 547")
    assert load_cluster(path).groups.node_down_after_ms == 1_300
    # Unset (0), it is the minimum rounded up to 100 ms, whatever the election timeout.
    assert load_cluster(write(tmp_path / "auto", "", "")).groups.node_down_after_ms == 1_300
    path = write(tmp_path / "auto5000", "", "election_timeout_ms = 5000")
    assert load_cluster(path).groups.node_down_after_ms == 5_800


def test_fence_after_must_cover_two_heartbeats(tmp_path: Path) -> None:
    path = write(tmp_path, "heartbeat_interval_ms = 3000\nnode_down_after_ms = 60000")
    with pytest.raises(ConfigError) as refused:
        load_cluster(path)
    assert refused.value.key == "groups.fence_after_ms"
    assert "twice [groups] heartbeat_interval_ms (3000)" in str(refused.value)


def test_an_unknown_groups_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "fence_ms = 3000")
    with pytest.raises(ConfigError, match=re.escape("groups.fence_ms: unknown key")):
        load_cluster(path)


def with_fencing(tmp_path: Path, lines: str) -> Path:
    cluster = init_cluster(tmp_path, nodes=3)
    text = cluster.path.read_text().replace("[fencing]\n", f"[fencing]\n{lines}\n")
    cluster.path.write_text(text)
    return cluster.path


def test_the_fencing_agent_reaches_the_node_settings(tmp_path: Path) -> None:
    path = with_fencing(tmp_path, "command = \"/usr/sbin/fence_x --plug 'a b'\"\ntimeout_ms = 500")
    groups = node_settings(load_cluster(path), 2).groups
    assert groups is not None
    assert groups.fence_command == ("/usr/sbin/fence_x", "--plug", "a b")
    assert groups.fence_timeout_ms == 500
    unset = node_settings(load_cluster(with_fencing(tmp_path / "none", "")), 2).groups
    assert unset is not None and unset.fence_command == ()


@pytest.mark.parametrize(
    ("lines", "key", "reason"),
    [
        ('command = "fence \'unterminated"', "fencing.command", "No closing quotation"),
        ("command = 3", "fencing.command", "must be"),
        ("timeout_ms = 0", "fencing.timeout_ms", "0 is outside 1..3600000"),
        ("comand = \"x\"", "fencing.comand", "unknown key"),
    ],
)  # fmt: skip
def test_a_bad_fencing_table_names_its_key(
    tmp_path: Path, lines: str, key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_cluster(with_fencing(tmp_path, lines))
    assert caught.value.key == key and reason in str(caught.value), caught.value
