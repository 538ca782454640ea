"""Which identity a TLS certificate names, and whether it is the one the handshake claims.

With TLS on (`TlsConfig.check_names`, always so when it comes from a cluster file's [tls]
section), both ends present a certificate signed by the cluster's CA, and the certificate
says who its holder is, by its subject's Common Name (as etcd maps a client certificate's
CN to a user):

    node-<id>       node <id> (decimal, no leading zeros): e.g. "node-2"
    client-<NAME>   the client named NAME, a named client key's name: e.g. "client-backup"

The rules (docs/security.md, "TLS identities"):
- a node link is accepted only from a `node-<id>` certificate whose id is the one the
  Hello claims, and a dialer accepts only the `node-<id>` certificate of the node its
  handshake reached: a node certificate for id 2 cannot claim id 3; a client certificate
  never opens a node link;
- a client connection presents a `client-<NAME>` certificate: NAME must be an unrevoked
  named client key (so `client revoke NAME` and a read-only key apply to it), whose rights
  the connection gets; the Hello proves that key, or the client secret;
- a node certificate may open a client connection with the client secret (a node's own
  cluster service is a client of the cluster, and a node holds the client secret anyway:
  a node link already grants more), with the client secret's rights; not with a named key
  (a key is a client's, and its certificate is `client-<NAME>`).

The TLS handshake (the CA's signature) proves the name; the secret handshake inside it
still proves the secret or the client credential: TLS never replaces them.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

NODE_PREFIX = "node-"
CLIENT_PREFIX = "client-"
_NODE = re.compile(r"node-([1-9][0-9]{0,18})")
_CLIENT = re.compile(r"client-([A-Za-z0-9._-]{1,48})")
MAX_NAME_CHARS = 64  # a Common Name is at most 64 characters (RFC 5280 ub-common-name)


def node_name(node_id: int) -> str:
    """The Common Name of node `node_id`'s certificate."""
    return f"{NODE_PREFIX}{node_id}"


def client_name(name: str) -> str:
    """The Common Name of the certificate of the client (named key) `name`."""
    return f"{CLIENT_PREFIX}{name}"


@attrs.frozen
class Named:
    """What a certificate name says: a node (`node_id`), a client (`client`), or neither."""

    text: str
    node_id: int = 0
    client: str = ""

    @classmethod
    def parse(cls, text: str) -> Named:
        node = _NODE.fullmatch(text)
        if node is not None and int(node[1]) < 2**63:
            return cls(text, node_id=int(node[1]))
        client = _CLIENT.fullmatch(text)
        if client is not None:
            return cls(text, client=client[1])
        return cls(text)

    def __str__(self) -> str:
        return f"certificate {self.text!r}" if self.text else "no certificate name"


def peer_name(stream: Any) -> str:
    """The subject Common Name of the certificate the TLS peer of `stream` (a
    `trio.SSLStream` after its handshake) presented; "" when it presented none."""
    certificate = stream.getpeercert()
    if not certificate:
        return ""
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and isinstance(value, str):
                return value[:MAX_NAME_CHARS]
    return ""


def node_refusal(name: str, node_id: int) -> str | None:
    """Why a certificate named `name` cannot be node `node_id`'s (None: it is)."""
    named = Named.parse(name)
    if named.node_id == node_id:
        return None
    if named.client:
        return (
            f"{named} is a client's: a client certificate never opens a node link (node {node_id})"
        )
    return f"{named} does not name node {node_id} (expected {node_name(node_id)!r})"


def client_refusal(name: str, credential: str) -> str | None:
    """Why a client certificate named `name` cannot prove the credential `credential` (""
    the client secret, else a named key), None if it can (the rules above)."""
    named = Named.parse(name)
    if named.client:
        if credential and credential != named.client:
            return f"{named} names client {named.client!r}, but the Hello proves key {credential!r}"
        return None
    if named.node_id:
        if credential:
            return f"{named} is a node's: it proves the client secret only, not key {credential!r}"
        return None
    return f"{named} names neither a node ('node-<id>') nor a client ('client-<NAME>')"


def rights_name(name: str, credential: str) -> str:
    """The credential whose rights a client connection gets, once `client_refusal` passed:
    the key the certificate names, else (a node's certificate) `credential`."""
    named = Named.parse(name)
    return named.client or credential
