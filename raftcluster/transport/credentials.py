"""Client credentials: what a client proves in the handshake instead of the cluster secret.

Nodes prove the cluster secret to each other; clients never hold it. A client proves
either the cluster's client secret (credential name "") or a named client key
(`raftcluster client add NAME`). A node looks credentials up through a `ClientKeys`
(a fixed set here; `raftcluster.config.client_keys.ClientKeyFile` reads them from the
file every node reads, and notices revocations). A proof made with a client credential
never verifies as a node's (the secrets differ), so a client cannot open a node link.

A read-only credential may only read: the node refuses its writes (see docs/security.md).
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from raftcluster.transport.config import MAX_SECRET_BYTES, MIN_SECRET_BYTES
from statemachine.errors import InvalidArgument

MAX_KEY_NAME_CHARS = 48  # keeps a Hello (with the name in it) under the handshake frame limit
KEY_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_KEY_NAME_CHARS}}}")
CLIENT_SECRET_NAME = ""  # the credential name of the cluster's client secret


def check_key_name(name: str) -> str:
    """`name` if it can name a client key; InvalidArgument otherwise."""
    if not KEY_NAME.fullmatch(name):
        raise InvalidArgument(
            "client key name",
            f"{name!r}: use 1..{MAX_KEY_NAME_CHARS} letters, digits, '.', '_' or '-'",
        )
    return name


def _check_secret_bytes(instance: Any, attribute: attrs.Attribute[Any], value: bytes) -> None:
    if not isinstance(value, bytes) or not MIN_SECRET_BYTES <= len(value) <= MAX_SECRET_BYTES:
        raise InvalidArgument(
            "ClientKey.secret", f"need {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} bytes"
        )


@attrs.frozen
class ClientKey:
    """One client credential: its name ("" for the client secret), secret and rights."""

    name: str
    secret: bytes = attrs.field(repr=False, validator=_check_secret_bytes)
    read_only: bool = False

    def __attrs_post_init__(self) -> None:
        if self.name != CLIENT_SECRET_NAME:
            check_key_name(self.name)

    @property
    def label(self) -> str:
        """How logs name it: "the client secret" or "client key 'NAME'"."""
        return "the client secret" if not self.name else f"client key {self.name!r}"


class ClientKeys(Protocol):
    """Where a node looks up the credential a client's Hello names."""

    def lookup(self, name: str) -> ClientKey | None:
        """The credential named `name` ("" the client secret), None if there is none
        (unknown or revoked). Must not block: it runs in the handshake."""
        ...


def _freeze(value: Mapping[str, ClientKey]) -> Mapping[str, ClientKey]:
    return types.MappingProxyType(dict(value))


@attrs.frozen
class StaticClientKeys:
    """A fixed set of client credentials (embedding, tests): the client secret (None:
    none) and named keys."""

    client_secret: bytes | None = attrs.field(default=None, repr=False)
    keys: Mapping[str, ClientKey] = attrs.field(factory=dict, converter=_freeze)

    def lookup(self, name: str) -> ClientKey | None:
        if name == CLIENT_SECRET_NAME:
            if self.client_secret is None:
                return None
            return ClientKey(CLIENT_SECRET_NAME, self.client_secret)
        return self.keys.get(name)
