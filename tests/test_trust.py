"""Trust (docs/security.md): client credentials never open a node link, a client connection
carries client requests only, a revoked key is shut out, a read-only key only reads.

Real nodes on real TCP with their real files (cluster.toml, the secrets, the key file)."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from raftcluster.client.connect import connect
from raftcluster.config import (
    ClusterFile,
    ConfigError,
    client_transport_config,
    init_cluster,
    node_settings,
)
from raftcluster.config.client_keys import add_key, read_key_file, revoke_key, write_key_file
from raftcluster.node import run
from raftcluster.node.protocol import GetStatus, NodeStatus, RefuseCode, Refused, Submit
from raftcluster.raft.messages import Heartbeat
from raftcluster.transport import (
    Address,
    AuthenticationFailed,
    HandshakeFailed,
    PeerKind,
    PeerUnreachable,
    RefusalReason,
    connect_rpc,
)
from raftcluster.transport.framing import FrameParser, FrameSealer
from raftcluster.transport.handshake import dial
from raftcluster.transport.wire import (
    MAX_HANDSHAKE_FRAME_BYTES,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    Hello,
    RaftFrame,
)
from statemachine.codec import encode
from statemachine.errors import BadRequest
from statemachine.kv import Put

FAST = {"timing.election_timeout_ms": 200, "timing.heartbeat_interval_ms": 20}


def cluster_of(tmp_path: Path, nodes: int = 1) -> ClusterFile:
    return init_cluster(tmp_path, nodes=nodes, settings=FAST)


def hello(cluster: ClusterFile, kind: PeerKind, sender: int, credential: str = "") -> Hello:
    return Hello(
        version=PROTOCOL_VERSION, cluster_id=cluster.cluster_id, kind=kind, sender_id=sender,
        expected_id=0, link=0, incarnation=7, nonce=secrets.token_bytes(NONCE_BYTES),
        credential=credential,
    )  # fmt: skip


async def handshake(
    address: Address, secret: bytes, message: Hello
) -> tuple[trio.SocketStream, FrameSealer]:
    stream = await trio.open_tcp_stream(address.host, address.port)
    sealer = FrameSealer()
    parser = FrameParser(MAX_HANDSHAKE_FRAME_BYTES)
    await dial(stream, parser, sealer, secret=secret, hello=message, max_frame_bytes=1 << 20)
    return stream, sealer


async def test_a_client_credential_cannot_open_a_node_link(tmp_path: Path) -> None:
    cluster = cluster_of(tmp_path, nodes=2)
    key = add_key(cluster, "app")
    assert cluster.client_secret is not None
    with trio.fail_after(30):
        async with run(node_settings(cluster, 2)) as node:
            address = node.transport.listen_addresses[0]
            # Node 1 dials node 2: a client credential in its place is refused.
            for secret in (cluster.client_secret, key.secret):
                with pytest.raises(AuthenticationFailed) as refused:
                    await handshake(address, secret, hello(cluster, PeerKind.NODE, 1))
                assert refused.value.by_peer
            # And the cluster secret does not authenticate a client either.
            with pytest.raises(AuthenticationFailed):
                await handshake(address, cluster.secret, hello(cluster, PeerKind.CLIENT, 99))
            while node.transport.stats().handshakes_refused < 3:  # counted after the refusal
                await trio.sleep(0.01)
            status = await status_of(address, client_transport_config(cluster))
            assert status.node_id == 2  # the right credential still works


async def status_of(address: Address, config: object) -> NodeStatus:
    async with connect_rpc(address, config) as connection:  # type: ignore[arg-type]
        reply = await connection.call(GetStatus(), timeout_ms=5_000)
    assert isinstance(reply, NodeStatus)
    return reply


async def test_a_raft_frame_on_a_client_connection_cuts_it_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = cluster_of(tmp_path)
    assert cluster.client_secret is not None
    with trio.fail_after(30), caplog.at_level(logging.WARNING, "raftcluster.transport"):
        async with run(node_settings(cluster, 1)) as node:
            address = node.transport.listen_addresses[0]
            stream, sealer = await handshake(
                address, cluster.client_secret, hello(cluster, PeerKind.CLIENT, 42)
            )
            forged = Heartbeat(term=99, src=2, dst=1, commit=0, round=0)
            await stream.send_all(sealer.seal(encode(RaftFrame(0, 0, forged))))
            with pytest.raises(trio.BrokenResourceError):
                while await stream.receive_some(65536):
                    pass  # keepalives until the node hangs up
                raise trio.BrokenResourceError  # a clean close counts the same
            assert node.status().term < 99  # the forged message reached nothing
    assert "client 42" in caplog.text
    assert "sent a RaftFrame of Heartbeat, not a client request" in caplog.text


async def test_a_revoked_key_is_refused_and_its_connections_closed(tmp_path: Path) -> None:
    cluster = cluster_of(tmp_path)
    key = add_key(cluster, "ops")
    config = client_transport_config(cluster, key=key)
    with trio.fail_after(30):
        async with run(node_settings(cluster, 1)) as node:
            address = node.transport.listen_addresses[0]
            async with connect_rpc(address, config) as open_connection:
                assert isinstance(
                    await open_connection.call(GetStatus(), timeout_ms=5_000), NodeStatus
                )
                revoke_key(cluster, "ops")
                with pytest.raises(HandshakeFailed) as refused:
                    await status_of(address, config)  # at once: the handshake re-reads the file
                assert refused.value.reason == RefusalReason.UNKNOWN_CREDENTIAL
                while open_connection.open:  # closed by the node's watch (within a second)
                    await trio.sleep(0.05)
                with pytest.raises(PeerUnreachable):
                    await open_connection.call(GetStatus(), timeout_ms=1_000)
            # A new key with the same name is a new secret: the old one stays refused.
            add_key(cluster, "ops")
            with pytest.raises(AuthenticationFailed):
                await status_of(address, config)


async def test_a_read_only_key_reads_and_cannot_write(tmp_path: Path) -> None:
    cluster = cluster_of(tmp_path)
    key_file = tmp_path / "reader.key"
    write_key_file(key_file, cluster.cluster_id, add_key(cluster, "reader", read_only=True))
    assert read_key_file(key_file).key.read_only
    config = client_transport_config(cluster, key=read_key_file(key_file).key)
    with trio.fail_after(30):
        async with run(node_settings(cluster, 1)) as node:
            async with connect(cluster) as writer:
                await writer.put(b"k", b"v")
            async with connect(cluster, key_file=key_file) as reader:
                assert (await reader.get(b"k")).value == b"v"
                with pytest.raises(BadRequest, match="read-only"):
                    await reader.put(b"k", b"x")
            # Below the client API too: a raw write from the key is refused, definitely.
            address = node.transport.listen_addresses[0]
            async with connect_rpc(address, config) as connection:
                reply = await connection.call(Submit(encode(Put(b"k", b"y"))), timeout_ms=5_000)
            assert isinstance(reply, Refused) and reply.code == RefuseCode.BAD_REQUEST
            async with connect(cluster) as check:
                assert (await check.get(b"k")).value == b"v"


def test_the_client_commands_add_list_and_revoke_keys(tmp_path: Path) -> None:
    cluster = cluster_of(tmp_path)

    def cli(*words: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "raftcluster", "client", *words, "--cluster", str(tmp_path)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    added = cli("add", "backup", "--read-only", "--json")
    assert added.returncode == 0, added.stderr
    key_file = Path(json.loads(added.stdout)["key_file"])
    assert key_file.stat().st_mode & 0o077 == 0
    assert read_key_file(key_file).cluster_id == cluster.cluster_id
    with pytest.raises(ConfigError, match="exists"):
        add_key(cluster, "backup")
    add_key(cluster, "app")
    listed = cli("list", "--json")
    assert json.loads(listed.stdout) == {
        "keys": [{"name": "app", "read_only": False}, {"name": "backup", "read_only": True}]
    }
    revoke_key(cluster, "backup")
    gone = cli("revoke", "backup")
    assert gone.returncode == 1 and len(gone.stderr.splitlines()) == 1
    assert "no client key named 'backup' (the keys: app)" in gone.stderr
