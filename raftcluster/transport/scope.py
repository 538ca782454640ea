"""`async with` around a nursery without exception groups leaking out of it.

trio wraps whatever escapes a nursery, including an error raised in the body of
an `async with` that holds one, in an exception group. Callers of `async with
Transport(...)` or `connect_rpc(...)` should see the error that happened, so the
wrapper below unwraps a group that holds a single exception.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


def single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside (nested) one-member groups, else the group itself."""
    while len(group.exceptions) == 1 and isinstance(group.exceptions[0], BaseExceptionGroup):
        group = group.exceptions[0]
    return group.exceptions[0] if len(group.exceptions) == 1 else group


class Unwrapped(Generic[T]):
    """Delegates to an async context manager and unwraps one-member exception groups."""

    def __init__(self, inner: AbstractAsyncContextManager[T]) -> None:
        self._inner = inner

    async def __aenter__(self) -> T:
        """Enter the inner manager; cancellation leaves what the inner manager leaves."""
        try:
            return await self._inner.__aenter__()
        except BaseExceptionGroup as group:
            raise single(group) from None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        """Exit the inner manager; cancellation leaves what the inner manager leaves."""
        try:
            return await self._inner.__aexit__(exc_type, exc, traceback)
        except BaseExceptionGroup as group:
            inner = single(group)
            if inner is exc:
                return False  # the block's own error goes through as it was
            raise inner from None
