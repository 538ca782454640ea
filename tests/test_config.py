"""The cluster file: `init` writes what the loader reads; every bad file is refused with
the file, the line and the key."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from raftcluster.config import (
    ALL_KEYS,
    ConfigError,
    init_cluster,
    load_cluster,
    node_settings,
    read_secret,
)
from raftcluster.config.loader import Locator
from raftcluster.config.schema import GROUP_KEYS, LIMIT_KEYS, TIMING_KEYS

ROOT = Path(__file__).resolve().parent.parent


def every_setting() -> dict[str, int | bool]:
    """Every [timing] and [limits] key at its default, written out (not commented)."""
    keys = TIMING_KEYS + LIMIT_KEYS + GROUP_KEYS
    values: dict[str, int | bool] = {k.dotted: k.default for k in keys}  # type: ignore[misc]
    values["cluster.allow_fault_injection"] = False
    return values


def line_of(text: str, line: int) -> str:
    return text.splitlines()[line - 1]


def refuses(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_cluster(path)
    return caught.value


# -- init ------------------------------------------------------------------------------


def test_init_writes_a_file_the_loader_reads_and_a_private_secret(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=3)
    assert cluster.path == tmp_path / "cluster.toml"
    assert cluster.node_ids == (1, 2, 3)
    ports = [n.addresses[0].port for n in cluster.nodes]
    assert len(set(ports)) == 3 and all(n.addresses[0].host == "127.0.0.1" for n in cluster.nodes)
    assert [n.data_dir for n in cluster.nodes] == [tmp_path / f"node-{i}" for i in (1, 2, 3)]
    secret = tmp_path / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_bytes()) == 32 and cluster.secret == secret.read_bytes()
    assert load_cluster(tmp_path) == cluster  # a directory means its cluster.toml
    # Every setting is in the file, commented out with its default.
    text = cluster.path.read_text()
    for key in TIMING_KEYS + LIMIT_KEYS + GROUP_KEYS:
        assert f"# {key.name} = {key.default}\n" in text
    settings = node_settings(cluster, 2)
    assert settings.node_id == 2 and settings.replica.raft.peers == (1, 2, 3)
    assert set(settings.peers) == {1, 3} and settings.data_dir == tmp_path / "node-2"


def test_init_writes_the_settings_it_is_given(tmp_path: Path) -> None:
    cluster = init_cluster(
        tmp_path,
        nodes=1,
        settings={
            "timing.election_timeout_ms": 400,
            "timing.commit_notice_delay_ms": 0,
            "cluster.allow_fault_injection": True,
        },
    )
    assert cluster.timing.election_timeout_ms == 400 and cluster.allow_fault_injection
    raft = node_settings(cluster, 1).replica.raft
    assert raft.election_timeout_ms == 400 and raft.commit_notice_delay_ms == 0
    with pytest.raises(ConfigError, match="timing.election_timeout"):
        init_cluster(tmp_path / "other", settings={"timing.election_timeout": 1})


def test_init_refuses_to_overwrite_a_cluster_unless_forced(tmp_path: Path) -> None:
    first = init_cluster(tmp_path, nodes=3)
    data = tmp_path / "node-1"
    assert (data / "BOOTSTRAP").is_file()  # prepared to found the cluster
    (data / "IDENTITY").write_text("{}")
    with pytest.raises(ConfigError, match="--force"):
        init_cluster(tmp_path, nodes=3)
    assert load_cluster(tmp_path) == first and data.exists()
    second = init_cluster(tmp_path, nodes=2, force=True)
    assert second.cluster_id != first.cluster_id and second.secret != first.secret
    # The replaced cluster's data is gone; the directory is prepared for the new one.
    assert not (data / "IDENTITY").exists() and (data / "BOOTSTRAP").is_file()
    assert str(second.cluster_id) in (data / "BOOTSTRAP").read_text()


def test_init_with_a_base_port_uses_consecutive_ports_and_refuses_a_taken_one(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} is already in use"):
            init_cluster(tmp_path, nodes=1, base_port=port)
    free = init_cluster(tmp_path / "free", nodes=1)  # a port the system just found free
    base = free.nodes[0].addresses[0].port
    cluster = init_cluster(tmp_path, nodes=1, base_port=base)
    assert cluster.nodes[0].addresses[0].port == base
    with pytest.raises(ConfigError, match="1..65535"):
        init_cluster(tmp_path / "high", nodes=3, base_port=65534)


# -- the loader: every key's problems point at the key's line ---------------------------


@pytest.mark.parametrize("key", TIMING_KEYS + LIMIT_KEYS + GROUP_KEYS, ids=lambda k: k.dotted)
def test_an_out_of_range_setting_names_its_key_and_line(tmp_path: Path, key: object) -> None:
    cluster = init_cluster(tmp_path, nodes=3, settings=every_setting())
    text = cluster.path.read_text()
    name, hi = key.name, key.hi  # type: ignore[attr-defined]
    # Only in the key's own section: [timing] and [groups] both have heartbeat_interval_ms.
    start = text.index(f"[{key.section}]\n")  # type: ignore[attr-defined]
    section = re.sub(rf"^{name} = .*$", f"{name} = {hi + 1}", text[start:], count=1, flags=re.M)
    text = text[:start] + section
    cluster.path.write_text(text)
    error = refuses(cluster.path)
    assert error.key == key.dotted  # type: ignore[attr-defined]
    assert line_of(text, error.line).startswith(f"{name} = ")
    assert f"{hi + 1} is outside" in str(error) and str(cluster.path) in str(error)


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("election_timeout_ms = 500", "election_timeout_ms = \"1s\"",
         "timing.election_timeout_ms", "must be an integer, not a string"),
        ("election_timeout_ms = 500", "election_timeout_ms = true",
         "timing.election_timeout_ms", "must be an integer"),
        ("election_timeout_ms = 500", "election_timeout_ms = 150",
         "timing.election_timeout_ms", "at least twice heartbeat_interval_ms (100)"),
        ("idle_timeout_ms = 1500", "idle_timeout_ms = 400",
         "timing.idle_timeout_ms", "must exceed twice keepalive_interval_ms (200)"),
        ("allow_fault_injection = false", "allow_fault_injection = 1",
         "cluster.allow_fault_injection", "must be true or false"),
        ("max_pending_requests = 4096", "max_pending_request = 4096",
         "limits.max_pending_request", "unknown key; limits takes"),
        ("[limits]", "[limit]", "limit", "unknown section"),
        ("id = 2", "id = 1", "nodes[1].id", "node id 1 appears twice"),
        ("id = 2", "id = 0", "nodes[1].id", "0 is outside 1.."),
        ('data_dir = "node-2"', 'data_dir = "node-1"', "nodes[1].data_dir",
         "node 1's data directory too"),
        ('data_dir = "node-2"', 'datadir = "node-2"', "nodes[1].datadir", "unknown key"),
    ],
)  # fmt: skip
def test_a_bad_value_names_its_key_and_line(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    cluster = init_cluster(tmp_path, nodes=3, settings=every_setting())
    text = cluster.path.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    cluster.path.write_text(text)
    error = refuses(cluster.path)
    assert error.key == key and reason in error.reason, error
    assert new.split("=")[0].strip(" []") in line_of(text, error.line)


def test_bad_addresses_are_refused_with_their_line(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=2)
    text = cluster.path.read_text()
    first, second = (str(n.addresses[0]) for n in cluster.nodes)
    cases = {
        "127.0.0.1:99999": "outside 0..65535",
        "127.0.0.1": "is not host:port",
        "127.0.0.1:0": "a fixed port",
        first: f"{first} is node 1's address too",
    }
    for bad, reason in cases.items():
        cluster.path.write_text(text.replace(second, bad))
        error = refuses(cluster.path)
        assert error.key == "nodes[1].addresses" and reason in error.reason, error
        assert line_of(text, error.line).startswith("addresses = ")


def test_a_syntax_error_gives_the_line_tomllib_found(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=1)
    lines = cluster.path.read_text().splitlines()
    lines[7] = "id = = 3"
    cluster.path.write_text("\n".join(lines))
    error = refuses(cluster.path)
    assert error.line == 8 and error.key == "" and "not valid TOML" in error.reason
    assert str(error).startswith(f"{cluster.path}:8: ")


def test_missing_pieces_are_named(tmp_path: Path) -> None:
    error = refuses(tmp_path / "nothing.toml")
    assert "no such file" in error.reason and "raftcluster init" in error.reason
    file = tmp_path / "cluster.toml"
    file.write_text("[timing]\n")
    assert refuses(file).key == "cluster"
    file.write_text('[cluster]\nsecret_file = "s"\n')
    error = refuses(file)
    assert (error.key, error.line) == ("cluster.id", 1) and "missing" in error.reason
    file.write_text('[cluster]\nid = "a b"\n')
    assert "letters, digits" in refuses(file).reason
    file.write_text('[cluster]\nid = "ok"\n')
    assert refuses(file).key == "nodes"


# -- the secret file ---------------------------------------------------------------------


def test_an_unusable_secret_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=1)
    secret = cluster.secret_file
    secret_line = next(
        i for i, t in enumerate(cluster.path.read_text().splitlines(), 1) if "secret_file" in t
    )
    os.chmod(secret, 0o644)
    error = refuses(cluster.path)
    assert error.key == "cluster.secret_file" and error.line == secret_line
    assert f"chmod 600 {secret}" in error.reason and "mode 0644" in error.reason
    os.chmod(secret, 0o600)
    secret.write_bytes(b"short")
    assert "holds 5 bytes" in refuses(cluster.path).reason
    secret.unlink()
    error = refuses(cluster.path)
    assert f"{secret}: secret file not found" in error.reason
    with pytest.raises(ConfigError, match="not found"):
        read_secret(secret)


# -- the locator -------------------------------------------------------------------------


def test_the_locator_finds_keys_tables_and_array_tables() -> None:
    text = "\n".join(
        [
            "# a comment with key = 1",  # 1
            "[cluster]",  # 2
            'id = "x"  # trailing',  # 3
            "",  # 4
            "[[nodes]]",  # 5
            "id = 1",  # 6
            "addresses = [",  # 7
            '  "127.0.0.1:1",',  # 8
            "  'x = y'",  # 9
            "]",  # 10
            "[[nodes]]",  # 11
            "id = 2",  # 12
        ]
    )
    where = Locator(text)
    assert where.line(("cluster",)) == 2
    assert where.line(("cluster", "id")) == 3
    assert where.line(("nodes", 0, "addresses")) == 7
    assert where.line(("nodes", 1, "id")) == 12
    assert where.line(("nodes", 1, "data_dir")) == 11  # missing: its table's header
    assert where.line(("nodes",)) == 5
    assert where.line(("timing", "x")) == 0


def test_the_docs_list_every_key_with_its_default() -> None:
    docs = (ROOT / "docs" / "config.md").read_text()
    rows = re.findall(r"^\| `([a-z_.]+)` \| ([^|]+) \|", docs, flags=re.M)
    documented = {name: default.strip() for name, default in rows}
    assert set(documented) == {k.dotted for k in ALL_KEYS}
    for key in ALL_KEYS:
        if isinstance(key.default, bool):
            assert documented[key.dotted] == f"`{str(key.default).lower()}`"
        elif key.default is not None and key.dotted != "cluster.secret_file":
            assert documented[key.dotted] == f"`{key.default}`", key.dotted
