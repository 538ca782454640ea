"""The part set of a state machine, its fingerprint, and what differs between two of them.

Replicas agree only if they run the same parts: same names, same versions (`PartSpec.
version`), the same message classes under the same tags. `PartSet` describes that, built
from the `PartSpec`s (built-in parts included), and gives:

- `marks`: compact bytes, 16 per part in name order: the first 4 bytes of SHA-256 of the
  name, the version (4 bytes, big-endian), and the first 8 bytes of SHA-256 of the
  canonical CBOR of ``[name, version, commands, queries]``, where `commands` and `queries`
  are ``[tag, class name]`` pairs sorted by tag. Equal part sets give equal marks in every
  process (nothing depends on `hash()` or on the order parts were registered); nodes
  compare them at the transport handshake (`raftcluster/transport/handshake.py`);
- `fingerprint`: SHA-256 of the marks, in hex (what `status` and error messages show);
- `describe()`: the parts and their versions, for a person;
- `difference(theirs)`: which part differs from another node's marks (name, version or
  tags), said in this node's terms.

The marks say nothing about a part's configuration (`KvConfig`...), which every replica
must still share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import attrs

from statemachine.codec import Message, encode_value
from statemachine.part import PartSpec

MARK_BYTES = 16  # per part: name digest 4, version 4, messages digest 8
_NAME_BYTES = 4
_VERSION_BYTES = 4
MAX_PARTS = 64  # as many as a ClusterState holds (`statemachine.cluster.MAX_PARTS`)
MAX_MARKS_BYTES = MAX_PARTS * MARK_BYTES
SHORT_FINGERPRINT_CHARS = 16  # enough to tell part sets apart in a log line


def _classes(classes: Iterable[type[Message]]) -> tuple[tuple[int, str], ...]:
    return tuple(sorted((cls.TAG, cls.__qualname__) for cls in classes))


@attrs.frozen
class PartInfo:
    """One part as the fingerprint sees it: name, version, (tag, class name) of its messages."""

    name: str
    version: int
    commands: tuple[tuple[int, str], ...]
    queries: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, spec: PartSpec) -> PartInfo:
        return cls(spec.name, spec.version, _classes(spec.commands), _classes(spec.queries))

    def mark(self) -> bytes:
        name = hashlib.sha256(self.name.encode()).digest()[:_NAME_BYTES]
        described = [
            self.name,
            self.version,
            [list(pair) for pair in self.commands],
            [list(pair) for pair in self.queries],
        ]
        messages = hashlib.sha256(encode_value(described)).digest()
        return name + self.version.to_bytes(_VERSION_BYTES, "big") + messages[:8]

    def tags(self) -> str:
        """``"commands Add=10100, Sub=10101; queries Read=10102"``."""
        commands = ", ".join(f"{name}={tag}" for tag, name in self.commands) or "none"
        queries = ", ".join(f"{name}={tag}" for tag, name in self.queries) or "none"
        return f"commands {commands}; queries {queries}"


@attrs.frozen
class PartSet:
    """Every part of a state machine, sorted by name (see the module's docstring)."""

    parts: tuple[PartInfo, ...]

    @classmethod
    def of(cls, specs: Iterable[PartSpec]) -> PartSet:
        return cls(tuple(sorted((PartInfo.of(s) for s in specs), key=lambda p: p.name)))

    @property
    def marks(self) -> bytes:
        return b"".join(part.mark() for part in self.parts)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.marks).hexdigest()

    def describe(self) -> str:
        """``"counter v1, groups v1, kv v1, sessions v1 (fingerprint 3fa2c1d09b7e4a11)"``."""
        names = ", ".join(f"{p.name} v{p.version}" for p in self.parts) or "no parts"
        return f"{names} (fingerprint {self.fingerprint[:SHORT_FINGERPRINT_CHARS]})"

    def difference(self, theirs: bytes, *, here: str = "here", there: str = "there") -> str:
        """What differs between this part set and another's `marks` (empty if nothing).

        Parts are named from this side: a part only the other side has is known by its
        version alone (its name travels as a digest)."""
        if len(theirs) % MARK_BYTES:
            return f"{there} sent part marks of {len(theirs)} bytes, not a multiple of 16"
        others = {}
        for start in range(0, len(theirs), MARK_BYTES):
            mark = theirs[start : start + MARK_BYTES]
            others[mark[:_NAME_BYTES]] = mark
        found: list[str] = []
        for part in self.parts:
            mine = part.mark()
            other = others.pop(mine[:_NAME_BYTES], None)
            if other is None:
                found.append(f"{there} has no part {part.name!r} ({here} runs v{part.version})")
                continue
            version = int.from_bytes(other[_NAME_BYTES : _NAME_BYTES + _VERSION_BYTES], "big")
            if version != part.version:
                found.append(
                    f"part {part.name!r} is v{part.version} on {here}, v{version} on {there}"
                )
            elif other != mine:
                found.append(
                    f"part {part.name!r} v{part.version} has other message tags or classes "
                    f"on {there} (on {here}: {part.tags()})"
                )
        for other in others.values():
            version = int.from_bytes(other[_NAME_BYTES : _NAME_BYTES + _VERSION_BYTES], "big")
            found.append(f"{there} runs a part {here} does not have (v{version})")
        return "; ".join(found)


NO_PARTS = PartSet(())  # no state machine at all: a bare transport's (tests, benchmarks)
