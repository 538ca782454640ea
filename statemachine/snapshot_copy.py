"""A copy of the cluster state at one index, encoded later, elsewhere, in slices.

`ClusterState.snapshot()` builds and encodes the whole state in one go; for a large kv
store that is tens to hundreds of milliseconds, on whatever thread calls it. Instead:

    copy = copy_state(state)        cheap: O(keys) of C-level copying, nothing encoded
    data = copy.encode()            the bytes `state.snapshot()` returned at the copy,
                                    built and encoded a slice of keys at a time

The copy shares nothing mutable with the live state (a kv key's versions are tuples of
immutable `Version`s; other parts give their snapshot message, which is frozen), so
`encode` may run in a worker thread while the state goes on applying entries. Each slice
is one short encoder call, so a thread encoding it lets the others run in between (the
interpreter hands the lock over between slices, never inside one C call). The bytes are
exactly `state.snapshot()`'s (canonical CBOR, definite lengths): a test checks it.

A part opts in with `snapshot_copy() -> SnapshotCopy`; any other part is copied as its
`snapshot()` message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from statemachine.cluster import ClusterSnapshot, ClusterState, PartState
from statemachine.codec import encode_value
from statemachine.snapshot_slices import array_header


class SnapshotCopy(Protocol):
    """A part's state frozen at the copy, encoded as `encode_value(part.snapshot())`."""

    def slices(self) -> Iterator[bytes]:
        """The encoding, in pieces to concatenate."""
        ...


class _Whole:
    """A part copied as its snapshot message (immutable): one slice."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def slices(self) -> Iterator[bytes]:
        yield encode_value(self._value)


class StateCopy:
    """Every part of a `ClusterState`, copied (see the module docstring)."""

    def __init__(self, parts: list[tuple[str, SnapshotCopy]], snapshot_tag: int, part_tag: int):
        self._parts = parts
        self._snapshot_tag = snapshot_tag
        self._part_tag = part_tag

    def slices(self) -> Iterator[bytes]:
        yield array_header(2) + encode_value(self._snapshot_tag) + array_header(len(self._parts))
        for name, copy in self._parts:
            yield array_header(3) + encode_value(self._part_tag) + encode_value(name)
            yield from copy.slices()

    def encode(self) -> bytes:
        """The snapshot bytes (what `ClusterState.snapshot()` gave at the copy)."""
        return b"".join(self.slices())


def copy_state(state: ClusterState) -> StateCopy:
    """A copy of `state` to encode later; see the module docstring."""
    parts: list[tuple[str, SnapshotCopy]] = []
    for name in state.part_names:
        part = state.part(name)
        copier = getattr(part, "snapshot_copy", None)
        parts.append((name, copier() if copier is not None else _Whole(part.snapshot())))
    return StateCopy(parts, ClusterSnapshot.TAG, PartState.TAG)
