"""User parts on real nodes in this process (real sockets, real files): named in the
cluster file, loaded before the node starts, served to a client that only imports the
module; and nodes whose part sets differ refuse each other at the handshake."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import attrs
import pytest
import trio

from raftcluster.client.connect import connect
from raftcluster.config import ClusterFile, ConfigError, init_cluster, load_cluster, node_settings
from raftcluster.node import run
from raftcluster.transport.config import Address
from raftcluster.transport.errors import HandshakeFailed, RefusalReason
from raftcluster.transport.transport import open_and_dial
from raftcluster.transport.wire import NONCE_BYTES, PROTOCOL_VERSION, Hello, PeerKind
from statemachine.cluster import ClusterState
from statemachine.errors import InvalidArgument, Rejected, UnknownEntry
from statemachine.sessions import SessionRequest
from tests.user_parts.counter import BELOW_ZERO, COUNTER, COUNTER_V2, Add, ReadTotal, Total

FAST = {"timing.election_timeout_ms": 200, "timing.heartbeat_interval_ms": 20}
PARTS = '["tests.user_parts.counter:COUNTER"]'


def with_parts(cluster: ClusterFile, parts: str) -> ClusterFile:
    """The cluster file with `[state] parts = <parts>` (TOML text), loaded again."""
    text = cluster.path.read_text()
    assert "\n[state]\n" in text
    cluster.path.write_text(text.replace("\n[state]\n", f"\n[state]\nparts = {parts}\n"))
    return load_cluster(cluster.path)


def test_the_cluster_file_names_parts_and_the_node_settings_load_them(tmp_path: Path) -> None:
    cluster = with_parts(init_cluster(tmp_path, nodes=1), PARTS)
    assert cluster.parts == ("tests.user_parts.counter:COUNTER",)
    settings = node_settings(cluster, 1)
    assert settings.parts == (COUNTER,)
    assert settings.new_state().part_names == ("counter", "groups", "kv", "sessions")
    assert settings.transport_config().parts == settings.part_set()
    assert settings.part_set() != attrs.evolve(settings, parts=()).part_set()


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ('"x:Y"', "state.parts: must be an array, not a string"),
        ("[1]", 'state.parts: each part is a "module:NAME" string, not an integer'),
        ('["counter"]', "state.parts: counter: not an import path: expected 'module:NAME'"),
        ('["a:B", "a:B"]', "state.parts: 'a:B' appears twice"),
    ],
)
def test_the_loader_checks_the_form_of_each_path(tmp_path: Path, parts: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        with_parts(init_cluster(tmp_path, nodes=1), parts)
    assert caught.value.line > 0


def test_a_path_that_does_not_load_is_a_config_error_before_the_node_starts(
    tmp_path: Path,
) -> None:
    cluster = with_parts(init_cluster(tmp_path, nodes=1), '["tests.user_parts.nothing:X"]')
    with pytest.raises(ConfigError) as caught:
        node_settings(cluster, 1)
    assert caught.value.key == "state.parts"
    assert str(caught.value) == (
        f"{cluster.path}: state.parts: tests.user_parts.nothing:X: no module named "
        "'tests.user_parts.nothing' (is it installed, or on PYTHONPATH?)"
    )
    assert not (tmp_path / "node-1").exists()  # nothing started, nothing written


def test_node_settings_refuse_parts_that_cannot_run_together(tmp_path: Path) -> None:
    settings = node_settings(init_cluster(tmp_path, nodes=1), 1)
    with pytest.raises(InvalidArgument, match="a part named 'counter' exists"):
        attrs.evolve(settings, parts=(COUNTER, COUNTER_V2))
    with pytest.raises(InvalidArgument, match="is not a PartSpec"):
        attrs.evolve(settings, parts=("tests.user_parts.counter:COUNTER",))  # type: ignore[arg-type]


async def test_a_client_runs_a_user_command_and_query_on_embedded_nodes(tmp_path: Path) -> None:
    # The embedding API: the parts go in the node's settings, no subclass, no override.
    cluster = init_cluster(tmp_path, nodes=2, settings=FAST)
    settings = [attrs.evolve(node_settings(cluster, i), parts=[COUNTER]) for i in (1, 2)]
    with trio.fail_after(30):
        async with run(settings[0]), run(settings[1]), connect(cluster) as client:
            assert await client.write(Add(5)) == Total(5)
            assert await client.read(ReadTotal()) == Total(5)
            with pytest.raises(Rejected, match="cannot go below 0") as refused:
                await client.write(Add(-9))
            assert (refused.value.code, refused.value.detail) == (BELOW_ZERO, 5)
            assert await client.read(ReadTotal(), consistency="stale") in (Total(5), Total(0))


async def test_a_node_that_cannot_apply_a_committed_entry_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A node restarted without the part its log has entries of (the part was taken out of
    # its settings) replays to that entry and stops there, naming it, instead of applying
    # it as a failure that the other replicas did not answer.
    cluster = init_cluster(tmp_path, nodes=1, settings=FAST)
    stock = node_settings(cluster, 1)
    with trio.fail_after(30):
        async with run(attrs.evolve(stock, parts=[COUNTER])), connect(cluster) as client:
            assert await client.write(Add(3)) == Total(3)
        with pytest.raises(UnknownEntry) as caught:
            async with run(stock):
                await trio.sleep(30)
    error = caught.value
    assert error.tag == SessionRequest.TAG and error.index > 1
    assert error.reason == "no part handles the command Add"
    assert error.parts == stock.part_set().describe()
    assert f"node 1: stopping: committed entry {error.index} (tag {error.tag})" in caplog.text
    # With the part back, the node applies its whole log again.
    async with run(attrs.evolve(stock, parts=[COUNTER])), connect(cluster) as client:
        assert await client.read(ReadTotal()) == Total(3)


async def test_nodes_with_different_part_sets_refuse_each_other(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = init_cluster(tmp_path, nodes=2, settings=FAST)
    one = attrs.evolve(node_settings(cluster, 1), parts=[COUNTER])
    two = attrs.evolve(node_settings(cluster, 2), parts=[COUNTER_V2])
    caplog.set_level(logging.WARNING, logger="raftcluster.transport")
    with trio.fail_after(30):
        async with run(one) as node_1, run(two) as node_2:
            # Node 1 dials node 2 (the lower id dials); node 2 refuses it, both log why.
            dialer = "part 'counter' is v1 on node 1, v2 on node 2"
            acceptor = "part 'counter' is v2 on node 2, v1 on node 1"
            while not (dialer in caplog.text and acceptor in caplog.text):
                await trio.sleep(0.05)
            await trio.sleep(1.0)  # five election timeouts: neither can win a vote
            for node in (node_1, node_2):  # nothing past the founding configuration (index 1)
                status = node.status()
                assert (status.leader, status.commit_index) == (0, 1) and status.role != "leader"
            link = node_1.transport.stats().peers[0].links[0]
            assert "runs other state machine parts" in link.last_error
    refused = [r.getMessage() for r in caplog.records if "part_set" in r.getMessage()]
    assert any(m.startswith("node 2: refused a connection from") for m in refused)
    assert any(m.startswith("node 1: cannot connect link 0 to node 2") for m in refused)
    assert any("handshake refused by peer: part_set: node 2 runs" in m for m in refused)


async def test_only_a_holder_of_the_secret_learns_of_the_part_set(tmp_path: Path) -> None:
    # A dialer with other parts and a wrong secret is refused for its proof, before the
    # acceptor says anything of its parts; with the right secret, for its parts.
    cluster = init_cluster(tmp_path, nodes=2, settings=FAST)
    settings = node_settings(cluster, 2)
    other = ClusterState(parts=[COUNTER]).part_set
    with trio.fail_after(30):
        async with run(settings) as node:
            address = Address.parse(node.addresses[0])

            async def dial(secret: bytes) -> HandshakeFailed:
                hello = Hello(
                    version=PROTOCOL_VERSION, cluster_id=cluster.cluster_id, kind=PeerKind.NODE,
                    sender_id=1, expected_id=2, link=0, incarnation=1,
                    nonce=secrets.token_bytes(NONCE_BYTES), parts=other.marks,
                )  # fmt: skip
                with pytest.raises(HandshakeFailed) as caught:
                    await open_and_dial(address, hello, secret, settings.limits, None, other)
                return caught.value

            wrong = await dial(b"w" * 32)
            assert wrong.reason == RefusalReason.BAD_PROOF and "part" not in str(wrong)
            right = await dial(cluster.secret)
            assert right.reason == RefusalReason.PART_SET and right.by_peer
            assert right.detail == (
                "node 2 runs other state machine parts than node 1: "
                "node 2 has no part 'counter' (node 1 runs v1)"
            )
