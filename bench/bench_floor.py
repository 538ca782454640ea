"""The floor: how fast can a Python program on this machine do the bare minimum that a
replicated, durable put and a linearizable get need, with no Raft, no encoding, no
authentication and no error handling?

Three local processes and a client, as in bench_node, with values of 100 bytes:
- a put goes client -> leader; the leader appends it to a file and forwards it to both
  followers, which append and fsync and acknowledge; the leader fsyncs too, and answers
  once its own fsync and one follower's acknowledgement are in (a quorum of 3);
- a get goes client -> leader; the leader sends a heartbeat to both followers and
  answers once one of them has acknowledged it (ReadIndex's confirmation round).
Frames are a 4-byte length and raw bytes. Whatever one read brings is handled as one
batch: one forward, one fsync and one heartbeat per batch, as a Raft leader batches.

Two flavours of the same processes:
- "trio": trio streams, a task per connection and the leader's fsync in a worker thread
  (`trio.to_thread`), so the loop keeps going meanwhile: the stack raftcluster uses;
- "plain": one `selectors` loop per process, blocking sends and fsync inline; no
  framework at all.

Ours (bench_node's workloads, measured in the same run) is set beside the trio floor:
the ratio says how much is left to win with this stack. etcd (when an `etcd` binary and
the `aetcd` client are installed: bench/etcd_cluster.py, as bench_node runs it) is
measured in the same run on the sequential workloads, where the floor is closest to it:
the trio floor's row then has etcd as its peer (floor / etcd), and ours has both the
floor (ours / floor) and etcd (ours / etcd). If the trio floor is at or below etcd, no
amount of work on raftcluster's code reaches etcd with this stack; ours / floor says how
much of what the stack allows our code takes. Without etcd, one line says how to
install it and those rows are left out (no figure is quoted).
"""

from __future__ import annotations

import argparse
import collections
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import trio

from bench.bench_node import (
    WORKLOADS,
    Etcd,
    Measured,
    _cpu_s,
    _free_ports,
    _with_cpu,
    measure_etcd,
    measure_ours,
)
from bench.table import Row

HEADER = struct.Struct(">IcQ")  # length of what follows the length, type, id
MAX_FRAME_BYTES = 1 << 20
VALUE = b"bench/floor/key0" + b"v" * 100
FLAVOURS = ("trio", "plain")
# The workloads etcd runs here: the sequential ones, where the trio floor comes nearest
# to etcd (with requests in flight the floor is far above it: bench_node has those rows).
ETCD_WORKLOADS = tuple(w for w in WORKLOADS if w.inflight == 1)


