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

# Items encoded per slice: well under a millisecond per encoder call, and few enough that
# the slice's temporary lists (about 3 per kv key) rarely outlive a young-generation
# collection (every 700 allocations). With 2048 a slice's 6,000 lists were promoted, and
# every snapshot of 100,000 keys set off two or three full collections of the whole heap
# (100-250 ms each, holding the interpreter lock: the event loop stood still).
SLICE_ITEMS = 128


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
