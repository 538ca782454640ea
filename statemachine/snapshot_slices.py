"""Encoding a large array a slice at a time, to the same canonical CBOR bytes.

A definite CBOR array is its head (the item count) followed by its items' encodings, so
``encode_value(items)`` equals the head followed by the encodings of consecutive slices,
each without its own head. Encoding slice by slice keeps every encoder call short (see
`statemachine.snapshot_copy`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from statemachine.codec import encode_value

SLICE_ITEMS = 2048  # items encoded per slice: a few milliseconds at most, per encoder call


def array_header(length: int) -> bytes:
    """The canonical CBOR head of a definite array of `length` items (major type 4)."""
    if length < 24:
        return bytes([0x80 | length])
    for code, size in ((0x98, 1), (0x99, 2), (0x9A, 4), (0x9B, 8)):
        if length < 1 << (8 * size):
            return bytes([code]) + length.to_bytes(size, "big")
    raise ValueError(f"an array of {length} items")


def sliced_array(
    items: Sequence[Any], build: Callable[[Any], Any], per_slice: int = SLICE_ITEMS
) -> Iterator[bytes]:
    """The encoding of ``[build(item) for item in items]``, `per_slice` items at a time."""
    yield array_header(len(items))
    for start in range(0, len(items), per_slice):
        chunk = [build(item) for item in items[start : start + per_slice]]
        yield encode_value(chunk)[len(array_header(len(chunk))) :]