def frame(kind: bytes, ident: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(9 + len(payload), kind, ident) + payload


class Frames:
    """Splits a byte stream into (type, id, payload) frames."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[bytes, int, bytes]]:
        self.buffer += data
        offset = 0
        while len(self.buffer) - offset >= HEADER.size:
            length, kind, ident = HEADER.unpack_from(self.buffer, offset)
            assert 9 <= length <= MAX_FRAME_BYTES, length
            end = offset + 4 + length
            if end > len(self.buffer):
                break
            yield kind, ident, bytes(self.buffer[offset + HEADER.size : end])
            offset = end
        del self.buffer[:offset]


class Leader:
    """What the leader knows, whatever carries its bytes: what it sent each follower
    under which number, what is acknowledged and what is on its own disk."""

    def __init__(self, log_fd: int) -> None:
        self.log_fd = log_fd
        self.seq = 0  # the number of the last batch sent to the followers
        self.acked = 0  # the highest batch a follower acknowledged
        self.written = 0  # the highest batch written to the leader's file
        self.synced = 0  # the highest batch fsynced by the leader
        self.puts: collections.deque[tuple[int, list[int]]] = collections.deque()
        self.gets: collections.deque[tuple[int, list[int]]] = collections.deque()

    def from_client(self, frames: list[tuple[bytes, int, bytes]]) -> bytes:
        """The bytes to send each follower for one read of a client's frames."""
        puts = [(ident, payload) for kind, ident, payload in frames if kind == b"P"]
        gets = [ident for kind, ident, _ in frames if kind == b"G"]
        out = []
        if puts:
            self.seq += 1
            data = b"".join(payload for _, payload in puts)
            out.append(frame(b"A", self.seq, data))
            os.write(self.log_fd, data)
            self.written = self.seq
            self.puts.append((self.seq, [ident for ident, _ in puts]))
        if gets:
            self.seq += 1
            out.append(frame(b"H", self.seq))
            self.gets.append((self.seq, gets))
        return b"".join(out)

    def replies(self) -> bytes:
        """Replies for every put now durable on a quorum and every get now confirmed."""
        out = []
        durable = min(self.synced, self.acked)
        while self.puts and self.puts[0][0] <= durable:
            out.extend(frame(b"R", ident) for ident in self.puts.popleft()[1])
        while self.gets and self.gets[0][0] <= self.acked:
            out.extend(frame(b"R", ident) for ident in self.gets.popleft()[1])
        return b"".join(out)


def follower_batch(log_fd: int, frames: list[tuple[bytes, int, bytes]]) -> tuple[int, bool]:
    """Writes one read's appends; returns the highest batch number and whether to fsync."""
    highest, wrote = 0, False
    for kind, ident, payload in frames:
        if kind == b"A":
            os.write(log_fd, payload)
            wrote = True
        highest = max(highest, ident)
    return highest, wrote


class Load:
    """A client's side of a workload, whatever carries its bytes: it numbers requests,
    times each from sending to its answer, and sends one more for each answer until the
    workload's time is up (so as many stay in flight as were sent first)."""

    def __init__(self, op: str, duration_s: float) -> None:
        self.kind = b"P" if op == "put" else b"G"
        self.payload = VALUE if op == "put" else b""
        self.started: dict[int, float] = {}  # request id -> when it was sent
        self.latencies: list[float] = []
        self.frames = Frames()
        self.next_id = 0
        self.start = time.perf_counter()
        self.deadline = self.start + duration_s

    @property
    def pending(self) -> int:
        return len(self.started)

    def requests(self, count: int) -> bytes:
        out = []
        for _ in range(count):
            self.next_id += 1
            self.started[self.next_id] = time.perf_counter()
            out.append(frame(self.kind, self.next_id, self.payload))
        return b"".join(out)

    def answered(self, data: bytes) -> bytes:
        """Takes received bytes; returns the requests to send next (none after the end)."""
        if not data:
            raise ConnectionError(f"the floor's leader hung up with {self.pending} unanswered")
        now = time.perf_counter()
        done = 0
        for _, ident, _ in self.frames.feed(data):
            self.latencies.append(now - self.started.pop(ident))
            done += 1
        return self.requests(done) if now < self.deadline else b""

    def measured(self) -> Measured:
        return Measured.of(self.latencies, 0, time.perf_counter() - self.start)


# -- the trio flavour ------------------------------------------------------------------


async def trio_node(role: str, port: int, followers: list[int], log_fd: int) -> None:
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    if role == "follower":
        print("ready", flush=True)
        await trio.serve_listeners(lambda s: _trio_follower(s, log_fd), listeners)
        return
    leader = Leader(log_fd)
    streams = [await trio.open_tcp_stream("127.0.0.1", p) for p in followers]
    clients: list[trio.SocketStream] = []
    client_lock = trio.Lock()
    unsynced = trio.Event()

    async def answer() -> None:
        data = leader.replies()
        if data:
            async with client_lock:
                await clients[-1].send_all(data)

    async def from_follower(stream: trio.SocketStream) -> None:
        frames = Frames()
        async for data in stream:
            for _, ident, _ in frames.feed(data):
                leader.acked = max(leader.acked, ident)
            await answer()

    async def persist() -> None:
        nonlocal unsynced
        while True:
            await unsynced.wait()
            unsynced = trio.Event()
            target = leader.written
            await trio.to_thread.run_sync(os.fsync, log_fd)
            leader.synced = target
            await answer()

    async def from_client(stream: trio.SocketStream) -> None:
        clients.append(stream)
        frames = Frames()
        async for data in stream:
            out = leader.from_client(list(frames.feed(data)))
            if leader.written > leader.synced:
                unsynced.set()
            for s in streams:
                await s.send_all(out)

    async with trio.open_nursery() as nursery:
        for s in streams:
            nursery.start_soon(from_follower, s)
        nursery.start_soon(persist)
        print("ready", flush=True)
        await trio.serve_listeners(from_client, listeners)


async def _trio_follower(stream: trio.SocketStream, log_fd: int) -> None:
    frames = Frames()
    async for data in stream:
        highest, wrote = follower_batch(log_fd, list(frames.feed(data)))
        if wrote:
            await trio.to_thread.run_sync(os.fsync, log_fd)
        if highest:
            await stream.send_all(frame(b"K", highest))


async def trio_client(port: int, op: str, inflight: int, duration_s: float) -> Measured:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    load = Load(op, duration_s)
    await stream.send_all(load.requests(inflight))
    while load.pending:
        more = load.answered(await stream.receive_some())
        if more:
            await stream.send_all(more)
    await stream.aclose()
    return load.measured()


# -- the plain flavour -----------------------------------------------------------------


def plain_node(role: str, port: int, followers: list[int], log_fd: int) -> None:
    listener = socket.create_server(("127.0.0.1", port))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    leader = Leader(log_fd)
    peers = [socket.create_connection(("127.0.0.1", p)) for p in followers]
    for peer in peers:
        peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(peer, selectors.EVENT_READ, ("follower", Frames()))
    clients: list[socket.socket] = []
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                conn, _ = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                clients.append(conn)
                selector.register(conn, selectors.EVENT_READ, ("peer", Frames()))
                continue
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            data = sock.recv(1 << 16)
            if not data:  # a client that is done (a peer's end ends the run anyway)
                selector.unregister(sock)
                sock.close()
                continue
            kind, frames = key.data
            batch = list(frames.feed(data))
            if role == "follower":
                highest, wrote = follower_batch(log_fd, batch)
                if wrote:
                    os.fsync(log_fd)
                if highest:
                    sock.sendall(frame(b"K", highest))
            elif kind == "follower":
                leader.acked = max([leader.acked] + [ident for _, ident, _ in batch])
            else:
                out = leader.from_client(batch)
                for peer in peers:
                    peer.sendall(out)
                if leader.written > leader.synced:
                    os.fsync(log_fd)
                    leader.synced = leader.written
            if role == "leader" and (replies := leader.replies()):
                clients[-1].sendall(replies)


def plain_client(port: int, op: str, inflight: int, duration_s: float) -> Measured:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    load = Load(op, duration_s)
    sock.sendall(load.requests(inflight))
    while load.pending:
        more = load.answered(sock.recv(1 << 16))
        if more:
            sock.sendall(more)
    sock.close()
    return load.measured()


# -- running it ------------------------------------------------------------------------


def measure_floor(flavour: str, duration_s: float) -> dict[str, Measured]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-floor-{flavour}-"))
    ports = _free_ports(3)
    processes: list[subprocess.Popen[str]] = []
    try:
        for i, port in reversed(list(enumerate(ports))):  # the leader dials the others
            role = "leader" if i == 0 else "follower"
            command = [sys.executable, "-m", "bench.bench_floor", "node", flavour, role,
                       str(port), ",".join(map(str, ports[1:] if i == 0 else [])),
                       str(root / f"log-{i}")]  # fmt: skip
            processes.append(_start(command))
        client: Callable[..., Measured] = (
            (lambda *a: trio.run(trio_client, *a)) if flavour == "trio" else plain_client
        )
        client(ports[0], "put", 1, min(duration_s, 0.3))  # warm up
        results = {}
        for workload in WORKLOADS:
            pids = [p.pid for p in processes]
            before = _cpu_s(pids)
            measured = client(ports[0], workload.op, workload.inflight, duration_s)
            results[workload.name] = _with_cpu(measured, before, _cpu_s(pids))
        return results
    finally:
        for process in processes:
            process.kill()
            process.wait()
        for path in root.iterdir():
            path.unlink()
        root.rmdir()


def _start(command: list[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError(f"floor node did not start: {command}")
    return process


def run(quick: bool) -> list[Row]:
    duration_s = 0.2 if quick else 3.0
    floors = {flavour: measure_floor(flavour, duration_s) for flavour in FLAVOURS}
    ours = trio.run(measure_ours, duration_s)
    etcd = measure_etcd(duration_s, workloads=ETCD_WORKLOADS)
    return rows(floors, ours, etcd)


def rows(
    floors: dict[str, dict[str, Measured]], ours: dict[str, Measured], etcd: Etcd | None = None
) -> list[Row]:
    """The floors, ours against the trio floor, and where etcd ran that workload, the trio
    floor and ours against etcd."""
    out = []
    for workload in WORKLOADS:
        name = f"{workload.name} (ops/s)"
        theirs = etcd.results.get(workload.name) if etcd is not None else None
        for flavour in FLAVOURS:
            floor = floors[flavour][workload.name]
            peer, peer_value = "", None
            if flavour == "trio" and etcd is not None and theirs is not None:
                peer, peer_value = etcd.peer, theirs.per_second  # floor / etcd
            out.append(
                Row(f"floor, {flavour}: {name}", floor.per_second, "ops/s", peer=peer,
                    peer_value=peer_value, note=_cpu_note(floor))
            )  # fmt: skip
        mine = ours[workload.name]
        out.append(
            Row(f"ours: {name}", mine.per_second, "ops/s", peer="floor, trio (same run)",
                peer_value=floors["trio"][workload.name].per_second, note=_cpu_note(mine))
        )  # fmt: skip
        if etcd is not None and theirs is not None:
            out.append(
                Row(f"ours: {name}", mine.per_second, "ops/s", peer=etcd.peer,
                    peer_value=theirs.per_second)
            )  # fmt: skip
    return out


def _cpu_note(measured: Measured) -> str:
    if measured.cpu_us is None:
        return ""
    leader, other, client = measured.cpu_us
    return f"CPU µs/op: leader {leader:.0f}, follower {other:.0f}, client {client:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_floor")
    parser.add_argument("what", choices=["node"])
    parser.add_argument("flavour", choices=FLAVOURS)
    parser.add_argument("role", choices=["leader", "follower"])
    parser.add_argument("port", type=int)
    parser.add_argument("followers")
    parser.add_argument("log")
    args = parser.parse_args()
    followers = [int(p) for p in args.followers.split(",") if p]
    log_fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    if args.flavour == "trio":
        trio.run(trio_node, args.role, args.port, followers, log_fd)
    else:
        plain_node(args.role, args.port, followers, log_fd)


if __name__ == "__main__":
    main()
