"""The configuration database's snapshot (tags 170-179), and converting the store to it.

The snapshot holds every retained version of every key, in key order, plus the
current and compact revisions. The change log is not stored: it is exactly the
versions from the compact revision on, ordered by (revision, key), and is rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from statemachine.codec import Message, encode_value, non_negative, positive, tagged
from statemachine.errors import DecodeError
from statemachine.kv.keys import check_key
from statemachine.kv.store import Store, Version, version_bytes
from statemachine.snapshot_slices import array_header, sliced_array


@tagged(170)
@attrs.frozen
class StoredVersion(Message):
    mod_revision: int = attrs.field(validator=positive)
    create_revision: int = attrs.field(validator=non_negative)
    version: int = attrs.field(validator=non_negative)
    value: bytes | None  # None: a tombstone


@tagged(171)
@attrs.frozen
class StoredKey(Message):
    key: bytes = attrs.field(validator=check_key)
    versions: tuple[StoredVersion, ...]


@tagged(172)
@attrs.frozen
class KvSnapshot(Message):
    revision: int = attrs.field(validator=positive)
    compact_revision: int = attrs.field(validator=non_negative)
    keys: tuple[StoredKey, ...]


def snapshot_of(store: Store) -> KvSnapshot:
    keys = tuple(
        StoredKey(key, tuple(StoredVersion(*v) for v in store.history[key])) for key in store.index
    )
    return KvSnapshot(store.revision, store.compact_revision, keys)


def snapshot_array(store: Store) -> list[Any]:
    """`snapshot_of(store)` as the plain CBOR array it encodes to (the same canonical
    bytes), built without two message objects per key: a node takes a snapshot on its
    event loop every few thousand entries, and a store of 30,000 keys took 160 ms that
    way (60-85 ms this way), long enough to show in every client's p99 latency."""
    history = store.history
    key_tag, version_tag = StoredKey.TAG, StoredVersion.TAG
    keys = [[key_tag, key, [[version_tag, *v] for v in history[key]]] for key in store.index]
    return [KvSnapshot.TAG, store.revision, store.compact_revision, keys]


class KvCopy:
    """The store frozen at the copy (for `statemachine.snapshot_copy`): its keys in order
    and each key's tuple of versions (immutable: a write replaces the tuple), taken by
    reference with C-level copies of the index and of the history dict; encoded in
    slices, to the bytes of `snapshot_array(store)` at the copy.

    Nothing is allocated per key: at 100,000 keys, a tuple per key took 30-90 ms on the
    event loop and, worse, made the garbage collector's next full pass (100-250 ms over
    every object of the store, holding the interpreter lock) come during the copy."""

    def __init__(self, store: Store) -> None:
        self._keys = store.index.as_list()
        self._history = dict(store.history)
        self._revision = store.revision
        self._compact_revision = store.compact_revision

    def slices(self) -> Iterator[bytes]:
        head = [KvSnapshot.TAG, self._revision, self._compact_revision]
        yield array_header(4) + b"".join(encode_value(v) for v in head)
        key_tag, version_tag = StoredKey.TAG, StoredVersion.TAG

        history = self._history

        def stored(key: bytes) -> list[Any]:
            return [key_tag, key, [[version_tag, *v] for v in history[key]]]

        yield from sliced_array(self._keys, stored)


def store_of(snapshot: KvSnapshot) -> Store:
    """A store holding exactly `snapshot`; DecodeError if it breaks the store's invariants."""
    store = Store()
    store.revision = snapshot.revision
    store.compact_revision = snapshot.compact_revision
    if snapshot.compact_revision > snapshot.revision:
        raise DecodeError("KvSnapshot.compact_revision", "beyond the current revision")
    changes: list[tuple[int, bytes]] = []
    previous = b""
    for i, stored in enumerate(snapshot.keys):
        if stored.key <= previous:
            raise DecodeError(f"KvSnapshot.keys[{i}]", "keys are not in ascending order")
        previous = stored.key
        versions = _versions(stored, snapshot.revision, f"KvSnapshot.keys[{i}]")
        store.history[stored.key] = versions
        store.index.add(stored.key)
        store.stored_bytes += sum(version_bytes(stored.key, v) for v in versions)
        changes.extend(
            (v.mod_revision, stored.key)
            for v in versions
            if v.mod_revision >= snapshot.compact_revision
        )
    for revision, key in sorted(changes):
        store.log.append(revision, key)
    return store


def _versions(stored: StoredKey, revision: int, path: str) -> tuple[Version, ...]:
    if not stored.versions:
        raise DecodeError(path, "a key without versions")
    versions = tuple(Version(*attrs.astuple(v, recurse=False)) for v in stored.versions)
    for v, before in zip(versions[1:], versions, strict=False):
        if v.mod_revision <= before.mod_revision:
            raise DecodeError(path, "versions are not in revision order")
    if versions[-1].mod_revision > revision:
        raise DecodeError(path, "a version beyond the current revision")
    for v in versions:
        tombstone = v.value is None
        if tombstone != (v.version == 0) or tombstone != (v.create_revision == 0):
            raise DecodeError(path, "version and create revision are 0 exactly for tombstones")
        if v.create_revision > v.mod_revision:
            raise DecodeError(path, "created after it was modified")
    return versions
