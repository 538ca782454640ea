"""TLS identities (docs/security.md): a certificate names a node (`node-<id>`) or a client
(`client-<NAME>`), and the handshake refuses a peer whose certificate does not name the
identity it claims. Real certificates made by `openssl`, real transports and nodes on
real TCP, the cluster file's [tls] section, and `raftcluster up` with real processes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
import trio

from raftcluster.config import (
    ClusterFile,
    ConfigError,
    client_transport_config,
    init_cluster,
    load_cluster,
    node_settings,
)
from raftcluster.config.client_keys import add_key, read_key_file, revoke_key, write_key_file
from raftcluster.config.member_file import write_member_file
from raftcluster.config.tls import tls_from_files
from raftcluster.node import run
from raftcluster.node.protocol import GetStatus, NodeStatus, RefuseCode, Refused, Submit
from raftcluster.transport import HandshakeFailed, RefusalReason, Transport, certnames, connect_rpc
from statemachine.codec import encode
from statemachine.kv import Put
from tests.tls_kit import Authority
from tests.transport_kit import make_node, start, until

FAST = {"timing.election_timeout_ms": 600, "timing.heartbeat_interval_ms": 60}


def last_error(dialer: Transport, peer: int) -> str:
    links = dialer.stats().peer(peer).links
    return links[0].last_error if links else ""


async def test_a_node_certificate_names_one_node_and_a_client_certificate_none(
    nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "raftcluster.transport")
    ca = Authority(tmp_path / "tls")

    def tls(name: str):  # type: ignore[no-untyped-def]
        return tls_from_files(ca.cert, *ca.issue(name))

    acceptor = make_node(4, tls=tls("node-4"))
    await start(nursery, acceptor)
    impostor = make_node(3, tls=tls("node-2"))  # node 2's certificate, claiming id 3
    client = make_node(1, tls=tls("client-alice"))  # a client's certificate, as node 1
    runs = []
    for dialer in (impostor, client):
        runs.append(await start(nursery, dialer))
        dialer.set_peer(4, acceptor.listen_addresses)
        acceptor.set_peer(dialer.node_id, dialer.listen_addresses)
    await until(lambda: all("cert_mismatch" in last_error(d, 4) for d in (impostor, client)))
    assert not acceptor.is_connected(3) and not acceptor.is_connected(1)
    assert "certificate 'node-2' does not name node 3" in caplog.text
    assert "a client certificate never opens a node link" in caplog.text
    for running in runs:
        await running.stop()

    honest = make_node(3, tls=tls("node-3"))  # the right certificate links up
    await start(nursery, honest)
    honest.set_peer(4, acceptor.listen_addresses)
    acceptor.set_peer(3, honest.listen_addresses)
    await until(lambda: honest.is_connected(4) and acceptor.is_connected(3))

    # A dialer checks the acceptor's certificate too: node 2's does not make node 5.
    posing = make_node(5, tls=tls("node-2"))
    await start(nursery, posing)
    dialer = make_node(1, tls=tls("node-1"))
    await start(nursery, dialer)
    dialer.set_peer(5, posing.listen_addresses)
    posing.set_peer(1, dialer.listen_addresses)
    await until(lambda: "cert_mismatch" in last_error(dialer, 5))
    assert "does not name node 5" in last_error(dialer, 5)
    assert not dialer.is_connected(5)
    await until(lambda: "refused by peer: cert_mismatch: node 1 refused this node" in caplog.text)


def tls_cluster(root: Path, nodes: int, *, client: str = "node-1") -> tuple[ClusterFile, Authority]:
    """A cluster file with a [tls] section: each node's certificate, and `client` the
    certificate a client reading the file presents."""
    init_cluster(root, nodes=nodes, settings=FAST)
    ca = Authority(root / "tls", "ca")
    for node in range(1, nodes + 1):
        ca.issue(f"node-{node}")
    ca.issue(client, "client")
    with (root / "cluster.toml").open("a") as f:
        f.write(
            '\n[tls]\nca_file = "tls/ca.crt"\ncert_file = "tls/node-{id}.crt"\n'
            'key_file = "tls/node-{id}.key"\nclient_cert_file = "tls/client.crt"\n'
            'client_key_file = "tls/client.key"\n'
        )
    return load_cluster(root), ca


async def status_of(address, config) -> NodeStatus:  # type: ignore[no-untyped-def]
    async with connect_rpc(address, config) as connection:
        reply = await connection.call(GetStatus(), timeout_ms=5_000)
    assert isinstance(reply, NodeStatus)
    return reply


async def test_a_client_certificate_names_a_key_revocation_and_read_only_apply(
    tmp_path: Path,
) -> None:
    cluster, ca = tls_cluster(tmp_path, 1)
    alice = add_key(cluster, "alice")
    add_key(cluster, "reader", read_only=True)
    alice_tls = tls_from_files(ca.cert, *ca.issue("client-alice"))
    reader_tls = tls_from_files(ca.cert, *ca.issue("client-reader"))
    with_key = client_transport_config(cluster, key=alice, tls=alice_tls)
    with_secret = client_transport_config(cluster, tls=alice_tls)  # rights: alice's
    with trio.fail_after(30):
        async with run(node_settings(cluster, 1)) as node:
            address = node.transport.listen_addresses[0]
            for config in (with_key, with_secret, client_transport_config(cluster)):
                assert (await status_of(address, config)).node_id == 1
            # A client without TLS is turned away by the TLS listener.
            plain = attrs.evolve(client_transport_config(cluster), tls=None)
            with pytest.raises(HandshakeFailed):
                await status_of(address, plain)
            # The certificate's name is the client: once revoked, neither credential helps.
            revoke_key(cluster, "alice")
            for config in (with_key, with_secret):
                with pytest.raises(HandshakeFailed) as refused:
                    await status_of(address, config)
                assert refused.value.reason == RefusalReason.UNKNOWN_CREDENTIAL
            # The key a certificate names sets the rights, whatever the Hello proves.
            reader = client_transport_config(cluster, tls=reader_tls)
            async with connect_rpc(address, reader) as connection:
                write = Submit(encode(Put(b"k", b"v")))
                reply = await connection.call(write, timeout_ms=5_000)
            assert isinstance(reply, Refused) and reply.code == RefuseCode.BAD_REQUEST
            assert "read-only" in reply.message


def test_tls_files_are_checked_at_the_boundary(tmp_path: Path) -> None:
    cluster, ca = tls_cluster(tmp_path, 1)
    file = tmp_path / "cluster.toml"
    key = tmp_path / "tls" / "node-1.key"
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"tls\.key_file: .*node-1\.key: .*chmod 600"):
        node_settings(cluster, 1)
    key.chmod(0o600)
    (tmp_path / "tls" / "node-1.crt").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"tls\.cert_file: .*node-1\.crt: not a PEM certificate"):
        node_settings(cluster, 1)
    other_cert, _ = ca.issue("node-1", "other")
    (tmp_path / "tls" / "node-1.crt").write_bytes(other_cert.read_bytes())
    with pytest.raises(ConfigError, match=r"tls\.key_file: .*does not match the certificate"):
        node_settings(cluster, 1)
    # A node's certificate must name it, and be signed by the cluster's CA.
    wrong_cert, wrong_key = ca.issue("node-2", "wrong")
    for suffix, source in ((".crt", wrong_cert), (".key", wrong_key)):
        (tmp_path / "tls" / f"node-1{suffix}").write_bytes(source.read_bytes())
    with pytest.raises(ConfigError, match=r"tls\.cert_file: .*node-1\.crt names 'node-2'"):
        node_settings(cluster, 1)
    stranger_cert, stranger_key = Authority(tmp_path / "elsewhere").issue("node-1")
    for suffix, source in ((".crt", stranger_cert), (".key", stranger_key)):
        (tmp_path / "tls" / f"node-1{suffix}").write_bytes(source.read_bytes())
    with pytest.raises(ConfigError, match=r"tls\.cert_file: .*not accepted under the CA"):
        node_settings(cluster, 1)
    ca.cert.rename(tmp_path / "ca.away")
    with pytest.raises(ConfigError, match=r"tls\.ca_file: .*ca\.crt: no such file") as missing:
        load_cluster(tmp_path)
    assert missing.value.path == file and missing.value.line > 0
    text = file.read_text().replace('client_cert_file = "tls/client.crt"\n', "")
    file.write_text(text.replace('client_key_file = "tls/client.key"\n', ""))
    (tmp_path / "ca.away").rename(ca.cert)
    with pytest.raises(ConfigError, match=r"tls\.client_cert_file: not set"):
        client_transport_config(load_cluster(tmp_path))
    # A client's key file carries its own [tls] table.
    key_file = tmp_path / "alice.key"
    cert, private = ca.issue("client-alice")
    write_key_file(key_file, cluster.cluster_id, add_key(cluster, "alice"))
    with key_file.open("a") as f:
        f.write(f'[tls]\nca_file = "{ca.cert}"\ncert_file = "{cert}"\nkey_file = "missing.key"\n')
    with pytest.raises(ConfigError, match=r"alice\.key: tls\.key_file: .*missing\.key: no such"):
        read_key_file(key_file)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "raftcluster", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_a_tls_cluster_from_its_file_serves_writes_end_to_end(tmp_path: Path) -> None:
    """`raftcluster up` of a 3-node cluster.toml with [tls]: real processes, mutual TLS
    between nodes and to the CLI (which presents [tls] client_cert_file)."""
    cluster, ca = tls_cluster(tmp_path, 3)
    # A named key's file with its own [tls] table (the client's certificate is client-app).
    app_cert, app_key = ca.issue("client-app")
    key_file = tmp_path / "app.key"
    write_key_file(key_file, cluster.cluster_id, add_key(cluster, "app"))
    with key_file.open("a") as f:
        f.write(f'[tls]\nca_file = "{ca.cert}"\ncert_file = "{app_cert}"\nkey_file = "{app_key}"\n')
    endpoints = ",".join(str(n.addresses[0]) for n in cluster.nodes)
    log = (tmp_path / "up.out").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "raftcluster", "up", str(tmp_path)],
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 45
        while True:  # one call waits for a leader (its timeout); again if nothing listened yet
            put = cli("kv", "put", "greeting", "hello", "--cluster", str(tmp_path),
                      "--timeout-ms", "20000")  # fmt: skip
            if put.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert put.returncode == 0, (put.stderr, (tmp_path / "up.out").read_text()[-3000:])
        got = cli("kv", "get", "greeting", "--endpoints", endpoints, "--key-file", str(key_file))
        assert got.returncode == 0 and got.stdout.strip() == "hello", got.stderr
        # --endpoints with the client secret speaks TLS with the --tls-* files.
        status = cli(
            "status", "--endpoints", endpoints, "--secret-file", str(cluster.client_secret_file),
            "--cluster-id", cluster.cluster_id, "--tls-ca", str(ca.cert),
            "--tls-cert", str(tmp_path / "tls" / "client.crt"),
            "--tls-key", str(tmp_path / "tls" / "client.key"), "--json",
        )  # fmt: skip
        assert json.loads(status.stdout)["answered"] == 3, status.stdout
        # Every connection was accepted: the nodes' links, the CLI's, and each node's own
        # cluster service client (a node certificate with the client secret).
        assert "refused a connection" not in (tmp_path / "up.out").read_text()
    finally:
        up.terminate()
        up.wait(timeout=60)


@pytest.mark.parametrize(
    ("name", "node", "client"),
    [
        ("node-2", 2, ""),
        ("node-02", 0, ""),  # one spelling per id: no leading zeros
        ("node-0", 0, ""),
        ("node-99999999999999999999", 0, ""),  # beyond 63 bits
        ("client-backup", 0, "backup"),
        ("client-", 0, ""),
        ("client-a b", 0, ""),
        ("localhost", 0, ""),
        ("", 0, ""),
    ],
)
def test_a_certificate_name_names_a_node_a_client_or_nobody(
    name: str, node: int, client: str
) -> None:
    named = certnames.Named.parse(name)
    assert (named.node_id, named.client) == (node, client)


def test_the_rules_for_each_kind_of_certificate() -> None:
    assert certnames.node_refusal("node-3", 3) is None
    assert "does not name node 3" in (certnames.node_refusal("node-2", 3) or "")
    assert "never opens a node link" in (certnames.node_refusal("client-3", 3) or "")
    assert certnames.client_refusal("client-app", "app") is None
    assert certnames.client_refusal("client-app", "") is None  # the client secret
    assert "proves key 'ops'" in (certnames.client_refusal("client-app", "ops") or "")
    assert certnames.client_refusal("node-1", "") is None  # a node's own client
    assert "client secret only" in (certnames.client_refusal("node-1", "app") or "")
    assert "neither a node" in (certnames.client_refusal("localhost", "") or "")
    assert certnames.rights_name("client-app", "") == "app"
    assert certnames.rights_name("node-1", "") == ""


def test_a_member_file_written_elsewhere_keeps_every_file_it_names(tmp_path: Path) -> None:
    """`member add --write-config` may write the new node's file in another directory: the
    secret files, the key file and the [tls] files must still be the cluster's."""
    cluster, _ = tls_cluster(tmp_path / "cluster", 1)
    members = {1: [str(cluster.nodes[0].addresses[0])], 2: ["127.0.0.1:1"]}
    (tmp_path / "elsewhere").mkdir()
    written = write_member_file(cluster, tmp_path / "elsewhere", members, 2, 77)
    assert written.path == tmp_path / "elsewhere" / "cluster.toml"
    assert written.tls == cluster.tls and written.secret == cluster.secret
    assert written.client_secret == cluster.client_secret
    assert written.client_keys_file == cluster.client_keys_file
    entry = written.find(2)
    assert entry is not None and entry.incarnation == 77
