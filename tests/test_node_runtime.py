"""The node runtime in this process, on real sockets and files: start, serve, stop,
restart from the data directory; the admin RPC; refusals at start-up."""

from __future__ import annotations

import socket
from pathlib import Path

import attrs
import pytest
import trio

from raftcluster.client.runner import CoreRunner
from raftcluster.config import (
    ClusterFile,
    client_transport_config,
    endpoints,
    init_cluster,
    node_settings,
)
from raftcluster.node import run
from raftcluster.node.admin import (
    ClearFaults,
    FaultsState,
    GetFaults,
    GetNodeInfo,
    NodeInfo,
    PeerFaultState,
    SetFaults,
)
from raftcluster.node.errors import DataDirMismatch, PortInUse
from raftcluster.node.protocol import RefuseCode, Refused
from raftcluster.storage import StorageLocked
from raftcluster.transport import ConnectionLost, connect_rpc
from statemachine.kv import Put, PutResult, Range, RangeResult
from tests.transport_kit import Note

FAST = {"timing.election_timeout_ms": 200, "timing.heartbeat_interval_ms": 20}


def single(tmp_path: Path, **settings: int | bool) -> ClusterFile:
    return init_cluster(tmp_path, nodes=1, settings={**FAST, **settings})


async def admin(cluster: ClusterFile, request: object, node: int = 1) -> object:
    entry = cluster.find(node)
    assert entry is not None
    config = client_transport_config(cluster)
    async with connect_rpc(entry.addresses[0], config) as connection:
        return await connection.call(request, timeout_ms=5_000)  # type: ignore[arg-type]


async def test_a_node_serves_stops_and_restarts_from_its_data_directory(tmp_path: Path) -> None:
    cluster = single(tmp_path)
    settings = node_settings(cluster, 1)
    with trio.fail_after(30):
        async with run(settings) as node:
            assert node.addresses == (str(cluster.nodes[0].addresses[0]),)
            async with CoreRunner.open(endpoints(cluster), client_transport_config(cluster)) as c:
                written = await c.write(Put(b"k", b"v1"))
                assert isinstance(written.result, PutResult), written
            info = node.info()
            assert info.node_id == 1 and info.status.role == "leader"
            assert info.syncs >= 1 and info.cycles >= info.syncs
            applied = info.status.applied_index
        assert not node.running
        async with run(settings) as again:
            while again.status().applied_index < applied:  # replayed from the WAL (once
                await trio.sleep(0.01)  # its first entry of the new term committed)
            async with CoreRunner.open(endpoints(cluster), client_transport_config(cluster)) as c:
                read = await c.read(Range(b"k"))
            assert isinstance(read.result, RangeResult)
            assert [(kv.key, kv.value) for kv in read.result.kvs] == [(b"k", b"v1")]
    identity = (settings.data_dir / "IDENTITY").read_text()
    assert cluster.cluster_id in identity and (settings.data_dir / "wal").is_dir()


async def test_fault_injection_is_refused_unless_the_cluster_allows_it(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path, nodes=2, settings=FAST)
    with trio.fail_after(30):
        async with run(node_settings(cluster, 1)):
            info = await admin(cluster, GetNodeInfo())
            assert isinstance(info, NodeInfo) and info.faults_allowed is False
            refused = await admin(cluster, SetFaults(2, blocked=True))
            assert isinstance(refused, Refused) and refused.code == RefuseCode.BAD_REQUEST
            assert "allow_fault_injection" in refused.message


async def test_fault_injection_sets_and_clears_the_transport_faults(tmp_path: Path) -> None:
    cluster = init_cluster(
        tmp_path, nodes=3, settings={**FAST, "cluster.allow_fault_injection": True}
    )
    with trio.fail_after(30):
        async with run(node_settings(cluster, 1)) as node:
            state = await admin(cluster, SetFaults(2, drop_probability=0.5, delay_ms=7))
            assert state == FaultsState((PeerFaultState(2, 0.5, 7, False),))
            await admin(cluster, SetFaults(3, blocked=True))
            assert node.transport.faults.get(3).blocked
            state = await admin(cluster, ClearFaults(2))
            assert state == FaultsState((PeerFaultState(3, 0.0, 0, True),))
            assert await admin(cluster, ClearFaults()) == FaultsState(())
            assert await admin(cluster, GetFaults()) == FaultsState(())
            unknown = await admin(cluster, SetFaults(9, blocked=True))
            assert isinstance(unknown, Refused) and "no peer 9" in unknown.message
            # Anything that is neither a client nor an admin request closes the client's
            # connection (tests/test_trust.py checks the reason logged).
            with pytest.raises(ConnectionLost):
                await admin(cluster, Note(1))


async def test_a_taken_port_is_named(tmp_path: Path) -> None:
    cluster = single(tmp_path)
    address = cluster.nodes[0].addresses[0]
    with socket.socket() as squatter:
        squatter.bind((address.host, address.port))
        squatter.listen()
        with pytest.raises(PortInUse) as caught, trio.fail_after(30):
            async with run(node_settings(cluster, 1)):
                pass
    assert f"cannot listen on {address}: the address is already in use" in str(caught.value)


async def test_a_data_directory_serves_one_node_of_one_cluster(tmp_path: Path) -> None:
    first = single(tmp_path / "a")
    settings = node_settings(first, 1)
    with trio.fail_after(30):
        async with run(settings):
            # Another process (here: another node object) cannot share the directory.
            other_port = init_cluster(tmp_path / "b", nodes=1).nodes[0].addresses
            twin = attrs.evolve(settings, listen=other_port)
            with pytest.raises(StorageLocked, match="in use"):
                async with run(twin):
                    pass
    stranger = single(tmp_path / "c")
    moved = attrs.evolve(node_settings(stranger, 1), data_dir=settings.data_dir)
    with pytest.raises(DataDirMismatch, match=f"belongs to node 1 of cluster '{first.cluster_id}'"):
        async with run(moved):
            pass
