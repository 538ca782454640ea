"""TLS from files: a cluster file's [tls] section, or a client key file's [tls] table, made
into the transport's `TlsConfig` (mutual TLS, certificate names checked).

    check_ca(path)                      why a CA file cannot be used (None: it can)
    tls_from_files(ca, cert, key)       -> TlsConfig; raises TlsFileError(which, reason)
    own_name(tls)                       the Common Name of the certificate `tls` presents
    node_tls(cluster, node_id)          the node's TlsConfig (None: no [tls]); ConfigError
                                        (also when its certificate is not node-<id>'s)
    client_tls(cluster)                 a client's, from [tls] client_cert_file; ConfigError

Both ends present a certificate the cluster CA signed and require one from the other
(mutual TLS, TLS 1.2 at least). Hostnames are not checked: a node is reached by address,
and who it is is checked by the name its certificate carries (`node-<id>` for the node
the handshake reaches; `raftcluster.transport.certnames`), which is stronger than a
hostname. Errors name the setting and the file: a missing or unreadable file, one that is
not PEM, a private key readable by others, a key that does not match its certificate.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from raftcluster.config.errors import ConfigError
from raftcluster.config.private_file import UnusableFile, read_small_file
from raftcluster.config.schema import ClusterFile, TlsFiles
from raftcluster.transport import certnames
from raftcluster.transport.config import TlsConfig
from statemachine.errors import ClusterError

MAX_PEM_BYTES = 1 << 20  # a certificate chain or a key file: far larger than any real one
# A TLS handshake with itself in memory takes a few round trips; more means it is stuck.
MAX_LOOPBACK_ROUNDS = 16


class TlsFileError(ClusterError):
    """A TLS file cannot be used: `which` is "ca", "cert" or "key", `path` the file."""

    def __init__(self, which: str, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.which = which
        self.path = path
        self.reason = reason


def _read(which: str, path: Path, *, private: bool = False) -> bytes:
    what = "a private key" if private else "the file"
    try:
        data = read_small_file(path, MAX_PEM_BYTES, what=what, owner_only=private)
    except FileNotFoundError:
        raise TlsFileError(which, path, "no such file") from None
    except UnusableFile as e:
        raise TlsFileError(which, path, e.reason) from None
    except OSError as e:
        raise TlsFileError(which, path, f"cannot read: {e.strerror}") from None
    if len(data) > MAX_PEM_BYTES:
        raise TlsFileError(which, path, f"larger than {MAX_PEM_BYTES} bytes")
    marker = b"PRIVATE KEY-----" if private else b"-----BEGIN CERTIFICATE-----"
    if marker not in data:
        what = "a PEM private key" if private else "a PEM certificate"
        raise TlsFileError(which, path, f"not {what}")
    return data


def check_ca(path: Path) -> str | None:
    """Why `path` cannot serve as the CA certificate (None: it can)."""
    try:
        _read("ca", path)
        ssl.create_default_context(cafile=str(path))
    except TlsFileError as e:
        return e.reason
    except ssl.SSLError as e:
        return f"not a usable CA certificate ({e.reason or e})"
    return None


def tls_from_files(ca: Path, cert: Path, key: Path) -> TlsConfig:
    """Mutual TLS contexts (server and client) presenting `cert`/`key` and trusting only
    certificates `ca` signed. Raises TlsFileError naming the file at fault."""
    reason = check_ca(ca)
    if reason is not None:
        raise TlsFileError("ca", ca, reason)
    _read("cert", cert)
    _read("key", key, private=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False  # identity is the certificate's name: see the docstring
    for context in (server, client):
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(ca))
        try:
            context.load_cert_chain(str(cert), str(key))
        except ssl.SSLError as e:
            raise TlsFileError(
                "key", key, f"does not match the certificate {cert} ({e.reason or e})"
            ) from None
    return TlsConfig(server=server, client=client, check_names=True)


def own_name(tls: TlsConfig) -> str:
    """The Common Name of the certificate `tls` presents, as its peers see it: a TLS
    handshake of its client context with its server context, in memory (public `ssl`
    API only). Raises ssl.SSLError when the two do not accept each other (say, a
    certificate the CA did not sign)."""
    assert tls.server is not None and tls.client is not None
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = tls.client.wrap_bio(to_client, to_server, server_side=False)
    server = tls.server.wrap_bio(to_server, to_client, server_side=True)
    for _ in range(MAX_LOOPBACK_ROUNDS):
        done = True
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                done = False
        if done:
            return certnames.peer_name(client)
    raise ssl.SSLError("the TLS handshake with itself did not finish")


_SETTING = {"ca": "ca_file", "cert": "cert_file", "key": "key_file"}


def node_tls(cluster: ClusterFile, node_id: int) -> TlsConfig | None:
    """Node `node_id`'s TLS (None: the file has no [tls]). Raises ConfigError naming the
    setting and the file."""
    files = cluster.tls
    if files is None:
        return None
    cert = files.node_cert(node_id)
    try:
        tls = tls_from_files(files.ca_file, cert, files.node_key(node_id))
    except TlsFileError as e:
        raise ConfigError(cluster.path, 0, f"tls.{_SETTING[e.which]}", str(e)) from None
    try:
        name = own_name(tls)
    except ssl.SSLError as e:
        why = f"{cert}: not accepted under the CA {files.ca_file} ({e.reason or e})"
        raise ConfigError(cluster.path, 0, "tls.cert_file", why) from None
    if name != certnames.node_name(node_id):
        why = f"{cert} names {name!r}; node {node_id}'s must name {certnames.node_name(node_id)!r}"
        raise ConfigError(cluster.path, 0, "tls.cert_file", why)
    return tls


def client_tls(cluster: ClusterFile) -> TlsConfig | None:
    """The TLS of a client that reads `cluster` (None: the file has no [tls]): it presents
    [tls] client_cert_file. Raises ConfigError naming the setting and the file."""
    files = cluster.tls
    if files is None:
        return None
    if files.client_cert_file is None or files.client_key_file is None:
        raise ConfigError(
            cluster.path, 0, "tls.client_cert_file",
            "not set: a client of a TLS cluster presents a certificate (CN client-<NAME> of "
            "a named client key, or a node's); set it and client_key_file, or use a key file "
            "with a [tls] table (--key-file)",
        )  # fmt: skip
    return _client(cluster.path, "tls.client_", files, files.client_cert_file,
                   files.client_key_file)  # fmt: skip


def _client(where: Path, prefix: str, files: TlsFiles, cert: Path, key: Path) -> TlsConfig:
    try:
        return tls_from_files(files.ca_file, cert, key)
    except TlsFileError as e:
        setting = "tls.ca_file" if e.which == "ca" else f"{prefix}{_SETTING[e.which]}"
        raise ConfigError(where, 0, setting, str(e)) from None


def key_file_tls(path: Path, table: object) -> TlsConfig:
    """A client key file's [tls] table (ca_file, cert_file, key_file; relative to the key
    file's directory) made into the client's TLS. Raises ConfigError naming the key file,
    the setting and the file at fault."""
    names = ("ca_file", "cert_file", "key_file")
    if not isinstance(table, dict) or set(table) != set(names):
        raise ConfigError(path, 0, "tls", f"a table of exactly {', '.join(names)}")
    values = {}
    for name in names:
        value = table[name]
        if not isinstance(value, str) or not value:
            raise ConfigError(path, 0, f"tls.{name}", "must be a non-empty string (a path)")
        values[name] = (path.parent / Path(value).expanduser()).absolute()
    files = TlsFiles(ca_file=values["ca_file"], cert_file="", key_file="")
    return _client(path, "tls.", files, values["cert_file"], values["key_file"])
