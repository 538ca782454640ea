"""Requests a node holds until it can answer them, each with a deadline.

A `PendingTable` numbers requests with tickets, keeps at most `limit` of them, indexes
them by (client, request id) so a duplicate of a pending request is not taken twice, and
hands back those whose deadline has passed. What a request waits for (a log index, a
read batch, a revision) is indexed by the `Replica`, which settles tickets here.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Hashable

import attrs

from raftcluster.node.protocol import ClientRequest


class Waiting(enum.IntEnum):
    WRITE = 0  # a proposal at a log position (a Submit or a membership step)
    READ = 1  # a linearizable read in a ReadIndex batch
    WATCH = 2  # a WaitChanges long poll
    TRANSFER = 3  # a leadership transfer


@attrs.define
class Pending:
    ticket: int
    client: Hashable
    request_id: int
    request: ClientRequest
    kind: Waiting
    deadline_ms: int
    index: int = 0  # WRITE: the log index proposed at
    term: int = 0  # WRITE: the term proposed in
    batch: int = 0  # READ: the ReadIndex batch


class PendingTable:
    """Tickets of pending requests, bounded, with deadlines."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._next = 1
        self._by_ticket: dict[int, Pending] = {}
        self._by_request: dict[tuple[Hashable, int], int] = {}
        self._deadlines: list[tuple[int, int]] = []  # (deadline_ms, ticket), lazily cleaned

    def __len__(self) -> int:
        return len(self._by_ticket)

    def full(self) -> bool:
        return len(self._by_ticket) >= self.limit

    def is_pending(self, client: Hashable, request_id: int) -> bool:
        return (client, request_id) in self._by_request

    def add(
        self,
        client: Hashable,
        request_id: int,
        request: ClientRequest,
        kind: Waiting,
        deadline_ms: int,
    ) -> Pending:
        assert not self.full() and not self.is_pending(client, request_id)
        ticket = self._next
        self._next += 1
        pending = Pending(ticket, client, request_id, request, kind, deadline_ms)
        self._by_ticket[ticket] = pending
        self._by_request[(client, request_id)] = ticket
        heapq.heappush(self._deadlines, (deadline_ms, ticket))
        return pending

    def get(self, ticket: int) -> Pending | None:
        return self._by_ticket.get(ticket)

    def pop(self, ticket: int) -> Pending | None:
        pending = self._by_ticket.pop(ticket, None)
        if pending is not None:
            del self._by_request[(pending.client, pending.request_id)]
        return pending

    def next_deadline_ms(self) -> int | None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in self._by_ticket:
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    def expire(self, now_ms: int) -> list[Pending]:
        """Remove and return the requests whose deadline is at or before `now_ms`."""
        out = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now_ms:
            _, ticket = heapq.heappop(deadlines)
            pending = self.pop(ticket)
            if pending is not None:
                out.append(pending)
        return out

    def all(self) -> list[Pending]:
        return list(self._by_ticket.values())
