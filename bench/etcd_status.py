"""What each etcd member says of the leader, asked through aetcd (asyncio: imported only
by the separate-interpreter drivers, bench/etcd_driver.py and bench/etcd_failover.py)."""

from __future__ import annotations

import aetcd
import attrs


@attrs.frozen
class MemberView:
    """One member's answer: the leader's client address and the term, or why not."""

    leader: str | None  # "host:port" of the leader's first client URL, None if unknown
    term: int | None
    error: Exception | None = None


async def member_view(host: str, port: int) -> MemberView:
    """Ask one member for its status; a member that does not answer gives its error."""
    try:
        async with aetcd.Client(host, port, timeout=1) as client:
            status = await client.status()
    except Exception as error:  # noqa: BLE001 - a member not up yet: the caller asks again
        return MemberView(None, None, error)
    if status.leader is None or not status.leader.client_urls:
        return MemberView(None, status.raft_term)
    leader = status.leader.client_urls[0].removeprefix("http://").removeprefix("https://")
    return MemberView(leader, status.raft_term)


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """The drivers' --endpoints, "host:port,host:port,...", as (host, port) pairs."""
    endpoints = []
    for endpoint in text.split(","):
        host, port = endpoint.rsplit(":", 1)
        endpoints.append((host, int(port)))
    return endpoints
