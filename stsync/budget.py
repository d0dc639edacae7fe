"""A byte budget for page bodies in flight, shared by every stream of one run.

Memory must be bounded by the page size, not by the tenant: with eight streams each holding a page
and reading one ahead, a large tenant's 16 MB invoice pages alone would hold ~250 MB. The client
reserves a page's Content-Length before reading its body, and the engine releases it once the page is
written. Waiters are served first come, first served, so a large page is not starved by a stream of
small ones; a page larger than the whole budget goes through alone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib


class ByteBudget:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be positive")
        self.limit = limit
        self.held = 0
        self.peak = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.limit

    def _take(self, size: int) -> None:
        self.held += size
        self.peak = max(self.peak, self.held)

    async def acquire(self, size: int) -> None:
        """Wait for this caller's turn and for ``size`` bytes to fit (or nothing else to be held)."""
        if not self._waiters and self._fits(size):
            self._take(size)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # admitted in the same instant it was cancelled
            else:
                with contextlib.suppress(ValueError):  # _wake may have dropped it already
                    self._waiters.remove(entry)
                self._wake()  # the next waiter may fit now that this one left the head of the line
            raise

    def grow(self, size: int) -> None:
        """Count ``size`` more bytes for a body already in memory (it decompressed larger than announced)."""
        self._take(size)

    def release(self, size: int) -> None:
        self.held -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            size, waiter = self._waiters[0]
            if waiter.cancelled():
                self._waiters.popleft()
                continue
            if not self._fits(size):
                return
            self._waiters.popleft()
            self._take(size)
            waiter.set_result(None)
