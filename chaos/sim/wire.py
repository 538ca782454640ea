"""The real wire in simulation: every message crosses the codec, as the transport frames it.

A raft message leaves a simulated node as the bytes of a `RaftFrame`, a client request as
an `RpcRequest` and its answer as an `RpcResponse` (`raftcluster.transport.wire`), encoded
by the real codec; the receiver decodes them with `decode(data, Frame)`, exactly what a
node's connection does after a frame's MAC checks. So the codec, its limits and its fast
decoder run on every simulated message, and a seed shows what they get wrong:

- a frame over the transport's `max_frame_bytes` is one the transport would refuse;
- a frame that does not decode, or decodes to something else than what was sent
  (an encoder that drops a field), breaks the wire;
- a damaged frame (the network delivered it cut short, `NetworkConditions.truncate`)
  must be refused by the decoder: a truncated frame that decodes is a decoder bug.

Each is a `wire` violation. The wire also counts frames and bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raftcluster.raft.messages import InstallSnapshot, RaftMessage
from raftcluster.transport.config import Limits
from raftcluster.transport.wire import Frame, RaftFrame, RpcRequest, RpcResponse
from statemachine.codec import Message, decode, encode
from statemachine.errors import DecodeError

if TYPE_CHECKING:
    from chaos.sim.network import Envelope
    from chaos.sim.simulator import Simulator

INVARIANT = "wire"
SNAPSHOT_FLOW = 1  # as the node runtime sends InstallSnapshot chunks (everything else: 0)
# A client's call deadline as the transport carries it (relative, so clocks need not agree).
CALL_TIMEOUT_MS = 10_000


class Wire:
    def __init__(self, sim: Simulator, limits: Limits | None = None) -> None:
        self._sim = sim
        self.max_frame_bytes = (limits or Limits()).max_frame_bytes
        self._seq: dict[tuple[int, int, int], int] = {}  # (src, dst, flow) -> last seq
        self.counts = {"frames": 0, "bytes": 0, "largest_frame_bytes": 0, "damaged_refused": 0}

    # Each returns the frame's bytes and the frame (what the receiver must decode them to).

    def raft(self, message: RaftMessage) -> tuple[bytes, Frame]:
        flow = SNAPSHOT_FLOW if isinstance(message, InstallSnapshot) else 0
        link = (message.src, message.dst, flow)
        seq = self._seq[link] = self._seq.get(link, 0) + 1
        return self._encode(RaftFrame(flow, seq, message), message.src, message.dst)

    def request(self, src: int, dst: int, call_id: int, body: Message) -> tuple[bytes, Frame]:
        return self._encode(RpcRequest(call_id, CALL_TIMEOUT_MS, body), src, dst)

    def response(self, src: int, dst: int, call_id: int, body: Message) -> tuple[bytes, Frame]:
        return self._encode(RpcResponse(call_id, body), src, dst)

    def _encode(self, frame: Frame, src: int, dst: int) -> tuple[bytes, Frame]:
        data = encode(frame)
        size = len(data)
        counts = self.counts
        counts["frames"] += 1
        counts["bytes"] += size
        if size > counts["largest_frame_bytes"]:
            counts["largest_frame_bytes"] = size
            if size > self.max_frame_bytes:
                raise self._sim.fail(
                    INVARIANT,
                    f"node {src}'s {_what(frame)} to {dst} is {size} bytes, over the "
                    f"transport's frame limit of {self.max_frame_bytes}: it would be refused",
                    _nodes(src, dst),
                )
        return data, frame

    def receive(self, envelope: Envelope, sent: Frame) -> Frame | None:
        """The frame `envelope` carries, decoded (None: it arrived damaged and was refused,
        as it must be). `sent` is the frame as it was sent, to compare with."""
        data: bytes = envelope.payload[0]
        src, dst = envelope.src, envelope.dst
        if envelope.damage is not None:
            cut = int(len(data) * envelope.damage)
            try:
                got = decode(data[:cut], Frame)
            except DecodeError:
                self.counts["damaged_refused"] += 1
                return None
            raise self._sim.fail(
                INVARIANT,
                f"a frame from {src} to {dst} cut to {cut} of its {len(data)} bytes decoded "
                f"as {_what(got)}: the decoder must refuse a truncated frame",
                _nodes(src, dst),
            )
        try:
            got = decode(data, Frame)
        except DecodeError as e:
            raise self._sim.fail(
                INVARIANT,
                f"{src}'s {_what(sent)} to {dst} does not decode: {e}",
                _nodes(src, dst),
            ) from None
        if not got == sent:  # (`==` at once: attrs' `!=` is a call that calls it)
            raise self._sim.fail(
                INVARIANT,
                f"{src}'s {_what(sent)} to {dst} decodes to another message: sent {sent!r}, "
                f"received {got!r}",
                _nodes(src, dst),
            )
        return got


def _what(frame: Any) -> str:
    inner = getattr(frame, "message", None) or getattr(frame, "body", None)
    return type(inner if inner is not None else frame).__name__


def _nodes(*ids: int) -> tuple[int, ...]:
    return tuple(i for i in ids if i < 1000)  # client ids are 1000 and up
