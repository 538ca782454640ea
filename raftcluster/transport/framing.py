"""Length-prefixed frames, sans-IO.

On the wire a frame is ``u32 big-endian body length | body | tag`` where the tag is
absent during the handshake and, once keys are agreed, is the first 16 bytes of
HMAC-SHA256(direction key, u64 sequence | length | body). The sequence number is
implicit (0, 1, 2... per direction), so a replayed, dropped, reordered or altered
frame fails the check. The length is checked against the limit as soon as its four
bytes arrive, before any of the body is buffered; the body is handed out only after
its tag verified, so nothing unauthenticated reaches the decoder.
"""

from __future__ import annotations

import hashlib
import hmac

from raftcluster.transport.errors import FrameTooLarge, UnauthenticatedFrame

HEADER_BYTES = 4
TAG_BYTES = 16
_SHA256_BLOCK_BYTES = 64
_INNER_PAD = bytes(b ^ 0x36 for b in range(256))  # RFC 2104 ipad, as a translation table
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))  # opad


class _Mac:
    """HMAC-SHA256 (RFC 2104) keyed once: the inner and outer hash states after the
    padded key are kept, and each frame's tag is computed on copies of them. (The same
    tags as `hmac.new(key, ..., sha256)`, checked by the tests, without the four Python
    calls per frame of `hmac.HMAC`'s copy, updates and digest.)"""

    def __init__(self, key: bytes) -> None:
        if len(key) > _SHA256_BLOCK_BYTES:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK_BYTES, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))
        self.sequence = 0

    def tag(self, header: bytes, body: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(self.sequence.to_bytes(8, "big") + header)
        inner.update(body)  # (not joined to the rest: no copy of the body)
        self.sequence += 1
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:TAG_BYTES]


class FrameSealer:
    """Turns bodies into wire frames for one direction of one connection."""

    def __init__(self) -> None:
        self._mac: _Mac | None = None

    def authenticate(self, key: bytes) -> None:
        """From now on every frame carries a tag under `key`, sequence starting at 0."""
        assert self._mac is None, "keys are agreed once per connection"
        self._mac = _Mac(key)

    def seal(self, body: bytes) -> bytes:
        header = len(body).to_bytes(HEADER_BYTES, "big")
        if self._mac is None:
            return header + body
        return b"".join((header, body, self._mac.tag(header, body)))


class FrameParser:
    """Cuts a byte stream into verified frame bodies for one direction of one connection."""

    def __init__(self, max_body_bytes: int) -> None:
        assert 0 < max_body_bytes < 2**32
        self._buffer = bytearray()
        self._max_body_bytes = max_body_bytes
        self._mac: _Mac | None = None

    def authenticate(self, key: bytes, max_body_bytes: int) -> None:
        """Switch from handshake frames to tagged frames; bytes already buffered are kept."""
        assert self._mac is None, "keys are agreed once per connection"
        assert 0 < max_body_bytes < 2**32
        self._mac = _Mac(key)
        self._max_body_bytes = max_body_bytes

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next complete body, None if more bytes are needed.

        Raises FrameTooLarge as soon as a header over the limit is buffered, and
        UnauthenticatedFrame when a tag does not verify. After either, the parser is
        unusable and the connection must close.
        """
        buffer = self._buffer
        if len(buffer) < HEADER_BYTES:
            return None
        size = int.from_bytes(buffer[:HEADER_BYTES], "big")
        if size > self._max_body_bytes:
            raise FrameTooLarge(size, self._max_body_bytes)
        tag_bytes = TAG_BYTES if self._mac is not None else 0
        end = HEADER_BYTES + size + tag_bytes
        if len(buffer) < end:
            return None
        header = bytes(buffer[:HEADER_BYTES])
        body = bytes(buffer[HEADER_BYTES : HEADER_BYTES + size])
        if self._mac is not None:
            expected = self._mac.tag(header, body)
            if not hmac.compare_digest(expected, bytes(buffer[end - TAG_BYTES : end])):
                raise UnauthenticatedFrame(f"frame {self._mac.sequence - 1}: tag does not verify")
        del buffer[:end]
        return body

    def wanted_bytes(self) -> int:
        """How many more bytes complete the frame in progress (at least 1)."""
        buffer = self._buffer
        if len(buffer) < HEADER_BYTES:
            return HEADER_BYTES - len(buffer)
        size = int.from_bytes(buffer[:HEADER_BYTES], "big")
        tag_bytes = TAG_BYTES if self._mac is not None else 0
        return max(1, HEADER_BYTES + size + tag_bytes - len(buffer))
