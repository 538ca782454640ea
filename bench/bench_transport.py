"""The transport on loopback, against bare trio TCP with the same length-prefix framing.

Both run two endpoints in one process (one core), so the figures are the cost per
message of our layers: canonical CBOR, the per-frame HMAC, queues and channels.
The peer does the least a framed TCP exchange can do: no encoding, no MAC.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time

import attrs
import trio

from bench.table import Row
from raftcluster.transport import Address, Caller, Transport, TransportConfig
from statemachine.codec import Message, tagged

_LOCAL = Address("127.0.0.1", 0)
_SECRET = b"bench-secret-bench-secret"


@tagged(2099)  # the last tag of the transport range (see wire.py), kept for this bench
@attrs.frozen
class _Payload(Message):
    seq: int
    data: bytes


def _config(node_id: int) -> TransportConfig:
    return TransportConfig(cluster_id="bench", node_id=node_id, secret=_SECRET, listen=(_LOCAL,))


async def _echo(caller: Caller, request: Message) -> Message:
    return request


async def _ours(messages: int, size: int, calls: int, in_flight: int) -> dict[str, float]:
    one = Transport(_config(1), rng=random.Random(1))
    two = Transport(_config(2), rng=random.Random(2), rpc_handler=_echo)
    results: dict[str, float] = {}
    async with one, two:
        one.set_peer(2, two.listen_addresses)
        two.set_peer(1, one.listen_addresses)
        while not (one.is_connected(2) and two.is_connected(1)):
            await trio.sleep(0.01)
        data = b"x" * size

        async def receive() -> None:
            # Drain in batches, as the runtime should: each `await receive()` is a
            # scheduling point, so taking one message per wake-up falls behind a reader
            # that delivers a whole socket read at once.
            count = 0
            while count < messages:
                await two.inbox.receive()
                count += 1
                with contextlib.suppress(trio.WouldBlock):
                    while count < messages:
                        two.inbox.receive_nowait()
                        count += 1

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            for seq in range(messages):
                while not one.send(2, _Payload(seq, data)):
                    await trio.sleep(0)  # queue full: let the writer drain it
                if seq % 256 == 255:
                    await trio.sleep(0)
        results["raft"] = messages / (time.perf_counter() - started)
        assert two.stats().inbox_dropped == 0

        small = _Payload(0, b"y" * 100)
        latencies = []
        for _ in range(calls):
            began = time.perf_counter()
            await one.call(2, small, timeout_ms=10_000)
            latencies.append(time.perf_counter() - began)
        results["rtt_p50_us"] = statistics.median(latencies) * 1e6
        results["rtt_p99_us"] = statistics.quantiles(latencies, n=100)[98] * 1e6

        async def worker(count: int) -> None:
            for _ in range(count):
                await one.call(2, small, timeout_ms=10_000)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(in_flight):
                nursery.start_soon(worker, calls // in_flight)
        results["rpc_parallel"] = (calls // in_flight * in_flight) / (time.perf_counter() - started)
    return results


async def _read_frame(stream: trio.SocketStream, buffer: bytearray) -> bytes:
    while True:
        if len(buffer) >= 4:
            size = int.from_bytes(buffer[:4], "big")
            if len(buffer) >= 4 + size:
                body = bytes(buffer[4 : 4 + size])
                del buffer[: 4 + size]
                return body
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError
        buffer += data


async def _bare(messages: int, size: int, calls: int, in_flight: int) -> dict[str, float]:
    results: dict[str, float] = {}
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:

        async def serve() -> None:
            server = await listeners[0].accept()
            buffer = bytearray()
            for _ in range(messages):
                await _read_frame(server, buffer)
            while True:
                try:
                    body = await _read_frame(server, buffer)
                except EOFError:
                    return
                await server.send_all(len(body).to_bytes(4, "big") + body)

        nursery.start_soon(serve)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        frame = (size + 8).to_bytes(4, "big") + b"x" * (size + 8)
        started = time.perf_counter()
        batch = frame * 256
        for _ in range(messages // 256):
            await client.send_all(batch)
        await client.send_all(frame * (messages % 256))
        small = (108).to_bytes(4, "big") + b"y" * 108
        buffer = bytearray()
        await client.send_all(small)  # the server answers only once it has read them all
        await _read_frame(client, buffer)
        results["raft"] = messages / (time.perf_counter() - started)
        latencies = []
        for _ in range(calls):
            began = time.perf_counter()
            await client.send_all(small)
            await _read_frame(client, buffer)
            latencies.append(time.perf_counter() - began)
        results["rtt_p50_us"] = statistics.median(latencies) * 1e6
        results["rtt_p99_us"] = statistics.quantiles(latencies, n=100)[98] * 1e6
        # pipelined: `in_flight` requests written, then their answers read, repeatedly
        rounds = calls // in_flight
        started = time.perf_counter()
        for _ in range(rounds):
            await client.send_all(small * in_flight)
            for _ in range(in_flight):
                await _read_frame(client, buffer)
        results["rpc_parallel"] = rounds * in_flight / (time.perf_counter() - started)
        await client.aclose()
    for listener in listeners:
        await listener.aclose()
    return results


def run(quick: bool) -> list[Row]:
    messages, calls, in_flight = (5_000, 500, 16) if quick else (50_000, 5_000, 64)
    size = 100
    ours = trio.run(_ours, messages, size, calls, in_flight)
    bare = trio.run(_bare, messages, size, calls, in_flight)
    peer = "bare trio TCP"
    return [
        Row(f"raft messages of {size} B, one way", ours["raft"], "msg/s", peer, bare["raft"]),
        Row(
            "rpc round trip p50, sequential",
            ours["rtt_p50_us"],
            "us",
            peer,
            bare["rtt_p50_us"],
            higher_is_better=False,
        ),  # fmt: skip
        Row(
            "rpc round trip p99, sequential",
            ours["rtt_p99_us"],
            "us",
            peer,
            bare["rtt_p99_us"],
            higher_is_better=False,
        ),  # fmt: skip
        Row(
            f"rpc calls, {in_flight} in flight",
            ours["rpc_parallel"],
            "calls/s",
            peer,
            bare["rpc_parallel"],
            note="peer pipelines without ids or deadlines",
        ),  # fmt: skip
    ]
