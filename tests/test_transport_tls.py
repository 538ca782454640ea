"""TLS under the secret handshake, with a self-signed certificate made for the test."""

from __future__ import annotations

import random
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from raftcluster.transport import (
    HandshakeFailed,
    PeerUnreachable,
    TlsConfig,
    Transport,
    connect_rpc,
)
from tests.transport_kit import (
    Answer,
    Ask,
    LinkProxy,
    Note,
    client_config,
    echo_handler,
    node_config,
    receive_notes,
    start,
    until,
)

SECRET_TEXT = "the payload nobody on the wire may read"


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def tls_for(cert: Path, key: Path, trusted: Path) -> TlsConfig:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(trusted))
    # Hostname-only certificates (CN=localhost) name no node: identities are not checked.
    return TlsConfig(server=server, client=client, server_hostname="localhost", check_names=False)


async def test_nodes_and_clients_over_tls(nursery, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "cluster")
    tls = tls_for(cert, key, cert)
    one, two = (
        Transport(node_config(i, tls=tls), rng=random.Random(i), rpc_handler=echo_handler(i))
        for i in (1, 2)
    )
    for node in (one, two):
        await start(nursery, node)
    spy = LinkProxy(two.listen_addresses[0])  # sees every byte between node 1 and node 2
    await nursery.start(spy.run)
    one.set_peer(2, [spy.address])
    two.set_peer(1, one.listen_addresses)
    await until(lambda: one.is_connected(2))
    assert one.send(2, Note(1, SECRET_TEXT))
    assert (await receive_notes(two, 1))[0].message == Note(1, SECRET_TEXT)
    assert await two.call(1, Ask("add", 1), timeout_ms=5000) == Answer(2, 1)
    assert SECRET_TEXT.encode() not in spy.seen and len(spy.seen) > 1000

    async with connect_rpc(one.listen_addresses[0], client_config(tls=tls)) as client:
        assert await client.call(Ask("add", 2), timeout_ms=5000) == Answer(3, 1)

    # a plaintext client, and a client that does not trust the certificate, get nowhere
    with pytest.raises(HandshakeFailed):
        async with connect_rpc(one.listen_addresses[0], client_config()):
            pass
    other_cert, other_key = self_signed(tmp_path, "other")
    with pytest.raises(PeerUnreachable):
        untrusting = tls_for(other_cert, other_key, other_cert)
        async with connect_rpc(one.listen_addresses[0], client_config(tls=untrusting)):
            pass
    # TLS does not replace the secret: a trusted client with the wrong secret is refused
    with pytest.raises(HandshakeFailed):
        async with connect_rpc(one.listen_addresses[0], client_config(tls=tls, secret=b"y" * 32)):
            pass
    await until(lambda: one.stats().handshakes_refused == 3)
    assert one.stats().peer(2).reconnects == 0
