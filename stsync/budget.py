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
import os

# glibc's mallopt parameter (malloc.h), and the value it starts with: blocks at least this large are mmapped.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 128 * 1024


def map_page_bodies() -> bool:
    """Have glibc give every freed page body back to the system. True if it was set (glibc), else False.

    A page body (up to ~16 MB) is one block, which glibc maps on its own and unmaps when it is freed, as it
    does every block over 128 kB. But the first time such a block is freed, glibc raises that threshold to
    the block's size (up to 32 MB), so later page bodies come from the heap, which keeps what is freed and
    fragments: the peak RSS of the same large full sync varied from 120 to 154 MB. Setting the threshold
    fixes it at glibc's starting value (113-117 MB over the same runs). Elsewhere (musl, macOS) a no-op.
    """
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (ValueError, OSError):  # no such name on this system: not glibc
        return False
    import ctypes

    return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD))


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

    @property
    def waiting(self) -> bool:
        return bool(self._waiters)

    def try_acquire(self, size: int) -> bool:
        """Take ``size`` bytes only if that needs no wait."""
        if self._waiters or not self._fits(size):
            return False
        self._take(size)
        return True

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


class PageBudget:
    """The run's page memory: the ``writing`` budget, for pages of streams that may write now, and a
    smaller ``ahead`` budget (half of it) for pages fetched by streams still waiting their turn.

    Streams start downloading at once but write in dependency order (jobs after customers, invoices after
    jobs). Pages fetched ahead by a waiting stream must not take the memory that the streams it waits for
    need, or neither could move: they come out of ``ahead``, which only waiting streams use. A stream that
    may write takes its next pages from ``writing``; a page it already holds from ``ahead`` is written and
    given back like any other.
    """

    def __init__(self, limit: int) -> None:
        self.writing = ByteBudget(limit)
        self.ahead = ByteBudget(max(1, limit // 2))

    @property
    def held(self) -> int:
        return self.writing.held + self.ahead.held

    @property
    def peak(self) -> int:
        """At most this many bytes were held at once (the two parts' peaks, which may not have coincided)."""
        return self.writing.peak + self.ahead.peak

    def lane(self, writing: bool = True, priority: int = 0) -> Lane:
        """One stream's way in; ``writing=False`` until the stream may write (``Lane.start_writing``)."""
        return Lane(self, writing, priority)


class Lane:
    """Where one stream's next page reserves its bytes: ``ahead`` while the stream waits, then ``writing``.

    A download already waiting in ``ahead`` when the stream's turn comes moves over to ``writing``: it may
    be waiting behind pages held by streams that wait for this one.
    """

    def __init__(self, budget: PageBudget, writing: bool, priority: int = 0) -> None:
        self._budget = budget
        self.priority = priority  # of the stream's requests at the rate limiter (see stsync.ratelimit)
        self._writing = asyncio.Event()
        if writing:
            self._writing.set()
        self.last_size = 0  # bytes of this stream's last page: what its next one will probably need

    def start_writing(self) -> None:
        self._writing.set()

    @property
    def writing(self) -> bool:
        return self._writing.is_set()

    def take_at_once(self, size: int) -> ByteBudget | None:
        """For a waiting stream, ``size`` bytes of the ahead budget if they fit now; otherwise (and for a
        writing stream, whose waits are short) None."""
        if self.writing:
            return None
        ahead = self._budget.ahead
        if size == 0:  # no Content-Length: the body is counted once read, if the ahead budget is not full yet
            return ahead if not ahead.waiting and ahead.held < ahead.limit else None
        return ahead if ahead.try_acquire(size) else None

    async def acquire(self, size: int) -> ByteBudget:
        """Reserve ``size`` bytes; returns the budget to release them to."""
        if not self.writing:
            ahead = asyncio.ensure_future(self._budget.ahead.acquire(size))
            turn = asyncio.ensure_future(self._writing.wait())
            try:
                await asyncio.wait((ahead, turn), return_when=asyncio.FIRST_COMPLETED)
            except BaseException:  # this caller was cancelled
                turn.cancel()
                if _granted(ahead):
                    self._budget.ahead.release(size)
                else:
                    ahead.cancel()  # ByteBudget.acquire gives back what it is granted as it is cancelled
                raise
            turn.cancel()
            if _granted(ahead):
                return self._budget.ahead
            ahead.cancel()  # ByteBudget.acquire gives back what it is granted as it is cancelled
            await asyncio.wait((ahead,))  # not `await ahead`: that would swallow a cancellation of this caller
        await self._budget.writing.acquire(size)
        return self._budget.writing


def _granted(acquire: asyncio.Future[None]) -> bool:
    return acquire.done() and not acquire.cancelled() and acquire.exception() is None
