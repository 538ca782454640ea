"""`raftcluster.connect` refuses arguments that do not name one cluster, before dialling
anything, and says so; an unreachable cluster is `Unavailable` within the connect timeout."""

from __future__ import annotations

import pytest
import trio

import raftcluster
from raftcluster import ClientOptions, InvalidArgument, Unavailable

SECRET = b"s" * 32


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "name the cluster"),
        ({"cluster": "x", "endpoints": ["127.0.0.1:1"]}, "name the cluster"),
        ({"cluster": "x", "secret": SECRET}, "the cluster file names the secret"),
        ({"endpoints": "127.0.0.1:1", "secret": SECRET, "cluster_id": "c"}, "not one string"),
        ({"endpoints": [], "secret": SECRET, "cluster_id": "c"}, "no address"),
        ({"endpoints": ["127.0.0.1:0"], "secret": SECRET, "cluster_id": "c"}, "needs a port"),
        ({"endpoints": ["127.0.0.1:1"], "secret": SECRET}, "cluster id"),
        ({"endpoints": ["127.0.0.1:1"], "cluster_id": "c"}, "need the secret"),
    ],
)
async def test_arguments_that_do_not_name_one_cluster(arguments: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        async with raftcluster.connect(**arguments):
            raise AssertionError("connected")


async def test_an_unreachable_cluster_is_unavailable() -> None:
    with trio.fail_after(30), pytest.raises(Unavailable, match="no endpoint reachable"):
        async with raftcluster.connect(
            endpoints=["127.0.0.1:1"],
            secret=SECRET,
            cluster_id="c",
            options=ClientOptions(connect_timeout_ms=200),
        ):
            raise AssertionError("connected")


def test_options_are_checked() -> None:
    with pytest.raises(InvalidArgument):
        ClientOptions(session_ttl_ms=10)  # below the state machine's minimum of 1 s
    with pytest.raises(InvalidArgument):
        ClientOptions(max_inflight_writes=500)  # the session keeps 128 replies
