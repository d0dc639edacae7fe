"""A byte budget for page bodies in flight, shared by every stream of one run.

Memory must be bounded by the page size, not by the tenant: with eight streams each holding a page
and reading one ahead, a large tenant's 16 MB invoice pages alone would hold ~250 MB. The client
reserves a page's Content-Length before reading its body, and the engine releases it once the page is
written. A page larger than the whole budget still goes through, alone.
"""

from __future__ import annotations

import asyncio


class ByteBudget:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be positive")
        self.limit = limit
        self.held = 0
        self.peak = 0
        self._released = asyncio.Event()

    async def acquire(self, size: int) -> None:
        """Wait until ``size`` bytes fit (or nothing else is held), then hold them."""
        while self.held and self.held + size > self.limit:
            self._released.clear()
            await self._released.wait()
        self.held += size
        self.peak = max(self.peak, self.held)

    def release(self, size: int) -> None:
        self.held -= size
        self._released.set()
